// Chat: send prompts through the JSON API (a refused prompt stays in the box), stream the
// answer with fetch + ReadableStream, stop it, and fill presets. The page works without it:
// forms post and a pending answer is shown on the next load.
(function () {
  "use strict";

  var root = document.getElementById("chat");
  if (!root) return;
  var form = document.getElementById("composer");
  var prompt = document.getElementById("prompt");
  var errorBox = document.getElementById("composer-error");
  var stopButton = document.getElementById("stop");
  var sendButton = form.querySelector("[type=submit]");
  var csrf = document.querySelector("meta[name=csrf-token]").content;
  var current = null; // {controller, stopUrl}

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function bubble(role, text) {
    var article = document.createElement("article");
    article.className = "bubble bubble-" + role;
    article.dataset.role = role;
    var body = document.createElement("div");
    body.className = "bubble-text message-text";
    body.dataset.testid = "text";
    body.setAttribute("data-testid", "text");
    body.textContent = text;
    article.append(body);
    document.getElementById("thread").append(article);
    return article;
  }

  function busy(on) {
    sendButton.disabled = on;
    stopButton.hidden = !on;
  }

  // Parses server-sent events from a fetch body; calls onEvent(name, data) for each.
  async function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true });
      var parts = buffer.split("\n\n");
      buffer = parts.pop();
      parts.forEach(function (part) {
        var name = "message";
        var data = "";
        part.split("\n").forEach(function (line) {
          if (line.startsWith("event: ")) name = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        });
        if (data) onEvent(name, JSON.parse(data));
      });
    }
  }

  // Streams one pending answer into `article`; resolves with the final status.
  async function stream(article, url) {
    var text = article.querySelector(".bubble-text");
    var controller = new AbortController();
    current = { controller: controller, stopUrl: url.replace(/\/stream$/, "/stop") };
    article.dataset.status = "streaming";
    busy(true);
    var outcome = "failed";
    try {
      var response = await fetch(url, { signal: controller.signal, headers: { Accept: "text/event-stream" } });
      if (!response.ok) throw new Error("The answer could not be started (" + response.status + ").");
      await readEvents(response, function (name, data) {
        if (name === "delta") {
          text.textContent += data.text;
        } else if (name === "done") {
          text.textContent = data.text;
          outcome = data.status;
        } else if (name === "error") {
          var problem = document.createElement("p");
          problem.className = "bubble-error";
          problem.setAttribute("role", "alert");
          problem.textContent = data.message;
          article.append(problem);
          outcome = "failed";
        }
      });
    } catch (error) {
      if (controller.signal.aborted) {
        outcome = "stopped";
      } else {
        showError(error.message || "The connection to the server was lost.");
      }
    } finally {
      article.dataset.status = outcome;
      current = null;
      busy(false);
    }
    return outcome;
  }

  // Reload the thread from the server: pagers, thumbs and the next prompt's parent.
  async function refresh(selected) {
    var url = location.pathname + (selected ? "?selected=" + selected : "");
    var response = await fetch(url);
    if (!response.ok) return;
    var page = new DOMParser().parseFromString(await response.text(), "text/html");
    document.getElementById("thread").replaceWith(page.getElementById("thread"));
    form.elements.parent_id.value = page.getElementById("composer").elements.parent_id.value;
    history.replaceState(null, "", url);
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    errorBox.hidden = true;
    var fields = form.elements;
    var body = {
      text: prompt.value,
      parent_id: fields.parent_id.value ? Number(fields.parent_id.value) : null,
      temperature: Number(fields.temperature.value),
      top_p: Number(fields.top_p.value),
      max_tokens: Number(fields.max_tokens.value),
    };
    var response;
    try {
      response = await fetch(form.dataset.api, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "application/json" },
        body: JSON.stringify(body),
      });
    } catch (error) {
      showError("The server could not be reached. Your message is still here; try again.");
      return;
    }
    var data = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      showError((data.error && data.error.message) || "The message could not be sent.");
      return;
    }
    bubble("user", data.prompt.text);
    var answer = bubble("assistant", "");
    var outcome = await stream(answer, data.stream_url);
    if (outcome === "failed") return; // the prompt stays in the box to try again
    prompt.value = "";
    var path = document.getElementById("thread").dataset.path;
    await refresh((path ? path + "," : "") + data.prompt.id + "," + data.reply.id);
  });

  stopButton.addEventListener("click", function () {
    if (!current) return;
    var stopping = current;
    fetch(stopping.stopUrl, { method: "POST", headers: { "X-CSRF-Token": csrf } }).finally(function () {
      // The server keeps the text so far; closing the stream ends the wait at once.
      setTimeout(function () { stopping.controller.abort(); }, 300);
    });
  });

  document.querySelectorAll("[data-preset]").forEach(function (button) {
    button.addEventListener("click", function () {
      form.elements.temperature.value = button.dataset.temperature;
      form.elements.top_p.value = button.dataset.topP;
      form.elements.max_tokens.value = button.dataset.maxTokens;
    });
  });

  // An answer left pending (a regenerate or an edit posted without this script) streams now.
  var pending = document.querySelector("[data-stream-url]");
  if (pending) {
    stream(pending, pending.dataset.streamUrl).then(function (outcome) {
      if (outcome !== "failed") refresh(document.getElementById("thread").dataset.path);
    });
  }
})();
