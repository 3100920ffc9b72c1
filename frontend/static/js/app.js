// Hedgerow's own JavaScript: small niceties on top of pages that work without it.
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  // This page's translations of the scripts' strings (base.html renders them from the
  // catalog); a missing one reads in English.
  var messages = {};
  try {
    messages = JSON.parse(document.documentElement.getAttribute("data-messages") || "{}");
  } catch (error) { /* English, then */ }
  window.hedgerowText = function (key, english) { return messages[key] || english; };
  var t = window.hedgerowText;

  // <select data-submit-on-change>: the footer's language switcher submits when changed.
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-submit-on-change]")) event.target.form.requestSubmit();
  });

  // Form-error fragments (409, 422) and error toasts (any status, sent with HX-Retarget)
  // are made to be swapped; htmx leaves every 4xx/5xx unswapped by default.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (xhr.status >= 400 && (xhr.status === 409 || xhr.status === 422 || xhr.getResponseHeader("HX-Retarget"))) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // A network failure gets a toast too, so nothing fails silently.
  document.addEventListener("htmx:sendError", function () {
    showToast(t("network_error", "The server could not be reached. Your input is still here; try again."));
  });

  function showToast(message) {
    var region = document.getElementById("toasts");
    if (!region) return;
    var toast = document.createElement("div");
    toast.className = "toast toast-error";
    toast.setAttribute("role", "alert");
    var text = document.createElement("span");
    text.textContent = message;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", t("dismiss", "Dismiss"));
    close.textContent = "×";
    toast.append(text, close);
    region.append(toast);
  }

  // Dismiss toasts by their button; let them fade out on their own after a while.
  document.addEventListener("click", function (event) {
    var close = event.target.closest(".toast-close");
    if (close) close.closest(".toast").remove();
  });
  var toastObserver = new MutationObserver(function (mutations) {
    mutations.forEach(function (mutation) {
      mutation.addedNodes.forEach(function (node) {
        if (node.nodeType === 1 && node.classList.contains("toast")) {
          setTimeout(function () { node.remove(); }, 8000);
        }
      });
    });
  });
  function watchToasts() {
    var region = document.getElementById("toasts");
    if (region) toastObserver.observe(region, { childList: true });
  }

  // Copy buttons: <button data-copy-target="element-id">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      var label = button.textContent;
      button.textContent = t("copied", "Copied");
      setTimeout(function () { button.textContent = label; }, 2000);
    });
  });

  // After a swap, put focus on the first invalid field so keyboard and screen-reader
  // users land on the error.
  document.addEventListener("htmx:afterSettle", function (event) {
    if (!event.detail.xhr || event.detail.xhr.status < 400) return;
    var invalid = document.querySelector("[aria-invalid='true']");
    if (invalid) invalid.focus();
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", watchToasts);
  } else {
    watchToasts();
  }
})();
