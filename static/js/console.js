// The console's few behaviours that htmx does not have built in:
//  - a card sent to the list replaces the card with the same id in place (except the answer to a submit,
//    older than whatever the socket has already shown); a new one takes its place by time, if the
//    list's filters take it and it is not older than the pages still to load (a submit's always goes in);
//  - after a submit (or Run again) the new card scrolls into view and takes focus; after Older exports,
//    the first card it brought takes focus;
//  - "the link expires in ..." counts down on the page, from each card's data-expires-at;
//  - while the socket is down, cards of active exports poll their own URL every 2 s;
//  - keyboard focus stays on a card's button when the socket replaces the card;
//  - a refused socket (signed out, 4401) goes to the sign-in page instead of retrying;
//  - times marked data-local-time are shown in the browser's time zone ("clock": the time of day
//    alone, as in a card's "last 09:12"), and the new-schedule form's time zone starts as the browser's.
(function () {
  "use strict";

  var browserZone = "";
  try {
    browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (e) {
    browserZone = "";
  }
  var localFormat = null;
  try {
    localFormat = new Intl.DateTimeFormat(undefined, {
      weekday: "short",
      day: "numeric",
      month: "short",
      year: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      timeZoneName: "short",
    });
  } catch (e) {
    localFormat = null;
  }
  var clockFormat = null;
  var dayClockFormat = null;
  try {
    clockFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
    dayClockFormat = new Intl.DateTimeFormat(undefined, {
      day: "numeric",
      month: "short",
      hour: "2-digit",
      minute: "2-digit",
    });
  } catch (e) {
    localFormat = null; // then every time keeps the server's UTC text
  }

  function showLocalTimes(root) {
    root.querySelectorAll("time[data-local-time]").forEach(function (el) {
      var at = new Date(el.getAttribute("datetime"));
      if (!localFormat || isNaN(at.getTime())) return;
      if (el.getAttribute("data-local-time") === "clock") {
        // A card's "last 09:12": the time alone today, with the day otherwise; the full date on hover.
        var today = new Date().toDateString() === at.toDateString();
        el.textContent = (today ? clockFormat : dayClockFormat).format(at);
        el.title = localFormat.format(at);
        return;
      }
      if (!el.title) el.title = el.textContent.trim(); // the schedule's own zone stays at hand
      el.textContent = localFormat.format(at);
    });
    root.querySelectorAll("[data-browser-zone]").forEach(function (el) {
      if (browserZone) el.textContent = browserZone;
    });
    root.querySelectorAll("input[data-browser-zone-input]").forEach(function (input) {
      if (!input.value && browserZone) input.value = browserZone;
    });
  }

  document.addEventListener("htmx:load", function (evt) {
    var el = evt.detail && evt.detail.elt;
    if (el && el.querySelectorAll) showLocalTimes(el.parentElement || el);
  });
  document.addEventListener("DOMContentLoaded", function () {
    showLocalTimes(document);
  });

  var POLL_MS = 2000;
  var pollTimer = null;

  function setLive(state, text) {
    var el = document.getElementById("live-status");
    if (el) {
      el.dataset.state = state;
      el.textContent = text;
    }
  }

  function pollActiveCards() {
    document.querySelectorAll(".export-card[data-active]").forEach(function (card) {
      htmx.trigger(card, "poll");
    });
  }

  function startPolling() {
    document.body.classList.add("ws-down");
    if (pollTimer === null) {
      pollTimer = window.setInterval(pollActiveCards, POLL_MS);
    }
  }

  function stopPolling() {
    document.body.classList.remove("ws-down");
    if (pollTimer !== null) {
      window.clearInterval(pollTimer);
      pollTimer = null;
    }
  }

  // --- the list of exports: cards in time order, as filtered --------------------------------------

  function cardsOf(list) {
    return list.querySelectorAll(":scope > .export-card");
  }

  // Whether a card the page does not show belongs in the list: its filters take it, and it is not older
  // than the last card shown while older pages remain (it will come with its page).
  function belongs(list, card) {
    var want = list.dataset;
    if (want.filterStatus && card.dataset.status !== want.filterStatus) return false;
    if (want.filterResource && card.dataset.resource !== want.filterResource) return false;
    if (want.filterFormat && card.dataset.format !== want.filterFormat) return false;
    var cards = cardsOf(list);
    var last = cards[cards.length - 1];
    var morePages = document.querySelector("#exports-more button") !== null;
    return !(morePages && last && (card.dataset.order || "") < (last.dataset.order || ""));
  }

  function initCard(card) {
    htmx.process(card);
    showLocalTimes(card);
    updateCountdowns(card);
  }

  function place(list, card) {
    var order = card.dataset.order || "";
    var before = null;
    cardsOf(list).forEach(function (shown) {
      if (!before && (shown.dataset.order || "") < order) before = shown;
    });
    list.insertBefore(card, before);
    initCard(card);
  }

  function replaceCard(existing, card) {
    var active = document.activeElement;
    var focusedId = active && active.id && existing.contains(active) ? active.id : null;
    existing.replaceWith(card);
    initCard(card);
    var again = focusedId && document.getElementById(focusedId);
    if (again) again.focus({ preventScroll: true });
  }

  // Cards sent to the list ("afterbegin:#exports") are placed here rather than by htmx.
  document.addEventListener("htmx:oobBeforeSwap", function (evt) {
    var target = evt.detail.target;
    var fragment = evt.detail.fragment;
    if (!target || target.id !== "exports" || !fragment || !fragment.querySelector) return;
    var card = fragment.querySelector(".export-card");
    if (!card || !card.id) return;
    evt.detail.shouldSwap = false;
    var existing = document.getElementById(card.id);
    if (existing && existing.parentElement === target) {
      if (card.dataset.origin !== "submit") replaceCard(existing, card); // else the socket was quicker
      return;
    }
    if (card.dataset.origin === "submit" || belongs(target, card)) place(target, card);
  });

  // The socket replaces a card it sent before by id; the page may not show it (its filters left it out,
  // until it changed): place it as a new one.
  document.addEventListener("htmx:oobErrorNoTarget", function (evt) {
    var card = evt.detail && evt.detail.content;
    var list = document.getElementById("exports");
    if (!list || !card || !card.classList || !card.classList.contains("export-card")) return;
    if (!document.getElementById(card.id) && belongs(list, card)) place(list, card);
  });

  var reducedMotion = window.matchMedia ? window.matchMedia("(prefers-reduced-motion: reduce)") : null;

  function showCard(id) {
    var card = id && document.getElementById(id);
    if (!card) return;
    card.setAttribute("tabindex", "-1");
    var smooth = !(reducedMotion && reducedMotion.matches);
    card.scrollIntoView({ behavior: smooth ? "smooth" : "auto", block: "nearest" });
    card.focus({ preventScroll: true });
  }

  document.addEventListener("exportStarted", function (evt) {
    showCard(evt.detail && evt.detail.card);
  });
  document.addEventListener("exportsPaged", function (evt) {
    showCard(evt.detail && evt.detail.card);
  });

  // --- "the link expires in ..." ------------------------------------------------------------------

  var COUNTDOWN_MS = 30000;

  // As the server words it (web/console_views.py duration, coarse).
  function expiresIn(ms) {
    if (ms <= 0) return "now";
    var s = Math.round(ms / 1000);
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    if (h) return "in " + h + " h " + m + " min";
    if (m) return "in " + m + " min";
    return "in " + (s % 60) + " s";
  }

  // Updates the countdowns under `root`; returns the time to the soonest expiry (ms).
  function updateCountdowns(root) {
    var now = Date.now();
    var soonest = Infinity;
    root.querySelectorAll("time[data-expires-at]").forEach(function (el) {
      var at = Date.parse(el.dataset.expiresAt);
      if (isNaN(at)) return;
      var text = expiresIn(at - now);
      if (el.textContent !== text) el.textContent = text;
      if (at > now) soonest = Math.min(soonest, at - now);
    });
    return soonest;
  }

  function countdown() {
    var soonest = updateCountdowns(document);
    // Seconds show in the last minute: then tick every second.
    window.setTimeout(countdown, soonest < 90000 ? 1000 : COUNTDOWN_MS);
  }

  document.addEventListener("DOMContentLoaded", countdown);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) updateCountdowns(document);
  });
  document.addEventListener("htmx:load", function (evt) {
    var el = evt.detail && evt.detail.elt;
    if (el && el.querySelectorAll) updateCountdowns(el.parentElement || el);
  });

  document.addEventListener("htmx:wsOpen", function () {
    stopPolling();
    setLive("live", "Live");
  });

  document.addEventListener("htmx:wsClose", function (evt) {
    var code = evt.detail && evt.detail.event ? evt.detail.event.code : 0;
    if (code === 4401) {
      window.location.assign("/console/sign-in");
      return;
    }
    if (code === 4403) {
      setLive("down", "Live updates refused; checking every 2 s");
    } else {
      setLive("down", "Reconnecting; checking every 2 s");
    }
    startPolling();
  });

  var focusedId = null;
  document.addEventListener("htmx:wsBeforeMessage", function () {
    var active = document.activeElement;
    focusedId = active && active.id && active.closest(".export-card") ? active.id : null;
  });
  document.addEventListener("htmx:wsAfterMessage", function () {
    if (focusedId && (!document.activeElement || document.activeElement === document.body)) {
      var again = document.getElementById(focusedId);
      if (again) again.focus();
    }
    focusedId = null;
  });

  // A refused htmx request of the console answers problem JSON; its detail says what was wrong.
  function problemDetail(xhr) {
    if (!xhr || (xhr.getResponseHeader("Content-Type") || "").indexOf("application/problem+json") !== 0) return "";
    try {
      return JSON.parse(xhr.responseText).detail || "";
    } catch (e) {
      return "";
    }
  }

  document.addEventListener("htmx:responseError", function (evt) {
    var announcer = document.getElementById("announcer");
    var status = evt.detail && evt.detail.xhr ? evt.detail.xhr.status : 0;
    var text =
      status === 403
        ? "The page has expired; reload it and try again."
        : problemDetail(evt.detail.xhr) || "Something went wrong (" + status + "); please try again.";
    if (announcer) announcer.textContent = text;
    setLive("down", text);
  });

  document.addEventListener("htmx:sendError", function () {
    setLive("down", "The server cannot be reached; retrying");
  });
})();
