// The console's few behaviours that htmx does not have built in:
//  - a card inserted at the top of the list replaces an existing card with the same id, except the
//    form's own answer, which is older than whatever the socket has already shown;
//  - while the socket is down, cards of active exports poll their own URL every 2 s;
//  - keyboard focus stays on a card's button when the socket replaces the card;
//  - a refused socket (signed out, 4401) goes to the sign-in page instead of retrying;
//  - times marked data-local-time are shown in the browser's time zone, and the new-schedule form's
//    time zone starts as the browser's.
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

  function showLocalTimes(root) {
    root.querySelectorAll("time[data-local-time]").forEach(function (el) {
      var at = new Date(el.getAttribute("datetime"));
      if (!localFormat || isNaN(at.getTime())) return;
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

  document.addEventListener("htmx:oobBeforeSwap", function (evt) {
    var target = evt.detail.target;
    var fragment = evt.detail.fragment;
    if (!target || target.id !== "exports" || !fragment || !fragment.querySelector) return;
    var card = fragment.querySelector(".export-card");
    if (!card || !card.id) return;
    var existing = document.getElementById(card.id);
    if (!existing || existing.parentElement !== target) return;
    if (card.dataset.origin === "submit") {
      evt.detail.shouldSwap = false; // the socket was quicker: its card is newer
    } else {
      existing.remove(); // a newer state of a card this page already has: show it once, on top
    }
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

  document.addEventListener("htmx:responseError", function (evt) {
    var announcer = document.getElementById("announcer");
    var status = evt.detail && evt.detail.xhr ? evt.detail.xhr.status : 0;
    var text =
      status === 403
        ? "The page has expired; reload it and try again."
        : "Something went wrong (" + status + "); please try again.";
    if (announcer) announcer.textContent = text;
    setLive("down", text);
  });

  document.addEventListener("htmx:sendError", function () {
    setLive("down", "The server cannot be reached; retrying");
  });
})();
