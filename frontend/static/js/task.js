// Task pages: draft autosave, counters, ranking by drag and drop or keyboard, shortcuts.
// The page works without this file; it only makes it quicker and safer.
(function () {
  "use strict";

  // The page's translation of a string (app.js reads them from the page), else English.
  function say(key, english) {
    return window.hedgerowText ? window.hedgerowText(key, english) : english;
  }

  var AUTOSAVE_EVERY_MS = 3000;
  var NOT_WORK = { csrf_token: true, next_kind: true, language: true };
  var dirty = false;
  var saving = false;

  function taskForm() { return document.getElementById("task-form"); }

  function csrfToken() {
    var meta = document.querySelector("meta[name='csrf-token']");
    return meta ? meta.getAttribute("content") : "";
  }

  // --- drafts ---------------------------------------------------------------------
  function draftValues(form) {
    var values = {};
    new FormData(form).forEach(function (value, name) {
      if (!NOT_WORK[name] && typeof value === "string") values[name] = value;
    });
    return values;
  }

  function setDraftStatus(text, isError) {
    var status = document.getElementById("draft-status");
    if (!status) {
      var form = taskForm();
      if (!form) return;
      status = document.createElement("p");
      status.id = "draft-status";
      status.className = "muted draft-status";
      status.setAttribute("aria-live", "polite");
      form.querySelector(".actions").prepend(status);
    }
    status.textContent = text;
    status.classList.toggle("field-error", Boolean(isError));
  }

  function saveDraft(keepalive) {
    var form = taskForm();
    if (!form || !dirty || saving) return;
    dirty = false;
    saving = true;
    fetch(form.getAttribute("data-draft-url"), {
      method: "POST",
      credentials: "same-origin",
      keepalive: Boolean(keepalive),
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify({ draft: draftValues(form) })
    }).then(function (response) {
      if (response.ok) {
        setDraftStatus(say("draft_saved", "Draft saved %(time)s").replace("%(time)s", new Date().toLocaleTimeString(document.documentElement.lang)));
        form.setAttribute("data-draft-saved", "true");
        return;
      }
      return response.json().then(function (body) {
        // The text stays in the form; the error is shown right next to it.
        setDraftStatus((body.error && body.error.message) || say("draft_not_saved", "The draft could not be saved."), true);
      });
    }).catch(function () {
      dirty = true;
      setDraftStatus("Offline: the draft will be saved when the server is back.", true);
    }).finally(function () { saving = false; });
  }

  document.addEventListener("input", function (event) {
    if (event.target.closest && event.target.closest("#task-form")) {
      dirty = true;
      updateCounter();
    }
  });
  document.addEventListener("change", function (event) {
    if (event.target.closest && event.target.closest("#task-form")) dirty = true;
  });
  setInterval(function () { saveDraft(false); }, AUTOSAVE_EVERY_MS);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") saveDraft(true);
  });
  // A submitted or skipped task needs no more drafts; a new task swapped in starts clean.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var element = event.detail.elt;
    if (element.id === "task-form" || element.classList.contains("skip-form")) dirty = false;
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "task-panel") dirty = false;
    updateCounter();
  });

  // --- counters -------------------------------------------------------------------
  function updateCounter() {
    var text = document.getElementById("f-text");
    var counter = document.getElementById("text-counter");
    if (!text || !counter) return;
    var limit = parseInt(text.getAttribute("data-max-length"), 10);
    var characters = Array.from(text.value).length;
    var words = text.value.trim() ? text.value.trim().split(/\s+/).length : 0;
    var over = characters - limit;
    counter.textContent = over > 0
      ? characters + " / " + limit + " characters: " + over + " over the limit. Shorten it to submit."
      : characters + " / " + limit + " characters · " + words + " word" + (words === 1 ? "" : "s");
    counter.classList.toggle("field-error", over > 0);
    // The text stays whole (no maxlength); the field is marked invalid while it is too
    // long, and no longer once shortened (other errors the server marked are left alone).
    if (over > 0) {
      text.setAttribute("aria-invalid", "true");
      text.setAttribute("data-over-limit", "");
    } else if (text.hasAttribute("data-over-limit")) {
      text.removeAttribute("aria-invalid");
      text.removeAttribute("data-over-limit");
    }
  }

  // --- ranking --------------------------------------------------------------------
  function rankingList() { return document.getElementById("ranking-list"); }

  function renumber() {
    var list = rankingList();
    if (!list) return;
    Array.prototype.forEach.call(list.children, function (item, index) {
      var position = String(index + 1);
      item.querySelector(".rank-number").textContent = position;
      item.querySelector(".rank-position").value = position;
      item.setAttribute("aria-label", say("reply_position", "Reply at position %(position)s; arrow keys move it").replace("%(position)s", position));
    });
    dirty = true;
  }

  function announce(text) {
    var region = document.getElementById("ranking-live");
    if (!region) {
      region = document.createElement("p");
      region.id = "ranking-live";
      region.className = "visually-hidden";
      region.setAttribute("aria-live", "assertive");
      document.body.append(region);
    }
    region.textContent = text;
  }

  function move(item, offset) {
    var list = item.parentElement;
    var items = Array.prototype.slice.call(list.children);
    var index = items.indexOf(item);
    var target = index + offset;
    if (target < 0 || target >= items.length) return;
    if (offset < 0) list.insertBefore(item, items[target]);
    else list.insertBefore(item, items[target].nextSibling);
    renumber();
    item.focus();
    announce(say("moved_to", "Moved to position %(position)s of %(count)s").replace("%(position)s", target + 1).replace("%(count)s", items.length));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest(".rank-up, .rank-down");
    if (!button) return;
    move(button.closest(".rank-item"), button.classList.contains("rank-up") ? -1 : 1);
  });

  document.addEventListener("change", function (event) {
    var select = event.target.closest(".rank-position");
    if (!select) return;
    var item = select.closest(".rank-item");
    var list = item.parentElement;
    var wanted = parseInt(select.value, 10) - 1;
    list.removeChild(item);
    list.insertBefore(item, list.children[wanted] || null);
    renumber();
  });

  var dragged = null;
  document.addEventListener("dragstart", function (event) {
    var item = event.target.closest && event.target.closest(".rank-item");
    if (!item) return;
    dragged = item;
    item.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", item.getAttribute("data-message-id"));
  });
  document.addEventListener("dragover", function (event) {
    if (!dragged) return;
    var over = event.target.closest && event.target.closest(".rank-item");
    if (!over || over === dragged || over.parentElement !== dragged.parentElement) return;
    event.preventDefault();
    var box = over.getBoundingClientRect();
    var after = event.clientY > box.top + box.height / 2;
    over.parentElement.insertBefore(dragged, after ? over.nextSibling : over);
  });
  document.addEventListener("drop", function (event) { if (dragged) event.preventDefault(); });
  document.addEventListener("dragend", function () {
    if (!dragged) return;
    dragged.classList.remove("dragging");
    dragged = null;
    renumber();
  });

  // --- keyboard -------------------------------------------------------------------
  function typingInText(element) {
    return element && (element.tagName === "TEXTAREA" ||
      (element.tagName === "INPUT" && /^(text|search|email|password|url|number)$/.test(element.type)));
  }

  function answerScale(step) {
    var active = document.activeElement;
    var group = active && active.closest && active.closest(".kind-scale");
    if (!group) {
      group = Array.prototype.find.call(document.querySelectorAll("#task-form .kind-scale"), function (g) {
        return !g.querySelector("input:checked");
      });
    }
    if (!group) return false;
    var radio = group.querySelectorAll("input[type=radio]")[step - 1];
    if (!radio) return false;
    radio.checked = true;
    radio.focus();
    radio.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }

  document.addEventListener("keydown", function (event) {
    var form = taskForm();
    if (!form) return;
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      // Typing in another form on the page (a report opened next to a message) is not
      // the task's work: leave that form alone.
      var typedIn = event.target.closest && event.target.closest("form");
      if (typedIn && typedIn !== form) return;
      event.preventDefault();
      form.requestSubmit();
      return;
    }
    var item = event.target.closest && event.target.closest(".rank-item");
    if (item && event.target === item && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
      event.preventDefault();
      move(item, event.key === "ArrowUp" ? -1 : 1);
      return;
    }
    if (typingInText(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "?") {
      var dialog = document.getElementById("shortcuts");
      if (dialog.open) dialog.close(); else dialog.showModal();
      event.preventDefault();
    } else if (/^[1-5]$/.test(event.key) && answerScale(parseInt(event.key, 10))) {
      event.preventDefault();
    }
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-shortcuts-open]")) document.getElementById("shortcuts").showModal();
  });

  // The no-JavaScript position lists are redundant once the list can be reordered.
  function enhance() {
    document.documentElement.classList.add("js");
    updateCounter();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", enhance);
  else enhance();
})();
