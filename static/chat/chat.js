// The chat page's little script: Enter to send, keep the log scrolled, local times.
// Everything works without it; htmx and its WebSocket extension do the rest.
(function () {
  "use strict";

  function localizeTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (time) {
      var date = new Date(time.getAttribute("datetime"));
      if (!isNaN(date)) {
        time.textContent = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
        time.title = date.toLocaleString();
      }
    });
  }

  function log() {
    return document.getElementById("messages");
  }

  function nearBottom(element) {
    return element.scrollHeight - element.scrollTop - element.clientHeight < 80;
  }

  document.addEventListener("DOMContentLoaded", function () {
    localizeTimes(document);
    var messages = log();
    if (messages) messages.scrollTop = messages.scrollHeight;
  });

  // Enter sends; Shift+Enter starts a new line.
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    if (!(target instanceof HTMLTextAreaElement) || !target.closest("#composer")) return;
    event.preventDefault();
    target.form.requestSubmit();
  });

  // A pushed frame replaces the composer's fields: keep the focus and the scroll position.
  var hadFocus = null;
  var wasNearBottom = true;
  document.addEventListener("htmx:wsBeforeMessage", function () {
    var active = document.activeElement;
    hadFocus = active && active.id && active.closest("#composer") ? active.id : null;
    var messages = log();
    wasNearBottom = !messages || nearBottom(messages);
  });
  document.addEventListener("htmx:wsAfterMessage", function () {
    if (hadFocus && document.activeElement === document.body) {
      var element = document.getElementById(hadFocus);
      if (element) element.focus();
    }
    var messages = log();
    if (messages) {
      localizeTimes(messages);
      if (wasNearBottom) messages.scrollTop = messages.scrollHeight;
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    localizeTimes(event.target);
  });
})();
