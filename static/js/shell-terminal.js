// ecsportal: the interactive part of a shell's page, on top of run-terminal.js (which opens the
// socket ws/sessions/<pk>/, replays and shows the output, and handles copy and find).
//
// Keys go to the server only while the server says this user holds the keyboard; the server
// checks again and refuses anyone else's input, so this is a courtesy, never the guard. An
// observer's terminal has stdin disabled: xterm sends nothing, not even its automatic answers
// to terminal queries. The window's size becomes the remote terminal's (only from the typist).
// Everything shown about the session (who is here, who types) is written as text.
(function () {
  "use strict";

  var FRAME_CHARS = 4096; // characters per input frame: 16 KB of UTF-8 at most, the server's limit
  var RESIZE_DELAY = 150; // ms: one size message after a burst of window resizes
  var ASK_STATE_MS = 3000; // ms between two requests for the session's state while the page has none

  var view = window.ecsportalRun;
  var box = document.getElementById("run-terminal");
  if (!view || !box || !box.hasAttribute("data-interactive")) { return; }
  var me = box.getAttribute("data-user");
  var production = box.hasAttribute("data-production");
  var state = null;
  var sentSize = "";

  function byId(id) { return document.getElementById(id); }

  function holding() {
    return !!(state && state.active && state.holder === me && !state.paused);
  }

  function send(message) {
    var socket = view.socket;
    if (socket && socket.readyState === WebSocket.OPEN) { socket.send(JSON.stringify(message)); }
  }

  function sendInput(data) {
    if (!holding()) { return; }
    for (var i = 0; i < data.length; i += FRAME_CHARS) { send({ type: "input", data: data.slice(i, i + FRAME_CHARS) }); }
  }

  function sendSize(force) {
    var term = view.term;
    if (!term || !holding()) { return; }
    var size = term.cols + "x" + term.rows;
    if (size === sentSize && !force) { return; }
    sentSize = size;
    send({ type: "resize", cols: term.cols, rows: term.rows });
  }

  function show(id, text) {
    var el = byId(id);
    if (!el) { return; }
    el.textContent = text || "";
    el.hidden = !text;
  }

  function render() {
    if (!state) { return; }
    var mine = holding();
    if (view.term) { view.term.options.disableStdin = !mine; }
    box.setAttribute("data-holder", state.holder || "");
    box.setAttribute("data-typing", mine ? "1" : "0");
    var holder = byId("session-holder");
    if (holder) { holder.textContent = state.holder ? (state.holder === me ? state.holder + " (you)" : state.holder) : "nobody"; }
    var typing = byId("session-you-type");
    var watching = byId("session-you-watch");
    if (typing) { typing.hidden = !mine; }
    if (watching) {
      watching.hidden = mine || !state.active;
      // The owner holding a paused keyboard is not watching by choice: say it is paused.
      watching.textContent = state.paused && state.holder === me ? "input paused" : "you are watching";
    }
    show("session-paused", state.paused);
    var list = byId("session-people");
    if (list) {
      list.textContent = "";
      state.people.forEach(function (person) {
        var item = document.createElement("li");
        var words = person.username + " · " + (person.role || "no role").toLowerCase();
        if (person.owner) { words += " · opened it"; }
        if (person.username !== state.holder) { words += " · watching"; }
        else { words += state.paused ? " · holds the keyboard (paused)" : " · typing"; }
        item.textContent = words;
        item.setAttribute("data-username", person.username);
        list.appendChild(item);
      });
    }
    var select = byId("session-hand-to");
    if (select) {
      var chosen = select.value;
      while (select.options.length > 1) { select.remove(1); }
      state.people.forEach(function (person) {
        if (!person.may_type || person.username === state.owner) { return; }
        var option = document.createElement("option");
        option.value = person.username;
        option.textContent = person.username;
        select.appendChild(option);
      });
      select.value = chosen;
      if (select.value !== chosen) { select.value = ""; }
    }
    if (mine) { sendSize(true); }
  }

  // Messages of the session socket that run-terminal.js does not know.
  var onMessage = view.onMessage;
  view.onMessage = function (event) {
    var message = null;
    try { message = JSON.parse(event.data); } catch (e) { message = null; }
    if (message && message.type === "session") {
      state = message;
      render();
    } else if (message && message.type === "notice") {
      show("session-notice", message.text);
    } else if (message && message.type === "refused") {
      var refused = byId("session-refused");
      if (refused) { refused.textContent = message.text; }
    } else if (message && message.type === "status" && message.finished && state) {
      state.active = false;
      render();
    }
    return onMessage.call(view, event);
  };

  var openTerminal = view.openTerminal;
  view.openTerminal = function () {
    openTerminal.call(view);
    var term = view.term;
    // Columns and rows both follow the box: the remote terminal takes the typist's size.
    var fit = new window.FitAddon.FitAddon();
    term.loadAddon(fit);
    var timer = null;
    var refit = function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(function () { try { fit.fit(); } catch (e) { return; } sendSize(false); }, RESIZE_DELAY);
    };
    refit();
    window.addEventListener("resize", refit);
    term.onResize(function () { sendSize(false); });
    term.onData(sendInput);
    term.onBinary(sendInput);
    // A multi-line paste into a production shell asks first (each line would run as typed).
    box.addEventListener("paste", function (event) {
      var text = event.clipboardData ? event.clipboardData.getData("text") : "";
      if (!production || !holding() || text.indexOf("\n") < 0) { return; }
      var lines = text.split("\n").length;
      if (!window.confirm("Paste " + lines + " lines into a production shell? Each line runs as if typed.")) {
        event.preventDefault();
        event.stopPropagation();
      }
    }, true);
    render();
    if (holding()) { term.focus(); }
  };

  var hand = byId("session-hand");
  if (hand) {
    hand.addEventListener("click", function () {
      var to = byId("session-hand-to").value;
      if (to) { send({ type: "keyboard", to: to }); }
    });
  }
  var take = byId("session-take");
  if (take) { take.addEventListener("click", function () { send({ type: "keyboard", to: null }); }); }

  // run-terminal.js opens the socket before this script has loaded (xterm.js loads between
  // them), so the state the server sent when the socket opened may already have been read and
  // ignored. A page without a state asks for it, now and every few seconds until it has one.
  function askState() {
    if (state) { return false; }
    send({ type: "session" });
    return true;
  }
  askState();
  var asking = window.setInterval(function () { if (!askState()) { window.clearInterval(asking); } }, ASK_STATE_MS);
})();
