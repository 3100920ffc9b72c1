// Starts Swagger UI on /api/docs: the Content-Security-Policy allows no inline start-up script.
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("swagger-ui");
    window.SwaggerUIBundle({
      url: root.getAttribute("data-openapi-url"),
      dom_id: "#swagger-ui",
      deepLinking: true,
      // Swagger UI's validator badge would load an image from validator.swagger.io.
      validatorUrl: null,
    });
  });
})();
