// ecsportal: small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  // Confirm dangerous actions named by data-confirm (CSP forbids inline handlers).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var message = form.getAttribute && form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  }, true);

  // The access-key fields only matter for the stored-key credential source; hide them otherwise.
  function syncCredentialFields() {
    var source = document.getElementById("id_credential_source");
    if (!source) { return; }
    var keys = source.value === "keys";
    Array.prototype.forEach.call(document.querySelectorAll(".keys-only"), function (el) {
      el.classList.toggle("d-none", !keys);
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target && event.target.id === "id_credential_source") { syncCredentialFields(); }
  });
  document.addEventListener("DOMContentLoaded", syncCredentialFields);
  document.addEventListener("htmx:load", syncCredentialFields);

  // Times. The server writes <time datetime="…" title="… UTC">5 minutes ago</time> (the `when`
  // tag); on hover the viewer also gets their own time and zone. With data-local-text, the
  // text itself becomes the viewer's time (the login page's "try again after").
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function stamp(d, utc) {
    var p = utc
      ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
      : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()];
    return p[0] + "-" + pad(p[1]) + "-" + pad(p[2]) + " " + pad(p[3]) + ":" + pad(p[4]) + ":" + pad(p[5]);
  }
  function zoneOf(d) {
    var offset = -d.getTimezoneOffset(), sign = offset < 0 ? "-" : "+", name = "";
    offset = Math.abs(offset);
    try { name = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { name = ""; }
    return (name ? name + ", " : "") + "UTC" + sign + pad(Math.floor(offset / 60)) + ":" + pad(offset % 60);
  }
  function localiseTimes(root) {
    if (!root || !root.querySelectorAll) { return; }
    var times = Array.prototype.slice.call(root.querySelectorAll("time[datetime]"));
    if (root.matches && root.matches("time[datetime]")) { times.push(root); }
    times.forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) { return; }
      el.setAttribute("title", stamp(d, false) + " your time (" + zoneOf(d) + ")\n" + stamp(d, true) + " UTC");
      if (el.hasAttribute("data-local-text")) { el.textContent = pad(d.getHours()) + ":" + pad(d.getMinutes()) + " your time"; }
    });
  }
  document.addEventListener("DOMContentLoaded", function () { localiseTimes(document); });
  document.addEventListener("htmx:load", function (event) { localiseTimes(event.detail.elt); });

  // Errors from htmx requests. htmx drops 4xx/5xx answers by default, so a refused decision
  // (409) or a form error (422) left the page saying nothing. A 4xx answer that is a fragment
  // (not a whole page) is the server's own explanation: swap it like a success. Anything else
  // (a full error page, a 5xx, no answer at all) shows the banner instead.
  var banner = null;
  function showBanner(text, loginUrl) {
    banner = banner || document.getElementById("request-error");
    if (!banner) { return; }
    banner.querySelector(".request-error-text").textContent = text;
    var login = banner.querySelector(".request-error-login");
    if (login) {
      login.hidden = !loginUrl;
      if (loginUrl) { login.setAttribute("href", loginUrl + "?next=" + encodeURIComponent(window.location.pathname + window.location.search)); }
    }
    banner.hidden = false;
  }
  function hideBanner() {
    banner = banner || document.getElementById("request-error");
    if (banner) { banner.hidden = true; }
  }
  function loginUrl() { return document.body.getAttribute("data-login-url") || "/login/"; }
  function sessionEnded() { showBanner("Your session has ended — log in again to carry on.", loginUrl()); }
  window.ecsportal = { showBanner: showBanner, hideBanner: hideBanner, sessionEnded: sessionEnded };

  function messageFor(status) {
    if (status === 403) { return "You are not allowed to do that (403). Reload the page: your role may have changed."; }
    if (status === 404) { return "That no longer exists (404). Reload the page to see what is there now."; }
    if (status === 429) { return "Too many requests (429). Wait a moment and try again."; }
    if (status >= 500) { return "The server could not complete this request (" + status + "). Try again; if it keeps failing, tell the portal's administrators."; }
    return "The server refused this request (" + status + "). Reload the page and try again.";
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    var answeredAt = "";
    try { answeredAt = new URL(xhr.responseURL || "", window.location.href).pathname; } catch (e) { answeredAt = ""; }
    if (answeredAt === loginUrl()) {  // the login redirect: never swap the login page into a fragment
      event.detail.shouldSwap = false;
      sessionEnded();
      return;
    }
    if (xhr.status >= 400 && xhr.status < 500) {
      var body = xhr.responseText || "";
      var html = /^text\/html/i.test(xhr.getResponseHeader("Content-Type") || "");
      if (html && body.trim() && !/^\s*<!doctype/i.test(body)) {
        event.detail.shouldSwap = true;
        event.detail.isError = false;
        return;
      }
      event.detail.shouldSwap = false;
      showBanner(messageFor(xhr.status));
    } else if (xhr.status >= 500) {
      showBanner(messageFor(xhr.status));
    }
  });
  document.addEventListener("htmx:sendError", function () {
    showBanner("The server could not be reached. Check your connection and try again.");
  });
  document.addEventListener("htmx:timeout", function () {
    showBanner("The server took too long to answer. Try again.");
  });
  document.addEventListener("click", function (event) {
    if (event.target && event.target.closest && event.target.closest("[data-dismiss-banner]")) { hideBanner(); }
  });
  // "/" focuses the page's search or filter (the element marked data-slash-focus), unless the
  // key is typed into a field. The read-only run terminal's hidden textarea is not a field.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) { return; }
    var at = event.target;
    var typing = at && at.closest && at.closest("input, textarea, select, [contenteditable]") && !(at.classList && at.classList.contains("xterm-helper-textarea"));
    var wanted = document.querySelector("[data-slash-focus]");
    if (typing || !wanted) { return; }
    event.preventDefault();
    wanted.focus();
    if (wanted.select) { wanted.select(); }
  });
  // Dim the region being refreshed, so old results never pass for new ones. Background
  // refreshes (hx-indicator="#quiet-indicator": polling, live updates) stay undimmed.
  var refreshing = new WeakMap();
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt, target = event.detail.target;
    var holder = elt && elt.closest ? elt.closest("[hx-indicator]") : null;
    if (!target || (holder && holder.getAttribute("hx-indicator") === "#quiet-indicator")) { return; }
    target.classList.add("is-refreshing");
    target.setAttribute("aria-busy", "true");
    refreshing.set(event.detail.xhr, target);
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var target = refreshing.get(event.detail.xhr);
    if (target) {
      target.classList.remove("is-refreshing");
      target.removeAttribute("aria-busy");
      refreshing.delete(event.detail.xhr);
    }
  });

  // --- Focus across swaps. A swap that replaces the focused element drops focus to <body>:
  // a keyboard user starts again from the top, and a periodic refresh would do it to someone
  // who did nothing. Before the swap, remember how to find the focused element again (its id,
  // data-focus-key, a link's href, a button's name and value); after it, if focus was lost,
  // focus the same thing in the new content. If it is gone and the person caused the swap,
  // focus the new content's [data-focus-target] (or its first heading), never the page's top.
  // A background swap that did not take focus never moves it.
  function focusSelector(el) {
    if (!el || el === document.body || el === document.documentElement || !el.getAttribute) { return null; }
    var esc = window.CSS && window.CSS.escape ? window.CSS.escape : function (v) { return String(v).replace(/["\\]/g, "\\$&"); };
    if (el.id) { return "#" + esc(el.id); }
    var key = el.getAttribute("data-focus-key");
    if (key) { return '[data-focus-key="' + esc(key) + '"]'; }
    if (el.hasAttribute("data-focus-target")) { return "[data-focus-target]"; } // where a swap put focus: there again
    var rel = el.tagName === "A" && el.getAttribute("rel");
    if (rel === "next" || rel === "prev") { return 'a[rel="' + rel + '"]'; }
    if (el.tagName === "A" && el.getAttribute("href")) { return 'a[href="' + esc(el.getAttribute("href")) + '"]'; }
    if (el.tagName === "BUTTON" && el.name) { return 'button[name="' + esc(el.name) + '"][value="' + esc(el.value) + '"]'; }
    return null;
  }
  // A request a person caused (a click, a key, a submit: a trusted event), not a timer or a
  // live-update event.
  function byPerson(detail) {
    var cause = detail.requestConfig && detail.requestConfig.triggeringEvent;
    return !!(cause && cause.isTrusted);
  }
  function targetKey(target) { return target ? target.id || target : null; }
  // A person's request from inside the region it will replace, until its answer is swapped in:
  // a live refresh of the same region may land first and take focus with it.
  var personal = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var active = document.activeElement;
    var target = event.detail.target;
    if (!byPerson(event.detail) || !target || !active || !(target === active || target.contains(active))) { return; }
    personal = { xhr: event.detail.xhr, target: targetKey(target), selector: focusSelector(active) };
  });
  var focusBefore = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var active = document.activeElement;
    var target = event.detail.target;
    var inside = !!(active && target && (target === active || target.contains(active)));
    var mine = !!(personal && personal.xhr === event.detail.xhr);
    var lostEarlier = mine && !inside && (!active || active === document.body) && personal.target === targetKey(target);
    focusBefore = {
      selector: inside ? focusSelector(active) : lostEarlier ? personal.selector : null,
      inside: inside || lostEarlier,
      byPerson: byPerson(event.detail),
    };
    if (mine) { personal = null; }
  });
  function focusQuietly(el) {
    if (!el) { return false; }
    if (!el.matches("a[href], button, input, select, textarea, summary, [tabindex]")) { el.setAttribute("tabindex", "-1"); }
    el.focus({ preventScroll: true });
    return document.activeElement === el;
  }
  // On afterSwap, not afterSettle: swaps of several requests can come before the first settles
  // (a live refresh racing the person's own request), and each must be paired with its own
  // beforeSwap.
  document.addEventListener("htmx:afterSwap", function (event) {
    var before = focusBefore;
    focusBefore = null;
    var active = document.activeElement;
    if (!before || !before.inside || (active && active !== document.body && document.contains(active))) { return; }
    if (before.selector) {
      var within = event.detail.target && document.contains(event.detail.target) ? event.detail.target : document;
      var same = within.querySelector(before.selector) || document.querySelector(before.selector);
      if (same && same.offsetParent !== null && focusQuietly(same)) { return; }
    }
    if (!before.byPerson) { return; }
    var target = event.detail.target && document.contains(event.detail.target) ? event.detail.target : document.getElementById("content");
    if (!target) { return; }
    var landing = target.querySelector("[data-focus-target]") || target.querySelector("h1, h2") || target;
    focusQuietly(landing);
  });

  // --- Announcements. Text in an element that a swap replaces is often never read out, even
  // with role="status" on it: the region did not exist before the change. Fragments mark what
  // should be said with data-announce (the text, or the element's own text when empty); each
  // distinct text is copied into the page's persistent #announcer once. What the page showed
  // when it loaded is remembered, not announced.
  var announced = {};
  var announcer = null;
  function say(text) {
    announcer = announcer || document.getElementById("announcer");
    if (!announcer || !text) { return; }
    announcer.textContent = "";
    window.setTimeout(function () { announcer.textContent = text; }, 100);
  }
  function announce(root, quietly) {
    if (!root || !root.querySelectorAll) { return; }
    var found = Array.prototype.slice.call(root.querySelectorAll("[data-announce]"));
    if (root.hasAttribute && root.hasAttribute("data-announce")) { found.unshift(root); }
    found.forEach(function (el) {
      var text = (el.getAttribute("data-announce") || el.textContent || "").replace(/\s+/g, " ").trim();
      var key = el.getAttribute("data-announce-key") || el.id || text;
      if (announced[key] === text) { return; }
      var first = !(key in announced);
      announced[key] = text;
      if (!(quietly && first)) { say(text); }
    });
  }
  window.ecsportal.say = say;

  // --- Form errors: focus the first field marked invalid (or the form's error message), so a
  // refused form does not reload with focus on <body>. Only after a submission: on a page that
  // came back from a POST (its form holds errors), or after an htmx form request.
  function focusFirstError(root) {
    var field = root.querySelector("form [aria-invalid='true']:not([type=hidden]), form .is-invalid, form .invalid-feedback[data-focus-target]");
    if (field && focusQuietly(field)) { field.scrollIntoView({ block: "center" }); return; }
    var message = root.querySelector("form .alert-danger, form .invalid-feedback");
    if (message) { focusQuietly(message); message.scrollIntoView({ block: "center" }); }
  }
  document.addEventListener("DOMContentLoaded", function () {
    announce(document, true);
    var autofocus = document.querySelector("[autofocus]");
    if (!autofocus && document.querySelector("form [aria-invalid='true'], form .is-invalid, form .alert-danger")) { focusFirstError(document); }
  });
  document.addEventListener("htmx:load", function (event) { announce(event.target, false); });
  document.addEventListener("htmx:afterSwap", function (event) {
    var config = event.detail.requestConfig || {};
    if (config.verb && config.verb !== "get" && event.detail.target) {
      var root = document.contains(event.detail.target) ? event.detail.target.parentNode || document : document;
      if (root.querySelector("form [aria-invalid='true'], form .is-invalid")) { focusFirstError(root); }
    }
  });

  // Links drawn as toggle buttons (role="button", aria-pressed) answer Space like buttons do.
  document.addEventListener("keydown", function (event) {
    var el = event.target;
    if (event.key === " " && el && el.tagName === "A" && el.getAttribute("role") === "button") {
      event.preventDefault();
      el.click();
    }
  });
})();
