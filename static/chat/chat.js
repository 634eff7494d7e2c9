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
  // While someone types, one signal per this long; after a sent message, one this long
  // after the last (the server drops extras within 1.5 s, so one a little early passes)...
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

  // ---- Words ----

  // Every word this script writes comes from the page, in the page's language
  // (chat/i18n.py page_strings, rendered as JSON by chat/page_words.html).
  var wordsCache = null;

  function words() {
    if (wordsCache) return wordsCache;
    var element = document.getElementById("page-strings");
    try {
      wordsCache = element ? JSON.parse(element.textContent) : {};
    } catch (error) {
      wordsCache = {};
    }
    return wordsCache;
  }

  function word(name) {
    return words()[name] || "";
  }

  // The page's language, for dates, plurals and lists.
  function lang() {
    return document.documentElement.lang || undefined;
  }

  // A plural message for the count: `forms` has one text per CLDR category ("one",
  // "few", "many", "other"), each with "{n}" where the number goes.
  function plural(forms, count) {
    if (!forms) return String(count);
    var category = "other";
    try {
      category = new Intl.PluralRules(lang()).select(count);
    } catch (error) {
      category = count === 1 ? "one" : "other";
    }
    return (forms[category] || forms.other || "{n}").replace("{n}", String(count));
  }

  // The words a pushed fragment leaves out (it is the same bytes in every language): its
  // empty elements show the page's words by CSS, and get them here as text. The more
  // particular selector of an element comes first.
  var FILLED = [
    [".message-edited:empty", "edited"],
    [".message-deleted:empty", "deleted"],
    ["a.message-edit:empty", "edit"],
    [".message-delete button:empty", "delete"],
    ["a.message-reply:empty", "reply"],
    [".reaction-picker summary:empty", "react"],
    ["a.reaction-choose:empty", "react"],
    [".message-pin[data-pinned] button:empty", "unpin"],
    [".message-pin button:empty", "pin"],
    [".message-pinned:empty", "pinned"],
    [".entry-preview[data-deleted]:empty", "preview_deleted"],
    [".entry-preview:empty", "preview_none"],
    ['.chat-badge[data-kind="direct"]:empty', "direct"],
    [".chat-badge:empty", "private"],
  ];

  function fillWords(root) {
    if (!root || !root.querySelectorAll) return;
    FILLED.forEach(function (fill) {
      root.querySelectorAll(fill[0]).forEach(function (element) {
        element.textContent = word(fill[1]);
      });
    });
    pressReactions(root);
  }

  // The person's own reactions are pressed, for screen readers too (the page's CSS shows
  // them): a reaction lists who reacted in data-reactors, the same for every viewer.
  function pressReactions(root) {
    var mine = String(me());
    root.querySelectorAll(".reaction[data-reactors]").forEach(function (button) {
      var pressed = button.getAttribute("data-reactors").split(" ").indexOf(mine) !== -1;
      button.setAttribute("aria-pressed", pressed ? "true" : "false");
    });
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
    if (sameDay(date, today)) return word("today");
    if (sameDay(date, yesterday)) return word("yesterday");
    var options = { weekday: "long", day: "numeric", month: "long" };
    if (date.getFullYear() !== today.getFullYear()) options.year = "numeric";
    return date.toLocaleDateString(lang(), options);
  }

  // The chat list shows the time of today's last message, the weekday of this week's,
  // and the date of older ones.
  function shortWhen(date) {
    var now = new Date();
    if (sameDay(date, now)) return date.toLocaleTimeString(lang(), { hour: "2-digit", minute: "2-digit" });
    if (now - date < 6 * 24 * 3600 * 1000) return date.toLocaleDateString(lang(), { weekday: "short" });
    return date.toLocaleDateString(lang(), { day: "numeric", month: "short" });
  }

  function localizeTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (time) {
      var date = new Date(time.getAttribute("datetime"));
      if (isNaN(date)) return;
      time.textContent = time.closest("#chat-sidebar")
        ? shortWhen(date)
        : date.toLocaleTimeString(lang(), { hour: "2-digit", minute: "2-digit" });
      time.title = date.toLocaleString(lang());
    });
    localizeSizes(root);
  }

  // A file's size in the page's language: the pushed fragment has digits and SI symbols.
  var SIZE_UNITS = ["byte", "kilobyte", "megabyte", "gigabyte"];

  function localizeSizes(root) {
    root.querySelectorAll("data.attachment-size[value]").forEach(function (element) {
      var size = Number(element.getAttribute("value"));
      var unit = 0;
      while (size >= 999.5 && unit < SIZE_UNITS.length - 1) {
        size /= 1000;
        unit += 1;
      }
      try {
        element.textContent = new Intl.NumberFormat(lang(), {
          style: "unit",
          unit: SIZE_UNITS[unit],
          unitDisplay: "short",
          maximumFractionDigits: unit && size < 99.95 ? 1 : 0,
        }).format(size);
      } catch (error) {
        // Without Intl's units the fragment's own text stays.
      }
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
      button.querySelector(".jump-count").textContent = " " + plural(word("new_below"), newBelow);
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
    // What a screen reader says: "3 unread messages", in the page's language and plural.
    var spoken = link.querySelector(".unread-words");
    var text = count ? plural(word("unread"), count) : "";
    if (spoken && spoken.textContent !== text) spoken.textContent = text;
    if (badge) badge.hidden = count === 0;
    // Read means its mentions were seen too.
    if (count === 0) setMentions(link, 0);
  }

  function mentionsMe(carrier) {
    return carrier.mentions.indexOf(String(me())) >= 0 || carrier.mentions.indexOf("here") >= 0;
  }

  function setMentions(link, count) {
    if (!link) return;
    count = Math.max(0, count);
    if (link.getAttribute("data-mentions") !== String(count)) link.setAttribute("data-mentions", count);
    var badge = link.querySelector(".mention-badge");
    var shown = link.querySelector(".mention-count");
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
      mentionCount: number(element, "data-mention-count"),
      // Who the new message mentions: user ids, or "here" for everyone in the chat.
      mentions: (element.getAttribute("data-mentions") || "").split(" "),
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
    var mentionsBefore = item ? number(entryLink(item), "data-mentions") : 0;
    var unread;
    var mentions = mentionsBefore;
    if (carrier.action === "message") {
      if (item && carrier.seq <= number(item, "data-last-seq")) return;
      unread = carrier.author === me() ? 0 : before + 1;
      if (carrier.author === me()) mentions = 0;
      else if (mentionsMe(carrier)) mentions += 1;
      if (!replay) notify(carrier, fresh);
    } else if (carrier.action === "add") {
      if (item && replay) return;
      unread = carrier.unread;
      mentions = carrier.mentionCount;
    } else if (carrier.action === "update") {
      if (!item) return;
      unread = before;
      if (carrier.chatId === openId) {
        baseTitle = fresh.querySelector(".entry-name").textContent + " · " + word("site");
      }
    } else {
      return;
    }
    setUnread(entryLink(fresh), unread);
    setMentions(entryLink(fresh), mentions);
    localizeTimes(fresh);
    fillWords(fresh);
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
      notice.textContent = word("removed");
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
      text = word("typing_one").replace("{name}", names[0]);
    } else if (names.length > 1) {
      text = word("typing_many").replace("{names}", listOf(names));
    }
    if (status.textContent !== text) status.textContent = text;
  }

  // "a, b and c", as the page's language writes a list.
  function listOf(names) {
    try {
      return new Intl.ListFormat(lang(), { style: "long", type: "conjunction" }).format(names);
    } catch (error) {
      return names.slice(0, -1).join(", ") + " " + word("and") + " " + names[names.length - 1];
    }
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
      button.title = word("notifications_blocked");
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
    // Direct messages and mentions notify (when the person opted in and looks elsewhere).
    if ((carrier.kind !== "direct" && !mentionsMe(carrier)) || carrier.author === me()) return;
    if (document.visibilityState === "visible" || !notificationsOn()) return;
    var name = fresh.querySelector(".entry-name");
    var preview = fresh.querySelector(".entry-preview");
    var link = entryLink(fresh);
    try {
      var notification = new Notification(name ? name.textContent : word("new_message"), {
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

  // ---- A pushed message's actions ----

  // Pushed messages carry an empty .message-actions[data-actions]: the page's template
  // (rendered for one placeholder id, with this page's words and token) goes in its place.
  function fillActions(root) {
    var template = document.getElementById("message-actions-template");
    if (!template || !root.querySelectorAll) return;
    var placeholder = template.getAttribute("data-message-id");
    root.querySelectorAll(".message-actions[data-actions]").forEach(function (slot) {
      var article = slot.closest("article.message");
      if (!article) return;
      var holder = document.createElement("template");
      holder.innerHTML = template.innerHTML.split(placeholder).join(article.getAttribute("data-message-id"));
      var group = holder.content.querySelector(".message-actions");
      if (!group) return;
      var pin = group.querySelector(".message-pin");
      if (pin && slot.getAttribute("data-actions") === "pinned") {
        pin.setAttribute("data-pinned", "");
        pin.querySelector('input[name="pinned"]').value = "0";
        pin.querySelector("button").setAttribute("aria-labelledby", "word-unpin");
      }
      slot.replaceWith(group);
      if (window.htmx) window.htmx.process(group);
    });
  }

  // ---- Replying ----

  // A message's Reply action makes the composer answer it; without JavaScript its link
  // opens the page with the composer answering it.
  function replyParts() {
    return {
      input: document.querySelector('#composer input[name="reply_to"]'),
      banner: document.getElementById("reply-banner"),
      text: document.querySelector('#composer textarea[name="text"]'),
    };
  }

  function clearReply() {
    var parts = replyParts();
    if (parts.input) parts.input.value = "";
    if (parts.banner) parts.banner.hidden = true;
  }

  document.addEventListener("click", function (event) {
    if (!event.target.closest) return;
    var link = event.target.closest("a.message-reply");
    var parts = replyParts();
    if (link && parts.input && parts.banner) {
      var article = link.closest("article.message");
      event.preventDefault();
      parts.input.value = link.getAttribute("data-reply-to");
      var author = article ? article.querySelector(".message-author") : null;
      var text = article ? article.querySelector(".message-text") : null;
      parts.banner.querySelector(".reply-banner-author").textContent = author ? author.textContent : "";
      parts.banner.querySelector(".reply-banner-text").textContent = text ? text.textContent.trim().slice(0, 80) : "";
      parts.banner.hidden = false;
      if (parts.text) parts.text.focus();
    } else if (event.target.closest("#reply-cancel")) {
      event.preventDefault();
      clearReply();
      if (parts.text) parts.text.focus();
    }
  });

  document.addEventListener("keydown", function (event) {
    var parts = replyParts();
    if (event.key === "Escape" && event.target === parts.text && parts.banner && !parts.banner.hidden) {
      clearReply();
    }
  });

  // ---- Mentions ----

  // While "@name" is typed before the caret, the server suggests the chat's members (an
  // htmx request for a rendered list); arrows choose, Enter or Tab puts the name in,
  // Escape closes. Without JavaScript, typing the whole name is enough.
  var MENTION_TYPED = /(^|\s)@([\w.@+-]{0,150})$/;
  var mentionTimer = null;

  function suggestions() {
    return document.getElementById("mention-suggestions");
  }

  function typedMention(textarea) {
    var match = MENTION_TYPED.exec(textarea.value.slice(0, textarea.selectionStart));
    return match ? match[2] : null;
  }

  function closeSuggestions() {
    var list = suggestions();
    if (list && !list.hidden) {
      list.hidden = true;
      list.innerHTML = "";
    }
  }

  function askSuggestions(textarea) {
    var prefix = typedMention(textarea);
    var composer = document.getElementById("composer");
    if (prefix === null || !composer || !window.htmx) return closeSuggestions();
    var url = composer.getAttribute("data-mentions-url") + "?q=" + encodeURIComponent(prefix);
    window.htmx.ajax("GET", url, { target: "#mention-suggestions", swap: "innerHTML" }).then(function () {
      var list = suggestions();
      // Still typing the same name: show what came (if anything).
      if (list) list.hidden = typedMention(textarea) === null || !list.querySelector("[role=option]");
    });
  }

  function moveSuggestion(step) {
    var options = Array.prototype.slice.call(suggestions().querySelectorAll("[role=option]"));
    var at = options.findIndex(function (option) {
      return option.getAttribute("aria-selected") === "true";
    });
    var next = (at + step + options.length) % options.length;
    options.forEach(function (option, index) {
      option.setAttribute("aria-selected", index === next ? "true" : "false");
    });
  }

  function putMention(textarea, option) {
    var before = textarea.value.slice(0, textarea.selectionStart);
    var after = textarea.value.slice(textarea.selectionStart);
    var match = MENTION_TYPED.exec(before);
    if (!match || !option) return closeSuggestions();
    var start = before.length - match[2].length;
    var name = option.getAttribute("data-username") + " ";
    textarea.value = before.slice(0, start) + name + after;
    textarea.selectionStart = textarea.selectionEnd = start + name.length;
    closeSuggestions();
    textarea.focus();
  }

  document.addEventListener("input", function (event) {
    var textarea = event.target;
    if (!(textarea instanceof HTMLTextAreaElement) || !textarea.closest("#composer")) return;
    clearTimeout(mentionTimer);
    if (typedMention(textarea) === null) return closeSuggestions();
    mentionTimer = setTimeout(function () {
      askSuggestions(textarea);
    }, 150);
  });

  // In the capture phase: while suggestions show, these keys are theirs, not the composer's.
  document.addEventListener(
    "keydown",
    function (event) {
      var list = suggestions();
      var textarea = event.target;
      if (!list || list.hidden || !(textarea instanceof HTMLTextAreaElement)) return;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        moveSuggestion(event.key === "ArrowDown" ? 1 : -1);
      } else if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") {
        event.preventDefault();
        event.stopImmediatePropagation();
        putMention(textarea, list.querySelector("[role=option][aria-selected=true]"));
      } else if (event.key === "Escape") {
        event.preventDefault();
        event.stopImmediatePropagation();
        closeSuggestions();
      }
    },
    true,
  );

  document.addEventListener("click", function (event) {
    var option = event.target.closest && event.target.closest("#mention-suggestions [role=option]");
    var textarea = document.querySelector('#composer textarea[name="text"]');
    if (option && textarea) putMention(textarea, option);
  });

  // ---- Files ----

  // Files can't go over the socket: while the composer has some (chosen, dropped on the
  // conversation, or pasted into the composer) it is posted over HTTP as multipart, and
  // the server answers with a fresh composer. The message arrives by the push, as any.
  function fileInput() {
    return document.querySelector('#composer input[type="file"]');
  }

  // With files, the text may be left empty.
  function filesChanged(input) {
    var field = input.form && input.form.querySelector('textarea[name="text"]');
    if (field) field.required = !input.files.length;
  }

  function addFiles(list) {
    var input = fileInput();
    if (!input || !list || !list.length || typeof DataTransfer === "undefined") return;
    var transfer = new DataTransfer();
    Array.prototype.forEach.call(input.files, function (file) {
      transfer.items.add(file);
    });
    Array.prototype.forEach.call(list, function (file) {
      transfer.items.add(file);
    });
    input.files = transfer.files;
    filesChanged(input);
  }

  document.addEventListener("change", function (event) {
    if (event.target === fileInput()) filesChanged(event.target);
  });

  function dropsFiles(event) {
    var types = event.dataTransfer ? Array.prototype.slice.call(event.dataTransfer.types) : [];
    return types.indexOf("Files") !== -1 && event.target.closest && event.target.closest("#chat") && fileInput();
  }

  document.addEventListener("dragover", function (event) {
    if (!dropsFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });

  document.addEventListener("drop", function (event) {
    if (!dropsFiles(event)) return;
    event.preventDefault();
    addFiles(event.dataTransfer.files);
    var field = document.querySelector("#composer textarea");
    if (field) field.focus();
  });

  document.addEventListener("paste", function (event) {
    var files = event.clipboardData && event.clipboardData.files;
    if (!files || !files.length || !event.target.closest || !event.target.closest("#composer")) return;
    event.preventDefault();
    addFiles(files);
  });

  document.addEventListener("htmx:wsConfigSend", function (event) {
    var form = event.target;
    if (form.id !== "composer") return;
    var input = fileInput();
    if (!input || !input.files.length) {
      delete event.detail.parameters.files;
      return;
    }
    event.preventDefault();
    if (event.detail.triggeringEvent) event.detail.triggeringEvent.preventDefault();
    window.htmx
      .ajax("POST", form.getAttribute("action"), { source: form, target: "#composer", swap: "outerHTML" })
      .then(function () {
        var field = document.querySelector("#composer textarea");
        if (field) field.focus({ preventScroll: true });
      });
  });

  // ---- Sending ----

  // A message goes with a client id, so that one sent twice (Enter pressed again before
  // the answer) is stored once. Text typed after a send, before its answer comes, is the
  // next message: it goes with an id of its own, and the answer (a fresh composer) does
  // not wipe it.
  var unanswered = {}; // client id -> {text, replyTo} sent with it

  function newClientId() {
    if (window.crypto.randomUUID) return window.crypto.randomUUID();
    // Not in a secure context (plain HTTP, not on localhost): a version 4 UUID by hand.
    var bytes = window.crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map
      .call(bytes, function (byte) {
        return (byte + 0x100).toString(16).slice(1);
      })
      .join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }

  document.addEventListener("htmx:wsConfigSend", function (event) {
    if (event.target.id !== "composer" || event.defaultPrevented) return;
    if (event.detail.errors && event.detail.errors.length) return;
    var parameters = event.detail.parameters;
    var id = parameters.client_id;
    var sent = unanswered[id];
    if (!id || (sent && sent.text !== parameters.text)) {
      id = parameters.client_id = newClientId();
      event.target.querySelector('input[name="client_id"]').value = id;
    }
    unanswered[id] = { text: parameters.text, replyTo: parameters.reply_to || "" };
  });

  // The answer to a send swaps in a fresh composer, unless something new was typed since:
  // then the composer stays as it is, and its text gets a new id if it still had the
  // answered one.
  var SENT_ANSWER = /data-sent-client-id="([^"]+)"/;
  var keepComposer = null;

  document.addEventListener("htmx:wsBeforeMessage", function (event) {
    var answered = SENT_ANSWER.exec(event.detail.message);
    if (!answered) return;
    var sent = unanswered[answered[1]];
    delete unanswered[answered[1]];
    var field = document.querySelector('#composer textarea[name="text"]');
    // (An answer already had, to a send repeated, has no record left: it changes nothing.)
    keepComposer = field && field.value.trim() && (!sent || field.value !== sent.text) ? answered[1] : null;
    if (keepComposer && sent && replyParts().input.value === sent.replyTo) clearReply();
  });

  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    if (!keepComposer || event.detail.target.id !== "composer-fields") return;
    event.detail.shouldSwap = false;
    var input = event.detail.target.querySelector('input[name="client_id"]');
    var fresh = event.detail.fragment.querySelector('input[name="client_id"]');
    if (input && fresh && input.value === keepComposer) input.value = fresh.value;
    keepComposer = null;
  });

  // ---- Deleting ----

  // Deleting asks first, in the page's language: the pushed message carries no words, so
  // the question is asked here rather than by an hx-confirm attribute on it.
  document.addEventListener("htmx:confirm", function (event) {
    if (!event.detail.elt.closest || !event.detail.elt.closest(".message-delete")) return;
    event.preventDefault();
    if (window.confirm(word("confirm_delete"))) event.detail.issueRequest(true);
  });

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
      // The menu (a <details>) the focus is in, or the Room menu: closed, and the focus
      // back on its button.
      var menu = target.closest("details[open]") || document.querySelector("details.room-menu[open]");
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

  // ---- Theme ----

  // The switcher posts with htmx (templates/theme_switcher.html); the server answers with
  // the theme it remembered, and the page takes it on without a reload.
  document.addEventListener("chat:theme", function (event) {
    var theme = event.detail && event.detail.theme;
    if (["light", "dark", "system"].indexOf(theme) === -1) return;
    var root = document.documentElement;
    root.setAttribute("data-theme", theme);
    root.classList.toggle("dark", theme === "dark");
    var scheme = document.querySelector('meta[name="color-scheme"]');
    if (scheme) scheme.setAttribute("content", theme === "system" ? "light dark" : theme);
    document.querySelectorAll('#theme-switcher button[name="theme"]').forEach(function (button) {
      button.setAttribute("aria-pressed", button.value === theme ? "true" : "false");
    });
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
      close.closest(".notice").remove();
      if (list && !list.querySelector(".notice")) list.remove();
      // The button had the focus: it goes on to the page's content, not to its top.
      var content = document.getElementById("content");
      if (document.activeElement === document.body && content) content.focus({ preventScroll: true });
    }
  });

  // What opened the side panel (the Members item of the Room menu): the focus goes back
  // there when it closes, or to the button of the menu it was in.
  var panelOpener = null;

  document.addEventListener("htmx:beforeRequest", function (event) {
    var target = event.detail.target;
    if (target && target.id === "side-panel-body") panelOpener = event.detail.elt;
  });

  function closePanel() {
    var panel = document.getElementById("side-panel");
    if (!panel) return;
    var active = document.activeElement;
    var focusInside = !active || active === document.body || panel.contains(active);
    panel.hidden = true;
    // Emptied, so that what it polls (who is online) stops.
    document.getElementById("side-panel-body").innerHTML = "";
    var opener = panelOpener;
    panelOpener = null;
    if (!focusInside || !opener || !document.body.contains(opener)) return;
    // Hidden in a closed menu, it does not take the focus: the menu's button does.
    opener.focus();
    var menu = opener.closest("details");
    if (document.activeElement !== opener && menu) menu.querySelector("summary").focus();
  }

  // ---- Frames from the server ----

  var hadFocus = null;
  var focusedMessage = null;
  var wasNearBottom = true;

  // A message that is replaced (edited, deleted) takes the focus of its controls with
  // it; the focus goes to the same control of the new version: its Edit link for the
  // Edit link or the edit form, its Delete button, or, when it has none (deleted), the
  // composer. Keyboard users are not dropped at the top of the page.
  function messageFocus(active) {
    var article = active && active.closest ? active.closest("article.message") : null;
    if (!article) return null;
    var control = null;
    if (active.classList.contains("message-edit") || active.closest(".message-edit-form")) {
      control = ".message-edit";
    } else if (active.closest(".message-delete")) {
      control = ".message-delete button";
    } else if (active.closest(".reaction-picker")) {
      control = ".reaction-picker summary";
    } else if (active.id) {
      // A reaction or the Pin button: the same one in the new version, if it is still there.
      control = "#" + CSS.escape(active.id);
    }
    return { id: article.id, control: control };
  }

  function restoreMessageFocus(focus) {
    if (!focus || document.activeElement !== document.body) return;
    var article = document.getElementById(focus.id);
    var control = article && focus.control ? article.querySelector(focus.control) : null;
    // Hidden (another's message, or a deleted one), the control does not take the focus.
    if (control) control.focus();
    if (control && document.activeElement === control) return;
    var field = document.querySelector("#composer textarea");
    if (field && !field.disabled) field.focus({ preventScroll: true });
  }

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
    focusedMessage = messageFocus(active);
    var container = log();
    wasNearBottom = !container || nearBottom(container);
  });

  document.addEventListener("htmx:wsAfterMessage", function (event) {
    var text = event.detail.message;
    fillActions(document);
    fillWords(document.body);
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
    notePins();
    if (hadFocus && document.activeElement === document.body) {
      var element = document.getElementById(hadFocus);
      if (element) element.focus();
    }
    restoreMessageFocus(focusedMessage);
    focusedMessage = null;
  });

  // Anything htmx swapped by a request: an older page, an edit, the chat list, a panel.
  document.addEventListener("htmx:afterSettle", function (event) {
    fillWords(document.body);
    refreshConversation(null);
    syncSidebar();
    localizeTimes(event.target);
    // An edit saved in place: the new version replaced the form that had the focus.
    var settled = event.target;
    if (settled.matches && settled.matches("article.message") && event.detail.target && event.detail.target.id === settled.id) {
      // Or a reaction or pin answered with the new version: htmx keeps the focus on a
      // control with an id; the picker's emoji give it to the picker's button.
      var asked = messageFocus(event.detail.requestConfig ? event.detail.requestConfig.elt : null);
      restoreMessageFocus({ id: settled.id, control: (asked && asked.control) || ".message-edit" });
    }
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

  // A reaction or pin sent with htmx is answered with the message's new version, swapped
  // in place: not over a newer version that a push brought meanwhile.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (!target || !target.matches || !target.matches("article.message")) return;
    var version = VERSION.exec(event.detail.serverResponse || "");
    if (version && version[1] === target.id && number(target, "data-event") > parseInt(version[2], 10)) {
      event.detail.shouldSwap = false;
    }
  });

  // ---- Pins ----

  // A push replaces the chat's pin count (#chat-pin-count) whenever its pins change: an
  // open Pinned panel then fetches itself afresh (hx-trigger="chat:pins from:body").
  var pinCount = null;

  function notePins() {
    var count = document.getElementById("chat-pin-count");
    if (count && pinCount && count !== pinCount) document.body.dispatchEvent(new CustomEvent("chat:pins"));
    pinCount = count;
  }

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
      setStatus(word("not_allowed"));
      return;
    }
    setStatus(word("reconnecting"));
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
    fillWords(document.body);
    notePins();
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
