/*
 * Live updates for a dashboard page: when a change made in Slack concerns this page, read the page
 * again and put its new <main> in place (the scroll position stays), then say "Updated just now".
 *
 * Runs only on pages whose <main> has data-live-scope ("all" or "campaign:N"); the calendar and the JSON
 * are not pages. The stream is /dashboard/<token>/events (handlers/web/dashboard/live.py): the browser's
 * EventSource reconnects by itself after a dropped connection and sends the last id it saw, and the
 * server answers with one catch-up event if anything changed meanwhile. A stream the server refused
 * (busy, or the link no longer works) is retried here, later, after reading the page once.
 *
 * A page opened without ?tz= is reloaded once with the browser's time zone.
 */
(function () {
  "use strict";

  var main = document.querySelector("main[data-live-scope]");
  var tokenPath = location.pathname.match(/^\/dashboard\/[^\/]+/);
  if (!main || !tokenPath || !window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }
  if (addTimeZone()) {
    return;
  }

  var scope = main.getAttribute("data-live-scope") || "all";
  var FIRST_RETRY_MS = 2000;
  var LONGEST_RETRY_MS = 60000;
  var retryMs = FIRST_RETRY_MS;
  var lastId = null;
  var reading = null;
  var readAgain = false;
  var stopped = false;
  var status = statusElement();
  var ageTimer = null;

  connect();

  /* The browser's zone, once: a page that comes back without it (a redirect) is not reloaded again. */
  function addTimeZone() {
    var params = new URLSearchParams(location.search);
    if (params.has("tz")) {
      return false;
    }
    var zone;
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    } catch (error) {
      return false;
    }
    if (!zone) {
      return false;
    }
    var key = "cm-live-tz:" + location.pathname;
    try {
      var before = Number(sessionStorage.getItem(key) || 0);
      if (Date.now() - before < 10000) {
        return false;
      }
      sessionStorage.setItem(key, String(Date.now()));
    } catch (error) {
      return false; // no storage, no promise of "once": keep the server's zone
    }
    params.set("tz", zone);
    location.replace(location.pathname + "?" + params.toString() + location.hash);
    return true;
  }

  function eventsUrl() {
    var url = tokenPath[0] + "/events?scope=" + encodeURIComponent(scope);
    var last = lastId || main.getAttribute("data-live-version");
    if (last && /^[0-9]+$/.test(last)) {
      url += "&last=" + last;
    }
    return url;
  }

  function connect() {
    if (stopped) {
      return;
    }
    var source = new EventSource(eventsUrl());
    source.addEventListener("open", function () {
      retryMs = FIRST_RETRY_MS;
    });
    source.addEventListener("change", function (event) {
      if (event.lastEventId) {
        lastId = event.lastEventId;
      }
      var data;
      try {
        data = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (concerns(data)) {
        refresh();
      }
    });
    source.addEventListener("error", function () {
      if (source.readyState !== EventSource.CLOSED) {
        return; // the browser reconnects by itself, with Last-Event-ID
      }
      // Refused (503 busy, 401 a link that ended) or not a stream: later, after reading the page.
      var wait = retryMs + Math.random() * retryMs;
      retryMs = Math.min(retryMs * 2, LONGEST_RETRY_MS);
      setTimeout(function () {
        refresh().then(connect);
      }, wait);
    });
  }

  function concerns(data) {
    if (!data || data.everything || scope === "all") {
      return true;
    }
    var campaign = /^campaign:([0-9]+)$/.exec(scope);
    if (!campaign) {
      return true;
    }
    return (data.campaigns || []).indexOf(Number(campaign[1])) !== -1;
  }

  /* Read the page again; changes that come while it is being read make one more read after it. */
  function refresh() {
    if (reading) {
      readAgain = true;
      return reading;
    }
    reading = fetch(location.href, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "text/html" }
    })
      .then(function (response) {
        if (response.status === 401 || response.status === 403) {
          stopped = true;
          say("This link no longer opens this page. Ask for a fresh link in Slack with /dashboard.", false);
          return null;
        }
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        if (html !== null && swap(html)) {
          say("Updated just now", true);
        }
      })
      .catch(function () {
        say("Could not update this page; it shows what was current before.", false);
      })
      .then(function () {
        reading = null;
        if (readAgain && !stopped) {
          readAgain = false;
          return refresh();
        }
      });
    return reading;
  }

  function swap(html) {
    var page = new DOMParser().parseFromString(html, "text/html");
    var fresh = page.querySelector("main[data-live-scope]");
    if (!fresh) {
      return false;
    }
    var x = window.scrollX;
    var y = window.scrollY;
    var focused = document.activeElement;
    var focusedId = focused && focused.id && main.contains(focused) ? focused.id : null;
    var nodes = [];
    for (var i = 0; i < fresh.childNodes.length; i += 1) {
      nodes.push(document.importNode(fresh.childNodes[i], true));
    }
    main.replaceChildren.apply(main, nodes);
    var version = fresh.getAttribute("data-live-version");
    if (version) {
      main.setAttribute("data-live-version", version);
    }
    if (page.title) {
      document.title = page.title;
    }
    window.scrollTo(x, y);
    if (focusedId) {
      var again = document.getElementById(focusedId);
      if (again) {
        again.focus({ preventScroll: true });
      }
    }
    return true;
  }

  function statusElement() {
    var element = document.createElement("p");
    element.className = "live-status";
    element.setAttribute("role", "status");
    element.setAttribute("aria-live", "polite");
    element.hidden = true;
    var header = document.querySelector("body > header");
    if (header) {
      header.appendChild(element);
    } else {
      main.parentNode.insertBefore(element, main);
    }
    return element;
  }

  function say(text, fresh) {
    status.textContent = text;
    status.hidden = false;
    if (ageTimer) {
      clearTimeout(ageTimer);
      ageTimer = null;
    }
    if (fresh) {
      var at = new Date();
      ageTimer = setTimeout(function () {
        status.textContent = "Updated at " + at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      }, 60000);
    }
  }
})();
