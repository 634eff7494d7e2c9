// The chat page's little script. Everything works without it (plain form posts);
// htmx and its WebSocket extension swap the server's fragments in. This adds:
// - Enter to send, the focus kept in the composer, the log kept scrolled, local times;
// - delivery you can trust: messages in order and once each, a missed push noticed and
//   fetched (every fragment carries its chat's event number), and reconnection for the
//   close codes htmx does not retry.
(function () {
  "use strict";

  // htmx reconnects by itself after 1006, 1011, 1012 and 1013; these are the others
  // that mean "come back": a normal close (deploy, timeout), going away, and the
  // server's "you fell behind" (4500).
  var RECONNECT_CODES = [1000, 1001, 4500];
  // 4001-4099: not allowed (signed out, removed from the chat). Retrying can't help.
  var NOT_ALLOWED = { min: 4001, max: 4099 };
  // Pushes from several server processes may overtake each other: wait this long
  // before taking a missing event number for a lost push.
  var GAP_WAIT_MS = 300;

  function log() {
    return document.getElementById("messages");
  }

  function articles(container) {
    return Array.prototype.slice.call(container.querySelectorAll("article[data-seq]"));
  }

  function number(element, name) {
    return parseInt(element.getAttribute(name), 10) || 0;
  }

  function nearBottom(element) {
    return element.scrollHeight - element.scrollTop - element.clientHeight < 80;
  }

  function localizeTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (time) {
      var date = new Date(time.getAttribute("datetime"));
      if (!isNaN(date)) {
        time.textContent = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
        time.title = date.toLocaleString();
      }
    });
  }

  function setStatus(text) {
    var status = document.getElementById("connection-status");
    if (status) status.textContent = text;
  }

  // ---- Order and duplicates ----

  // One article per message, the newest version (highest event) of each, in sequence order.
  function normalize(container) {
    var kept = {};
    articles(container).forEach(function (article) {
      var id = article.getAttribute("data-message-id");
      var other = kept[id];
      if (!other) {
        kept[id] = article;
      } else if (number(article, "data-event") > number(other, "data-event")) {
        other.remove();
        kept[id] = article;
      } else {
        article.remove();
      }
    });
    var list = articles(container);
    var sorted = list.slice().sort(function (a, b) {
      return number(a, "data-seq") - number(b, "data-seq");
    });
    var inOrder = sorted.every(function (article, i) {
      return article === list[i];
    });
    if (!inOrder) {
      sorted.forEach(function (article) {
        container.appendChild(article);
      });
    }
  }

  // ---- Missed pushes ----

  // lastEvent: every change of the chat up to this event number is on the page.
  // seen: event numbers above it that arrived early (out of order) or after a gap.
  var lastEvent = 0;
  var seen = {};
  var gapTimer = null;

  function syncedEvent() {
    var sync = document.getElementById("chat-sync");
    return sync ? number(sync, "data-last-event") : 0;
  }

  function advance() {
    while (seen[lastEvent + 1]) {
      delete seen[lastEvent + 1];
      lastEvent += 1;
    }
    Object.keys(seen).forEach(function (event) {
      if (Number(event) <= lastEvent) delete seen[event];
    });
  }

  function noteEvents(text) {
    var pattern = /data-event="(\d+)"/g;
    var match;
    while ((match = pattern.exec(text))) {
      var event = parseInt(match[1], 10);
      if (event > lastEvent) seen[event] = true;
    }
    advance();
    if (Object.keys(seen).length && !gapTimer) {
      gapTimer = setTimeout(function () {
        gapTimer = null;
        if (Object.keys(seen).length) document.body.dispatchEvent(new CustomEvent("chat:gap"));
      }, GAP_WAIT_MS);
    }
  }

  // The catch-up form asks for everything after what the page has.
  document.addEventListener("htmx:wsConfigSend", function (event) {
    if (event.target.id !== "catch-up") return;
    var container = log();
    var list = container ? articles(container) : [];
    var ids = list.map(function (article) {
      return number(article, "data-message-id");
    });
    event.detail.parameters.after = ids.length ? Math.max.apply(null, ids) : 0;
    event.detail.parameters.first = ids.length ? Math.min.apply(null, ids) : 0;
    event.detail.parameters.since = lastEvent;
  });

  // ---- Read receipts ----

  // Once new messages have been on screen for a moment, tell the server they were read.
  var READ_AFTER_MS = 1000;
  var readTimer = null;

  function messagesRead() {
    if (readTimer || document.visibilityState !== "visible") return;
    readTimer = setTimeout(function () {
      readTimer = null;
      document.body.dispatchEvent(new CustomEvent("chat:read"));
    }, READ_AFTER_MS);
  }

  document.addEventListener("htmx:wsConfigSend", function (event) {
    if (event.target.id !== "read-receipt") return;
    var container = log();
    var ids = container ? articles(container).map(function (article) {
      return number(article, "data-message-id");
    }) : [];
    event.detail.parameters.up_to = ids.length ? Math.max.apply(null, ids) : 0;
  });

  document.addEventListener("visibilitychange", messagesRead);

  // ---- Frames from the server ----

  var hadFocus = null;
  var wasNearBottom = true;

  // An edit or deletion replaces the message shown, unless the page already has a newer
  // version of it (a catch-up can overtake a push).
  var VERSION = /^\s*<article id="(message-\d+)"[^>]*data-event="(\d+)"/;

  document.addEventListener("htmx:wsBeforeMessage", function (event) {
    var text = event.detail.message;
    var version = VERSION.exec(text);
    var shown = version && document.getElementById(version[1]);
    if (shown && number(shown, "data-event") >= parseInt(version[2], 10)) {
      event.preventDefault();
      noteEvents(text);
      return;
    }
    var active = document.activeElement;
    hadFocus = active && active.id && active.closest("#composer") ? active.id : null;
    var container = log();
    wasNearBottom = !container || nearBottom(container);
  });

  document.addEventListener("htmx:wsAfterMessage", function (event) {
    var text = event.detail.message;
    var container = log();
    if (container) {
      normalize(container);
      localizeTimes(container);
      if (wasNearBottom) container.scrollTop = container.scrollHeight;
    }
    if (text.indexOf("<article") !== -1) messagesRead();
    if (text.indexOf('<div id="messages" role="log"') !== -1) {
      // Too far behind: the list was replaced by the latest page, and pushes that overtook
      // this answer went with the old list. Start counting from the answer.
      lastEvent = syncedEvent();
      seen = {};
    } else if (text.indexOf('id="chat-sync"') !== -1) {
      // A catch-up: the page now has everything up to the server's count at that time.
      lastEvent = Math.max(lastEvent, syncedEvent());
      advance();
    } else {
      noteEvents(text);
    }
    if (hadFocus && document.activeElement === document.body) {
      var element = document.getElementById(hadFocus);
      if (element) element.focus();
    }
  });

  // ---- Connection ----

  var retries = 0;

  document.addEventListener("htmx:wsOpen", function () {
    retries = 0;
    setStatus("");
  });

  document.addEventListener("htmx:wsClose", function (event) {
    var code = event.detail.event.code;
    if (code >= NOT_ALLOWED.min && code <= NOT_ALLOWED.max) {
      setStatus("You can no longer follow this chat live. Reload the page to check why.");
      return;
    }
    setStatus("Reconnecting…");
    if (RECONNECT_CODES.indexOf(code) !== -1) {
      var delay = Math.random() * Math.min(30000, 500 * Math.pow(2, retries));
      retries += 1;
      setTimeout(event.detail.socketWrapper.reconnect, delay);
    }
  });

  // ---- Page ----

  document.addEventListener("DOMContentLoaded", function () {
    lastEvent = syncedEvent();
    localizeTimes(document);
    var container = log();
    if (container) container.scrollTop = container.scrollHeight;
  });

  // Enter sends; Shift+Enter starts a new line.
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    if (!(target instanceof HTMLTextAreaElement) || !target.closest("#composer")) return;
    event.preventDefault();
    target.form.requestSubmit();
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    localizeTimes(event.target);
  });
})();
