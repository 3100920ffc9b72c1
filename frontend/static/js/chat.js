// Chat: send prompts through the JSON API (the box empties on send and gets the prompt
// back if it is refused), stream the answer with fetch + ReadableStream as Markdown the
// server rendered, stop it, and fill presets. The page works without it: forms post and a
// pending answer is shown on the next load.
(function () {
  "use strict";

  // The page's translation of a string (app.js reads them from the page), else English.
  function say(key, english) {
    return window.hedgerowText ? window.hedgerowText(key, english) : english;
  }

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
    body.className = "bubble-text message-text" + (role === "assistant" ? " markdown" : "");
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

  // HTML the server rendered from Markdown and sanitised (never the model's raw text).
  function fragment(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    return template.content;
  }

  // Shows an answer's Markdown as it streams without rebuilding what is on screen: the
  // blocks the server settled are appended once and never touched again; only the open
  // tail after them is replaced with each piece.
  function markdownView(body) {
    var settled = "";
    var tail = [];
    var shown = "";
    body.textContent = "";
    return {
      delta: function (data) {
        tail.forEach(function (node) { node.remove(); });
        if (data.settled_html) {
          body.append(fragment(data.settled_html));
          settled += data.settled_html;
        }
        var open = fragment(data.tail_html || "");
        tail = Array.from(open.childNodes);
        body.append(open);
        shown = settled + (data.tail_html || "");
      },
      // The whole answer rendered at once; it differs from what streamed only where later
      // text changed earlier blocks (list items separated by blank lines).
      done: function (html) {
        if (html !== shown) body.replaceChildren(fragment(html));
      },
    };
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

  // Streams one pending answer into `article`; resolves with the final status, or "lost"
  // when the connection to the server broke (the answer may still be pending there).
  async function stream(article, url) {
    var view = markdownView(article.querySelector(".bubble-text"));
    var controller = new AbortController();
    current = { controller: controller, stopUrl: url.replace(/\/stream$/, "/stop") };
    article.dataset.status = "streaming";
    busy(true);
    var outcome = "failed";
    try {
      var response = await fetch(url, { signal: controller.signal, headers: { Accept: "text/event-stream" } });
      if (!response.ok) throw new Error(say("answer_not_started", "The answer could not be started (%(status)s).").replace("%(status)s", response.status));
      await readEvents(response, function (name, data) {
        if (name === "delta") {
          view.delta(data);
        } else if (name === "done") {
          view.done(data.html);
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
        outcome = "lost";
        showError(error.message || say("connection_lost", "The connection to the server was lost."));
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

  // The prompt leaves the box as it is sent, so that a second press cannot send it twice;
  // it comes back only if sending fails (unless something new was typed meanwhile).
  function giveBack(text, message) {
    if (!prompt.value) prompt.value = text;
    showError(message);
    sendButton.disabled = false;
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    if (sendButton.disabled) return;
    errorBox.hidden = true;
    var fields = form.elements;
    var text = prompt.value;
    var body = {
      text: text,
      parent_id: fields.parent_id.value ? Number(fields.parent_id.value) : null,
      temperature: Number(fields.temperature.value),
      top_p: Number(fields.top_p.value),
      max_tokens: Number(fields.max_tokens.value),
    };
    prompt.value = "";
    sendButton.disabled = true;
    var response;
    try {
      response = await fetch(form.dataset.api, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "application/json" },
        body: JSON.stringify(body),
      });
    } catch (error) {
      giveBack(text, say("chat_unreachable", "The server could not be reached. Your message is back in the box; try again."));
      return;
    }
    var data = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      giveBack(text, (data.error && data.error.message) || say("message_not_sent", "The message could not be sent."));
      return;
    }
    bubble("user", data.prompt.text);
    var answer = bubble("assistant", "");
    var outcome = await stream(answer, data.stream_url);
    if (outcome === "lost") return;
    // The prompt is stored whatever became of its answer: the thread shows it, with the
    // answer or its error and the buttons to regenerate it.
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
      if (outcome !== "lost") refresh(document.getElementById("thread").dataset.path);
    });
  }
})();
