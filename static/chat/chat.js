// The workspace's little script. Everything works without it (plain links and form posts);
// htmx and its WebSocket extension swap the server's fragments in. This adds:
// - Enter to send, the focus kept in the composer, local times, the composer focused;
// - delivery you can trust: messages in order and once each, a missed push noticed and
//   fetched (every fragment carries its chat's event number), and reconnection for the
//   close codes htmx does not retry;
// - the conversation's looks that differ per viewer or per day: a run of one author's
//   messages grouped, day separators, "Jump to latest" for a reader who scrolled up;
// - reading: a message counts as read once it has been on screen in a visible tab;
// - the chat list kept live from the pushed carriers, with this person's unread counts,
//   the order by latest activity and the count in the tab's title;
// - who is typing, notifications, edit in place, and closing menus and notices.
// It reads state from data-* attributes of what htmx swapped in, never from the text.
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
  // Messages of one author closer than this are shown as one group.
  var GROUP_WINDOW_MS = 5 * 60 * 1000;
  // While someone types, one signal per this long (the server drops extras within 2 s)...
  var TYPING_SEND_MS = 3000;
  var TYPING_SERVER_MS = 2000;
  // ...and the others show "is typing" this long after the last one.
  var TYPING_SHOWN_MS = 4000;
  // Read receipts wait this long, so that scrolling through sends one.
  var READ_DELAY_MS = 300;
  // Carriers this recent are applied again over a chat list fetched afresh, in case the
  // list was read before their change.
  var CARRIER_REPLAY_MS = 10000;
  var NOTIFY_KEY = "chat:notify";

  function log() {
    return document.getElementById("messages");
  }

  function chatSection() {
    return document.getElementById("chat");
  }

  function articles(container) {
    return Array.prototype.slice.call(container.querySelectorAll("article[data-seq]"));
  }

  function number(element, name) {
    return parseInt(element.getAttribute(name), 10) || 0;
  }

  function me() {
    return number(document.body, "data-user-id");
  }

  function openChatId() {
    var chat = chatSection();
    return chat ? number(chat, "data-chat-id") : 0;
  }

  function nearBottom(element) {
    return element.scrollHeight - element.scrollTop - element.clientHeight < 80;
  }

  function setStatus(text) {
    var status = document.getElementById("connection-status");
    if (status) status.textContent = text;
  }

  // ---- Times ----

  function sameDay(a, b) {
    return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
  }

  function dayLabel(date) {
    var today = new Date();
    var yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    if (sameDay(date, today)) return "Today";
    if (sameDay(date, yesterday)) return "Yesterday";
    var options = { weekday: "long", day: "numeric", month: "long" };
    if (date.getFullYear() !== today.getFullYear()) options.year = "numeric";
    return date.toLocaleDateString(undefined, options);
  }

  // The chat list shows the time of today's last message, the weekday of this week's,
  // and the date of older ones.
  function shortWhen(date) {
    var now = new Date();
    if (sameDay(date, now)) return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (now - date < 6 * 24 * 3600 * 1000) return date.toLocaleDateString([], { weekday: "short" });
    return date.toLocaleDateString([], { day: "numeric", month: "short" });
  }

  function localizeTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (time) {
      var date = new Date(time.getAttribute("datetime"));
      if (isNaN(date)) return;
      time.textContent = time.closest("#chat-sidebar")
        ? shortWhen(date)
        : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      time.title = date.toLocaleString();
    });
  }

  function messageDate(article) {
    var time = article.querySelector(".message-header time[datetime]");
    return time ? new Date(time.getAttribute("datetime")) : null;
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

  // ---- Grouping and days ----

  // Day separators are added and removed one by one (not rebuilt), since the log is a
  // live region: a screen reader announces what is inserted into it.
  function separatorFor(article) {
    var before = article.previousElementSibling;
    if (before && before.id === "new-messages") before = before.previousElementSibling;
    return before && before.classList.contains("day-separator") ? before : null;
  }

  function decorate(container) {
    var keep = [];
    var previous = null;
    var previousDate = null;
    articles(container).forEach(function (article) {
      var date = messageDate(article);
      if (!date || isNaN(date)) return;
      if (!previousDate || !sameDay(date, previousDate)) {
        var label = dayLabel(date);
        var separator = separatorFor(article);
        if (!separator || separator.getAttribute("aria-label") !== label) {
          separator = document.createElement("div");
          separator.className = "day-separator";
          separator.setAttribute("role", "separator");
          separator.setAttribute("aria-label", label);
          var text = document.createElement("span");
          text.setAttribute("aria-hidden", "true");
          text.textContent = label;
          separator.appendChild(text);
          var divider = article.previousElementSibling;
          article.parentNode.insertBefore(
            separator,
            divider && divider.id === "new-messages" ? divider : article
          );
        }
        keep.push(separator);
      }
      var grouped =
        previous !== null &&
        article.previousElementSibling === previous &&
        previous.getAttribute("data-author-id") === article.getAttribute("data-author-id") &&
        !previous.hasAttribute("data-deleted") &&
        !article.hasAttribute("data-deleted") &&
        date - previousDate >= 0 &&
        date - previousDate < GROUP_WINDOW_MS;
      article.classList.toggle("message-grouped", grouped);
      previous = article;
      previousDate = date;
    });
    container.querySelectorAll(".day-separator").forEach(function (separator) {
      if (keep.indexOf(separator) === -1) separator.remove();
    });
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

  // ---- Reading ----

  // Others' messages after the member's last read one are unread until they have been on
  // screen (half of one, or half the log for a long one) while the tab is visible. The
  // server keeps a watermark ("read up to id N"), so seeing a message reads those before.
  var reading = {
    on: false,
    watermark: 0,
    sent: 0,
    unseen: {},
    // Unread messages older than the page (more than a page of them): read once
    // anything newer is seen.
    older: 0,
    timer: null,
  };
  var observer = null;
  var observedLog = null;
  var observed = new WeakSet();
  var knownIds = {};
  var newestId = 0;

  function unseenCount() {
    return Object.keys(reading.unseen).length + reading.older;
  }

  function watch(container) {
    if (!("IntersectionObserver" in window)) return;
    if (observedLog !== container) {
      if (observer) observer.disconnect();
      observer = new IntersectionObserver(markSeen, { root: container, threshold: [0, 0.5, 1] });
      observedLog = container;
      observed = new WeakSet();
    }
  }

  // Learn the articles the log holds now; returns the ones that arrived (newer than any
  // the page had), as opposed to older pages loaded on demand.
  function track(container) {
    watch(container);
    var arrived = [];
    var newest = newestId;
    articles(container).forEach(function (article) {
      var id = number(article, "data-message-id");
      if (observer && !observed.has(article)) {
        observed.add(article);
        observer.observe(article);
      }
      if (article.hasAttribute("data-deleted")) delete reading.unseen[id];
      if (knownIds[id]) return;
      knownIds[id] = true;
      if (id > newestId) arrived.push(article);
      newest = Math.max(newest, id);
      if (
        reading.on &&
        id > reading.watermark &&
        number(article, "data-author-id") !== me() &&
        !article.hasAttribute("data-deleted")
      ) {
        reading.unseen[id] = true;
      }
    });
    newestId = newest;
    return arrived;
  }

  function onScreen(element, frame) {
    var box = element.getBoundingClientRect();
    var shown = Math.min(box.bottom, frame.bottom) - Math.max(box.top, frame.top);
    return shown > 0 && shown >= Math.min(box.height, frame.height) * 0.5;
  }

  function markSeen() {
    var container = log();
    if (!reading.on || !container || document.visibilityState !== "visible") return;
    var frame = container.getBoundingClientRect();
    var watermark = reading.watermark;
    Object.keys(reading.unseen).forEach(function (id) {
      var article = document.getElementById("message-" + id);
      if (article && Number(id) > watermark && onScreen(article, frame)) watermark = Number(id);
    });
    if (watermark <= reading.watermark) return;
    reading.watermark = watermark;
    reading.older = 0;
    Object.keys(reading.unseen).forEach(function (id) {
      if (Number(id) <= watermark) delete reading.unseen[id];
    });
    showOpenUnread();
    if (!reading.timer) {
      reading.timer = setTimeout(function () {
        reading.timer = null;
        if (reading.watermark > reading.sent) document.body.dispatchEvent(new CustomEvent("chat:read"));
      }, READ_DELAY_MS);
    }
  }

  document.addEventListener("htmx:wsConfigSend", function (event) {
    if (event.target.id !== "read-receipt") return;
    event.detail.parameters.up_to = reading.watermark;
    reading.sent = reading.watermark;
  });

  document.addEventListener("visibilitychange", markSeen);
  window.addEventListener("focus", markSeen);

  // ---- Arrivals below a reader who scrolled up ----

  var newBelow = 0;

  function showJump() {
    var button = document.getElementById("jump-latest");
    if (!button) return;
    var container = log();
    if (newBelow > 0 && container && !nearBottom(container)) {
      button.querySelector(".jump-count").textContent = " (" + newBelow + " new)";
      button.hidden = false;
    } else {
      newBelow = 0;
      button.hidden = true;
    }
  }

  function onLogScroll() {
    var container = log();
    if (container && nearBottom(container) && newBelow) {
      newBelow = 0;
      showJump();
    }
  }

  document.addEventListener("click", function (event) {
    if (!event.target.closest("#jump-latest")) return;
    var container = log();
    if (container) container.scrollTo({ top: container.scrollHeight, behavior: "smooth" });
    newBelow = 0;
    showJump();
  });

  // ---- The conversation after any change ----

  var scrolledLog = null;

  function refreshConversation(options) {
    var container = log();
    if (!container) return;
    if (scrolledLog !== container) {
      container.addEventListener("scroll", onLogScroll, { passive: true });
      scrolledLog = container;
    }
    normalize(container);
    decorate(container);
    localizeTimes(container);
    var arrived = track(container);
    var follow = options && options.wasNearBottom;
    arrived.forEach(function (article) {
      var author = number(article, "data-author-id");
      if (author === me()) {
        follow = true;
      } else if (options && !options.wasNearBottom) {
        newBelow += 1;
      }
      stopTyping(author);
    });
    if (arrived.length && follow) {
      container.scrollTop = container.scrollHeight;
      newBelow = 0;
    }
    if (arrived.length) followOpenEntry(arrived[arrived.length - 1]);
    showJump();
    markSeen();
    showOpenUnread();
  }

  // A page with the chat open gets its new messages without the chat-list carrier (so
  // that a big room's frames stay small): its own entry follows the newest message here,
  // as the carrier would have it (preview, time, place at the top).
  function followOpenEntry(article) {
    var item = entry(openChatId());
    if (!item || article.hasAttribute("data-deleted")) return;
    var id = number(article, "data-message-id");
    if (id <= number(item, "data-activity")) return;
    item.setAttribute("data-activity", id);
    item.setAttribute("data-last-seq", Math.max(number(item, "data-last-seq"), number(article, "data-seq")));
    var author = article.querySelector(".message-author");
    var body = article.querySelector(".message-body p");
    var preview = item.querySelector(".entry-preview");
    if (preview && author && body) {
      var text = body.firstChild ? body.firstChild.textContent.trim() : "";
      if (text.length > 80) text = text.slice(0, 79) + "…";
      preview.textContent = author.textContent + ": " + text;
    }
    var sent = article.querySelector("time[datetime]");
    var head = item.querySelector(".entry-head");
    if (sent && head) {
      var time = head.querySelector("time") || head.appendChild(document.createElement("time"));
      time.setAttribute("datetime", sent.getAttribute("datetime"));
      localizeTimes(head);
    }
    place(item, item.parentElement && item.parentElement.getAttribute("data-kind"));
  }

  // ---- The chat list ----

  var recentCarriers = [];
  var knownSidebar = null;
  var baseTitle = document.title.replace(/^\(\d+\) /, "");

  function sidebar() {
    return document.getElementById("chat-sidebar");
  }

  function entry(chatId) {
    return document.getElementById("chat-entry-" + chatId);
  }

  function entryLink(item) {
    return item ? item.querySelector("a[data-chat-id]") : null;
  }

  function setUnread(link, count) {
    if (!link) return;
    count = Math.max(0, count);
    if (link.getAttribute("data-unread") !== String(count)) link.setAttribute("data-unread", count);
    var badge = link.querySelector(".unread-badge");
    var shown = link.querySelector(".unread-count");
    if (shown && shown.textContent !== String(count)) shown.textContent = count;
    if (badge) badge.hidden = count === 0;
  }

  // Most recent activity first; a new chat without messages goes last.
  function place(item, kind) {
    var list = document.getElementById(kind === "direct" ? "sidebar-direct" : "sidebar-rooms");
    if (!list) return;
    var activity = number(item, "data-activity");
    var others = Array.prototype.slice.call(list.querySelectorAll(":scope > li[id^='chat-entry-']"));
    for (var i = 0; i < others.length; i += 1) {
      if (others[i] === item) continue;
      if (number(others[i], "data-activity") < activity) {
        if (others[i].previousElementSibling !== item) list.insertBefore(item, others[i]);
        return;
      }
    }
    if (list.lastElementChild !== item) list.appendChild(item);
  }

  function showOpenUnread() {
    var openId = openChatId();
    var link = entryLink(entry(openId));
    if (!link) return updateTitle();
    if (link.getAttribute("aria-current") !== "page") link.setAttribute("aria-current", "page");
    if (reading.on) setUnread(link, unseenCount());
    updateTitle();
  }

  function updateTitle() {
    var nav = sidebar();
    if (!nav) return;
    var total = 0;
    nav.querySelectorAll("a[data-chat-id]").forEach(function (link) {
      total += number(link, "data-unread");
    });
    var title = total > 0 ? "(" + total + ") " + baseTitle : baseTitle;
    if (document.title !== title) document.title = title;
  }

  function readCarrier(element) {
    var template = element.querySelector("template");
    return {
      at: Date.now(),
      action: element.getAttribute("data-action"),
      chatId: number(element, "data-chat-id"),
      kind: element.getAttribute("data-kind"),
      seq: number(element, "data-seq"),
      author: number(element, "data-author-id"),
      unread: number(element, "data-unread"),
      html: template ? template.innerHTML : "",
    };
  }

  function freshEntry(carrier) {
    var template = document.createElement("template");
    template.innerHTML = carrier.html;
    return template.content.querySelector("li");
  }

  // Apply one pushed change to the chat list; `replay` is true when it is applied again
  // over a list fetched afresh, where only what the list lacks is done.
  function applyCarrier(carrier, replay) {
    var item = entry(carrier.chatId);
    var openId = openChatId();
    if (carrier.action === "remove") {
      if (item) item.remove();
      if (carrier.chatId === openId && !replay) leftChat();
      return;
    }
    var fresh = freshEntry(carrier);
    if (!fresh) return;
    var before = item ? number(entryLink(item), "data-unread") : 0;
    var unread;
    if (carrier.action === "message") {
      if (item && carrier.seq <= number(item, "data-last-seq")) return;
      unread = carrier.author === me() ? 0 : before + 1;
      if (!replay) notify(carrier, fresh);
    } else if (carrier.action === "add") {
      if (item && replay) return;
      unread = carrier.unread;
    } else if (carrier.action === "update") {
      if (!item) return;
      unread = before;
      if (carrier.chatId === openId) {
        baseTitle = fresh.querySelector(".entry-name").textContent + " · Chat";
      }
    } else {
      return;
    }
    setUnread(entryLink(fresh), unread);
    localizeTimes(fresh);
    if (item) {
      item.replaceWith(fresh);
    }
    if (carrier.action === "update" && item) {
      // A rename keeps the chat's place: its activity did not change.
    } else {
      place(fresh, carrier.kind);
    }
  }

  function syncSidebar() {
    var nav = sidebar();
    if (!nav) return;
    if (nav !== knownSidebar) {
      // A list fetched afresh (or the page's own): apply again what may be newer than it.
      var replay = knownSidebar !== null;
      knownSidebar = nav;
      localizeTimes(nav);
      if (replay) {
        var now = Date.now();
        recentCarriers = recentCarriers.filter(function (carrier) {
          return now - carrier.at < CARRIER_REPLAY_MS;
        });
        recentCarriers.forEach(function (carrier) {
          applyCarrier(carrier, true);
        });
      }
    }
    var element = document.getElementById("sidebar-update");
    if (element && element.hasAttribute("data-action") && !element.hasAttribute("data-applied")) {
      element.setAttribute("data-applied", "");
      var carrier = readCarrier(element);
      recentCarriers.push(carrier);
      if (recentCarriers.length > 50) recentCarriers.shift();
      applyCarrier(carrier, false);
    }
    showOpenUnread();
  }

  // ---- Removed from the open chat ----

  var removed = false;

  function leftChat() {
    removed = true;
    var notice = document.getElementById("chat-notice");
    if (notice) {
      notice.textContent = "You are no longer a member of this chat.";
      notice.hidden = false;
    }
    var composer = document.getElementById("composer");
    if (composer) {
      composer.querySelectorAll("textarea, button").forEach(function (control) {
        control.disabled = true;
      });
    }
    reading.on = false;
    typists = {};
    showTyping();
    setStatus("");
  }

  // ---- Typing ----

  var typists = {};
  var typingSentAt = 0;

  function showTyping() {
    var status = document.getElementById("typing-status");
    if (!status) return;
    var names = Object.keys(typists).map(function (id) {
      return typists[id].name;
    });
    var text = "";
    if (names.length === 1) {
      text = names[0] + " is typing…";
    } else if (names.length > 1) {
      text = names.slice(0, -1).join(", ") + " and " + names[names.length - 1] + " are typing…";
    }
    if (status.textContent !== text) status.textContent = text;
  }

  function stopTyping(userId) {
    if (!typists[userId]) return;
    clearTimeout(typists[userId].timer);
    delete typists[userId];
    showTyping();
  }

  function applyTypingSignal() {
    var signal = document.getElementById("typing-signal");
    if (!signal || !signal.hasAttribute("data-user-id") || signal.hasAttribute("data-applied")) return;
    signal.setAttribute("data-applied", "");
    var userId = number(signal, "data-user-id");
    if (removed || number(signal, "data-chat-id") !== openChatId() || userId === me()) return;
    if (typists[userId]) clearTimeout(typists[userId].timer);
    typists[userId] = {
      name: signal.getAttribute("data-username"),
      timer: setTimeout(function () {
        stopTyping(userId);
      }, TYPING_SHOWN_MS),
    };
    showTyping();
  }

  document.addEventListener("input", function (event) {
    var target = event.target;
    if (removed || !(target instanceof HTMLTextAreaElement) || !target.closest("#composer")) return;
    if (!target.value.trim() || !document.getElementById("typing")) return;
    var now = Date.now();
    if (now - typingSentAt < TYPING_SEND_MS) return;
    typingSentAt = now;
    document.body.dispatchEvent(new CustomEvent("chat:typing"));
  });

  // A sent message ends the others' "is typing": typing on signals again as soon as the
  // server takes it.
  document.addEventListener("submit", function (event) {
    if (event.target.id === "composer") typingSentAt -= TYPING_SEND_MS - TYPING_SERVER_MS;
  });

  // ---- Notifications ----

  function notificationsOn() {
    try {
      return (
        "Notification" in window &&
        Notification.permission === "granted" &&
        window.localStorage.getItem(NOTIFY_KEY) === "on"
      );
    } catch (error) {
      return false;
    }
  }

  function showNotifyButton() {
    var button = document.getElementById("notify-toggle");
    if (!button || !("Notification" in window)) return;
    button.hidden = false;
    button.setAttribute("aria-pressed", notificationsOn() ? "true" : "false");
    if (Notification.permission === "denied") {
      button.title = "Notifications are blocked in this browser's settings for this site.";
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("#notify-toggle");
    if (!button) return;
    var remember = function (on) {
      try {
        window.localStorage.setItem(NOTIFY_KEY, on ? "on" : "off");
      } catch (error) {
        // Private windows may refuse storage: the choice then lasts for this page only.
      }
      showNotifyButton();
    };
    if (notificationsOn()) return remember(false);
    Notification.requestPermission().then(function (permission) {
      remember(permission === "granted");
    });
  });

  // A new message in a direct chat, while the tab is hidden.
  function notify(carrier, fresh) {
    if (carrier.kind !== "direct" || carrier.author === me()) return;
    if (document.visibilityState === "visible" || !notificationsOn()) return;
    var name = fresh.querySelector(".entry-name");
    var preview = fresh.querySelector(".entry-preview");
    var link = entryLink(fresh);
    try {
      var notification = new Notification(name ? name.textContent : "New message", {
        body: preview ? preview.textContent : "",
        tag: "chat-" + carrier.chatId,
      });
      notification.onclick = function () {
        window.focus();
        if (link) window.location.href = link.href;
        notification.close();
      };
    } catch (error) {
      // Some browsers (Android's) only notify from a service worker: nothing to show.
    }
  }

  // ---- Edit in place ----

  var originals = {};

  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (target && target.classList.contains("message-body") && !target.querySelector("form")) {
      originals[target.id] = target.innerHTML;
    }
  });

  function cancelEdit(form) {
    var body = form.closest(".message-body");
    if (!body || originals[body.id] === undefined) return;
    body.innerHTML = originals[body.id];
    delete originals[body.id];
    var article = body.closest("article");
    var edit = article && article.querySelector(".message-edit");
    if (edit) edit.focus();
  }

  document.addEventListener("click", function (event) {
    var cancel = event.target.closest(".edit-cancel");
    if (cancel) cancelEdit(cancel.form);
  });

  // ---- Keys ----

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var editing = target instanceof HTMLTextAreaElement && target.closest(".message-edit-form");
    if (event.key === "Escape") {
      if (editing) {
        event.preventDefault();
        return cancelEdit(editing);
      }
      var menu = document.querySelector("details.room-menu[open]");
      if (menu) {
        menu.open = false;
        menu.querySelector("summary").focus();
        return;
      }
      var panel = document.getElementById("side-panel");
      if (panel && !panel.hidden) closePanel();
      return;
    }
    // Enter sends (or saves an edit); Shift+Enter starts a new line.
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    if (!(target instanceof HTMLTextAreaElement)) return;
    if (editing) {
      event.preventDefault();
      editing.requestSubmit();
    } else if (target.closest("#composer")) {
      event.preventDefault();
      target.form.requestSubmit();
    }
  });

  // ---- Menus, the side panel, notices ----

  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.room-menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target) || event.target.closest(".menu-item")) menu.open = false;
    });
    if (event.target.closest("#side-panel-close")) closePanel();
    var close = event.target.closest(".notice-close");
    if (close) {
      var list = close.closest("#notices");
      close.closest("li").remove();
      if (list && !list.querySelector("li")) list.remove();
    }
  });

  function closePanel() {
    var panel = document.getElementById("side-panel");
    if (!panel) return;
    panel.hidden = true;
    // Emptied, so that what it polls (who is online) stops.
    document.getElementById("side-panel-body").innerHTML = "";
  }

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
    refreshConversation({ wasNearBottom: wasNearBottom });
    if (text.indexOf('<div id="messages" role="log"') !== -1) {
      // Too far behind: the list was replaced by the latest page, and pushes that overtook
      // this answer went with the old list. Start counting from the answer.
      lastEvent = syncedEvent();
      seen = {};
    } else if (text.indexOf('id="chat-sync"') !== -1) {
      // A catch-up: the page now has everything up to the server's count at that time.
      lastEvent = Math.max(lastEvent, syncedEvent());
      advance();
    } else if (log()) {
      noteEvents(text);
    }
    syncSidebar();
    applyTypingSignal();
    if (hadFocus && document.activeElement === document.body) {
      var element = document.getElementById(hadFocus);
      if (element) element.focus();
    }
  });

  // Anything htmx swapped by a request: an older page, an edit, the chat list, a panel.
  document.addEventListener("htmx:afterSettle", function (event) {
    refreshConversation(null);
    syncSidebar();
    localizeTimes(event.target);
    var target = event.detail.target;
    if (!target) return;
    if (target.classList.contains("message-body")) {
      var field = target.querySelector("textarea");
      if (field) {
        field.focus();
        field.setSelectionRange(field.value.length, field.value.length);
      }
    }
    if (target.id === "side-panel-body" && target.children.length) {
      document.getElementById("side-panel").hidden = false;
      document.getElementById("side-panel-close").focus();
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
    if (removed) return;
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

  // Learn the page's messages (none of them "arrived"), and which of them are unread.
  function startReading(container) {
    var chat = chatSection();
    reading.on = Boolean(chat && chat.hasAttribute("data-last-read"));
    if (reading.on) reading.watermark = reading.sent = number(chat, "data-last-read");
    track(container);
    if (!reading.on) return;
    // The count the server gave counts messages older than the page too.
    var link = entryLink(entry(openChatId()));
    var given = link ? number(link, "data-unread") : 0;
    reading.older = Math.max(0, given - Object.keys(reading.unseen).length);
  }

  function firstView(container) {
    var target = window.location.hash && document.getElementById(window.location.hash.slice(1));
    var divider = document.getElementById("new-messages");
    if (target && container.contains(target)) {
      target.scrollIntoView({ block: "center" });
    } else if (divider) {
      // Start at the first unread message, not at the bottom.
      var offset = divider.getBoundingClientRect().top - container.getBoundingClientRect().top;
      container.scrollTop += offset - 8;
    } else {
      container.scrollTop = container.scrollHeight;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    lastEvent = syncedEvent();
    localizeTimes(document);
    var container = log();
    if (container) {
      normalize(container);
      decorate(container);
      startReading(container);
      firstView(container);
    }
    syncSidebar();
    refreshConversation(null);
    showNotifyButton();
    document.querySelectorAll(".notice-close").forEach(function (button) {
      button.hidden = false;
    });
    // The composer takes the keys when a chat opens, on a desktop (on a phone, the
    // on-screen keyboard would cover the conversation).
    var field = document.querySelector("#composer textarea");
    if (field && !window.location.hash && window.matchMedia("(min-width: 1024px)").matches) {
      field.focus({ preventScroll: true });
    }
  });
})();
