// ecsportal: the run page's terminal. Output arrives over ws/runs/<pk>/?after=<seq> as base64
// chunks with sequence numbers; each is written into xterm.js (read-only) as bytes, never as
// HTML. A dropped socket reconnects with the last seq received, so nothing is missed or shown
// twice. Status messages make htmx re-fetch the facts panel (content comes over HTTP).
(function () {
  "use strict";

  var HIGH_WATER = 512 * 1024; // bytes handed to xterm and not yet parsed: stop feeding it above this
  var LOW_WATER = 64 * 1024; // … and start again below this
  var REFUSED = { 4001: "You logged out; log in again to watch.", 4401: "Log in to watch this run.", 4403: "You may not watch this run." };

  // xterm.js creates <style> elements (palette, cell size) and sets style attributes on cells
  // with 24-bit colours. The page's CSP allows <style> only with this response's nonce, and no
  // style attributes; both shims keep the CSP as it is: a <style> made by script gets the nonce,
  // and a span's style attribute set by script goes through CSSOM (which CSP does not govern).
  // Markup in the page cannot use either: container output never becomes markup.
  function installStyleShims(nonce) {
    var createElement = Document.prototype.createElement;
    Document.prototype.createElement = function (tagName, options) {
      var element = createElement.call(this, tagName, options);
      if (nonce && String(tagName).toLowerCase() === "style") { element.nonce = nonce; }
      return element;
    };
    var setAttribute = Element.prototype.setAttribute;
    Element.prototype.setAttribute = function (name, value) {
      if (this instanceof HTMLSpanElement && String(name).toLowerCase() === "style") {
        this.style.cssText = String(value);
        return;
      }
      return setAttribute.call(this, name, value);
    };
  }

  function decode(base64) {
    var text = window.atob(base64);
    var bytes = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) { bytes[i] = text.charCodeAt(i); }
    return bytes;
  }

  function start(box) {
    installStyleShims(box.getAttribute("data-style-nonce"));
    var cols = parseInt(box.getAttribute("data-cols"), 10) || 120;
    var rows = parseInt(box.getAttribute("data-rows"), 10) || 32;
    var term = new window.Terminal({
      cols: cols,
      rows: rows,
      disableStdin: true, // runs are read-only: no keystroke ever reaches the container from here
      cursorBlink: false,
      cursorStyle: "underline",
      scrollback: 20000,
      fontSize: 13,
      fontFamily: "SFMono-Regular, Menlo, Consolas, 'Liberation Mono', monospace",
      theme: { background: "#1e1f22", foreground: "#e6e6e6", cursor: "#1e1f22" },
    });
    var fit = new window.FitAddon.FitAddon();
    var search = new window.SearchAddon.SearchAddon();
    term.loadAddon(fit);
    term.loadAddon(search);
    term.open(box);
    // Columns are the run's PTY width (the container formats output for it); rows fill the box.
    var fitRows = function () {
      var dims = fit.proposeDimensions();
      if (dims && dims.rows > 0) { term.resize(cols, Math.max(8, dims.rows)); }
    };
    fitRows();
    window.addEventListener("resize", fitRows);

    var state = { lastSeq: 0, renderedSeq: 0, pending: 0, queue: [], finished: false, replayed: false, done: false, replaying: false };
    window.ecsportalRun = { term: term, state: state };
    var connection = document.getElementById("run-connection");
    function say(text, kind) {
      if (!connection) { return; }
      connection.textContent = text;
      connection.setAttribute("data-state", kind);
    }

    // Flow control: xterm parses asynchronously; keep at most HIGH_WATER bytes in its hands.
    function pump() {
      while (state.queue.length && state.pending < HIGH_WATER) {
        var item = state.queue.shift();
        state.pending += item.bytes.length;
        term.write(item.bytes, written(item));
      }
    }
    function written(item) {
      return function () {
        state.pending -= item.bytes.length;
        state.renderedSeq = Math.max(state.renderedSeq, item.seq);
        box.setAttribute("data-rendered-seq", String(state.renderedSeq));
        if (state.pending < LOW_WATER) { pump(); }
      };
    }

    function onStatus(message) {
      state.finished = !!message.finished;
      var facts = document.getElementById("run-facts");
      if (facts && facts.getAttribute("data-status") !== message.status && window.htmx) {
        window.htmx.trigger(document.body, "run-status");
      }
      box.setAttribute("data-status", message.status);
    }

    var delay = 1000;
    var socket = null;
    function connect() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + window.location.host + box.getAttribute("data-socket") + "?after=" + state.lastSeq);
      state.replayed = false;
      socket.addEventListener("open", function () { say(state.lastSeq ? "catching up…" : "connected", "open"); delay = 1000; });
      socket.addEventListener("message", function (event) {
        var message;
        try { message = JSON.parse(event.data); } catch (e) { return; }
        if (message.type === "output") {
          if (message.seq <= state.lastSeq) { return; } // already have it
          if (message.seq !== state.lastSeq + 1) { socket.close(); return; } // a gap: ask again from the last one
          state.lastSeq = message.seq;
          state.queue.push({ seq: message.seq, bytes: decode(message.data) });
          if (!state.replaying) { pump(); }
        } else if (message.type === "replayed") {
          state.replayed = true;
        } else if (message.type === "status") {
          onStatus(message);
        }
        if (state.replayed) {
          say(state.finished ? "ended" : "live", state.finished ? "ended" : "live");
          if (state.finished) { state.done = true; socket.close(1000); showReplay(); }
        }
      });
      socket.addEventListener("close", function (event) {
        if (state.done) { return; }
        if (REFUSED[event.code]) { say(REFUSED[event.code], "refused"); state.done = true; return; }
        say("disconnected; retrying in " + Math.round(delay / 1000) + " s", "retrying");
        window.setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      });
    }
    connect();

    var input = document.getElementById("run-search");
    if (input) {
      input.addEventListener("keydown", function (event) {
        if (event.key === "Enter") {
          event.preventDefault();
          if (event.shiftKey) { search.findPrevious(input.value); } else { search.findNext(input.value); }
        }
      });
      input.addEventListener("input", function () { if (input.value) { search.findNext(input.value, { incremental: true }); } });
    }

    // Replay the asciicast with its timing (idle gaps shortened to at most 1.5 s).
    var replayButton = document.getElementById("run-replay");
    function showReplay() {
      if (replayButton && box.getAttribute("data-cast-url")) { replayButton.hidden = false; }
    }
    if (replayButton) {
      replayButton.addEventListener("click", function () {
        if (state.replaying) { return; }
        state.replaying = true;
        replayButton.disabled = true;
        replayButton.textContent = "Replaying…";
        window.fetch(box.getAttribute("data-cast-url"), { credentials: "same-origin" })
          .then(function (answer) { if (!answer.ok) { throw new Error(answer.status); } return answer.text(); })
          .then(function (text) { play(text.split("\n").slice(1).filter(Boolean).map(JSON.parse)); })
          .catch(function () { endReplay("Replay failed; reload the page."); });
      });
    }
    function play(events) {
      term.reset();
      var index = 0;
      var previous = 0;
      function next() {
        if (index >= events.length) { endReplay(null); return; }
        var event = events[index++];
        var wait = Math.min(Math.max(0, event[0] - previous), 1.5);
        previous = event[0];
        window.setTimeout(function () {
          if (event[1] === "o") { term.write(String(event[2]), next); } else { next(); }
        }, wait * 1000);
      }
      next();
    }
    function endReplay(problem) {
      state.replaying = false;
      replayButton.disabled = false;
      replayButton.textContent = problem || "Replay";
      pump();
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("run-terminal");
    if (box && window.Terminal) { start(box); }
  });
})();
