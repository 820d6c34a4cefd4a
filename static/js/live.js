// ecsportal: live refresh over WebSockets. An element with data-live-ws="/ws/…" opens that
// socket (once per page, same origin); every message fires the event named by data-live-event
// on <body>, and htmx elements listening with hx-trigger="<event> from:body" re-fetch their
// fragment over HTTP. Messages carry no content, so the access check stays with the HTTP views.
(function () {
  "use strict";
  var sockets = {};

  function open(path, eventName, delay) {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + path);
    var reconnecting = delay > 1000;
    sockets[path] = socket;
    socket.addEventListener("open", function () {
      document.body.setAttribute("data-live-" + eventName, "open");
      // Anything may have changed while we were away.
      if (reconnecting) { window.htmx.trigger(document.body, eventName); }
      delay = 1000;
    });
    socket.addEventListener("message", function () {
      window.htmx.trigger(document.body, eventName);
    });
    socket.addEventListener("close", function (event) {
      document.body.setAttribute("data-live-" + eventName, "closed");
      // 4001 logged out, 4401 not logged in, 4403 not allowed: retrying would not help.
      if (event.code === 4001 || event.code === 4401 || event.code === 4403) { delete sockets[path]; return; }
      window.setTimeout(function () { open(path, eventName, Math.min(delay * 2, 30000)); }, delay);
    });
  }

  function scan(root) {
    if (!root || !root.querySelectorAll) { return; }
    var found = Array.prototype.slice.call(root.querySelectorAll("[data-live-ws]"));
    if (root.hasAttribute && root.hasAttribute("data-live-ws")) { found.push(root); }
    found.forEach(function (el) {
      var path = el.getAttribute("data-live-ws");
      if (path && path.charAt(0) === "/" && !sockets[path]) {
        open(path, el.getAttribute("data-live-event") || "live-refresh", 1000);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () { scan(document); });
  document.addEventListener("htmx:load", function (event) { scan(event.target); });
})();
