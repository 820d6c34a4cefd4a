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
})();
