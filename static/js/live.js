// ecsportal: live refresh over WebSockets. An element with data-live-ws="/ws/…" opens that
// socket (once per page, same origin); every message fires the event named by data-live-event
// on <body>, and htmx elements listening with hx-trigger="<event> from:body" re-fetch their
// fragment over HTTP. Messages carry no content, so the access check stays with the HTTP views.
(function () {
  "use strict";
  var sockets = {};
  var PROBE_AFTER = 2;  // failed connections in a row before asking whether the session is still alive
  var ACCESS_REVOKED = "Access revoked: your role or your login changed, so this page no longer updates. " +
    "Reload it to see what you may still do.";
  var TOO_MANY_SOCKETS = "Too many open portal tabs or live pages for your user: this page will not update " +
    "by itself. Close some tabs, then reload this one.";

  function giveUp(path, eventName, state) {
    delete sockets[path];
    document.body.setAttribute("data-live-" + eventName, state);
    if (state === "session-ended" && window.ecsportal) { window.ecsportal.sessionEnded(); }
  }

  // A socket refused before its handshake (logged out, session expired, not allowed) closes
  // with 1006 and no reason, like a network failure. Ask an HTTP endpoint that can say 401.
  function sessionAlive(done) {
    var probe = document.body.getAttribute("data-session-probe-url") || "/session";
    window.fetch(probe, { credentials: "same-origin", cache: "no-store", redirect: "manual" })
      .then(function (answer) { done(answer.status !== 401 && answer.type !== "opaqueredirect"); })
      .catch(function () { done(true); });  // unreachable: keep retrying, the network may come back
  }

  function open(path, eventName, delay, failures) {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + path);
    var reconnecting = delay > 1000;
    var opened = false;
    sockets[path] = socket;
    socket.addEventListener("open", function () {
      opened = true;
      document.body.setAttribute("data-live-" + eventName, "open");
      // Anything may have changed while we were away.
      if (reconnecting) { window.htmx.trigger(document.body, eventName); }
      delay = 1000;
      failures = 0;
    });
    socket.addEventListener("message", function () {
      window.htmx.trigger(document.body, eventName);
    });
    socket.addEventListener("close", function (event) {
      document.body.setAttribute("data-live-" + eventName, "closed");
      // 4001 logged out, 4401 not logged in: the session is over. 4403 not allowed: retrying would not help.
      if (event.code === 4001 || event.code === 4401) { giveUp(path, eventName, "session-ended"); return; }
      if (event.code === 4403) { giveUp(path, eventName, "refused"); return; }
      // 4003: the access gate no longer passes (membership removed, role lowered, user deactivated).
      if (event.code === 4003) {
        giveUp(path, eventName, "access-revoked");
        if (window.ecsportal) { window.ecsportal.showBanner(ACCESS_REVOKED); }
        return;
      }
      // 4429: this user already holds the most sockets the portal allows (every tab holds one or more).
      if (event.code === 4429) {
        giveUp(path, eventName, "too-many-sockets");
        if (window.ecsportal) { window.ecsportal.showBanner(TOO_MANY_SOCKETS); }
        return;
      }
      failures = opened ? 1 : failures + 1;
      var retry = function () { open(path, eventName, Math.min(delay * 2, 30000), failures); };
      if (failures < PROBE_AFTER) { window.setTimeout(retry, delay); return; }
      sessionAlive(function (alive) {
        if (alive) { window.setTimeout(retry, delay); } else { giveUp(path, eventName, "session-ended"); }
      });
    });
  }

  function scan(root) {
    if (!root || !root.querySelectorAll) { return; }
    var found = Array.prototype.slice.call(root.querySelectorAll("[data-live-ws]"));
    if (root.hasAttribute && root.hasAttribute("data-live-ws")) { found.push(root); }
    found.forEach(function (el) {
      var path = el.getAttribute("data-live-ws");
      if (path && path.charAt(0) === "/" && !sockets[path]) {
        open(path, el.getAttribute("data-live-event") || "live-refresh", 1000, 0);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () { scan(document); });
  document.addEventListener("htmx:load", function (event) { scan(event.target); });
})();
