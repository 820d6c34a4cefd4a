// ecsportal: the run page's terminal. Output arrives over ws/runs/<pk>/?after=<seq> as base64
// chunks with sequence numbers; each is written into xterm.js (read-only) as bytes, never as
// HTML. A dropped socket reconnects with the last seq received, so nothing is missed or shown
// twice. Status messages make htmx re-fetch the facts panel (content comes over HTTP).
//
// Loaded with defer BEFORE xterm.js: the socket opens as soon as the document is parsed, and
// output waits in the queue until the terminal exists (DOMContentLoaded, after xterm.js ran).
(function () {
  "use strict";

  var HIGH_WATER = 512 * 1024; // bytes handed to xterm and not yet parsed: stop feeding it above this
  var LOW_WATER = 64 * 1024; // … and start again below this
  var QUIET_MS = 15000; // heard nothing this long on a live run's socket: ask for its status
  var ACK_BYTES = 256 * 1024; // acknowledge received output this often: the server sends at most 4 MB ahead
  var REFUSED = {
    4001: "You logged out; log in again to watch.",
    4003: "Access revoked: your access to this run's account changed or your login ended. Reload to check.",
    4401: "Log in to watch this run.",
    4403: "You may not watch this run.",
    4429: "Too many open portal tabs or live pages for your user; close some, then reload this page.",
  };

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
        return undefined;
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

  function countLineFeeds(bytes) {
    var n = 0;
    for (var i = 0; i < bytes.length; i++) { if (bytes[i] === 10) { n++; } }
    return n;
  }

  // "12 s", "4 min 05 s", "2 h 07 min": a running run's duration as it grows.
  function elapsedText(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (s < 60) { return s + "\u00a0s"; }
    if (s < 3600) { return Math.floor(s / 60) + "\u00a0min " + pad(s % 60) + "\u00a0s"; }
    return Math.floor(s / 3600) + "\u00a0h " + pad(Math.floor(s / 60) % 60) + "\u00a0min";
  }

  // The server renders how long a running run has taken (data-elapsed, at render time); from
  // then on the page counts, so the duration moves every second and not only when the status
  // changes. Each new render (an htmx swap) starts again from the server's figure.
  function tickElapsed() {
    var now = Date.now();
    var shown = document.querySelectorAll(".run-elapsed[data-ticking='1']");
    for (var i = 0; i < shown.length; i++) {
      var el = shown[i];
      if (el.ecsportalSeenAt === undefined) {
        el.ecsportalSeenAt = now;
        el.ecsportalBase = parseFloat(el.getAttribute("data-elapsed")) || 0;
      }
      el.textContent = elapsedText(el.ecsportalBase + (now - el.ecsportalSeenAt) / 1000) + " so far";
    }
  }

  // The clipboard API where the page may use it (https, localhost), else the older copy command.
  function writeClipboard(text) {
    if (navigator.clipboard && window.isSecureContext) { return navigator.clipboard.writeText(text); }
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }

  function sizeText(n) {
    if (n < 1024) { return n + (n === 1 ? " byte" : " bytes"); }
    if (n < 1024 * 1024) { return (n / 1024).toFixed(1) + "\u00a0KB"; }
    return (n / 1024 / 1024).toFixed(1) + "\u00a0MB";
  }

  // What screen readers hear of the output. The terminal's rows are drawn for the eye (xterm
  // hides them from assistive technology); live output is also decoded, stripped of terminal
  // escapes and written as plain lines into a polite live region (#run-output-live), a few
  // lines every ANNOUNCE_EVERY ms at most, so a chatty command cannot drown everything else.
  // Output replayed when the page opens is not read out: the transcript link has all of it.
  var ANNOUNCE_EVERY = 2000;
  var ANNOUNCE_LINES = 8; // per round; more are summarised as a count
  var ANNOUNCE_KEEP = 40; // lines kept in the region
  var ESCAPES = /\x1b\[[0-?]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[P^_][^\x1b]*\x1b\\|\x1b[ -\/]*[0-~]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g;

  function OutputReader(region) {
    this.region = region;
    this.decoder = window.TextDecoder ? new window.TextDecoder("utf-8") : null;
    this.text = "";
    this.timer = null;
  }

  OutputReader.prototype.add = function (bytes) {
    if (!this.region || !this.decoder) { return; }
    this.text += this.decoder.decode(bytes, { stream: true });
    var self = this;
    if (!this.timer) { this.timer = window.setTimeout(function () { self.flush(false); }, ANNOUNCE_EVERY); }
  };

  OutputReader.prototype.flush = function (all) {
    this.timer = null;
    var text = this.text;
    var cut = all ? text.length : text.lastIndexOf("\n") + 1; // whole lines; the rest waits
    this.text = text.slice(cut);
    if (!cut) { return; }
    var lines = text.slice(0, cut).split("\n").map(function (line) {
      var parts = line.replace(ESCAPES, "").split("\r");
      for (var i = parts.length - 1; i >= 0; i--) { if (parts[i].trim()) { return parts[i]; } }
      return "";
    }).filter(function (line) { return line.trim() !== ""; });
    if (!lines.length) { return; }
    var shown = lines.slice(0, ANNOUNCE_LINES);
    if (lines.length > shown.length) { shown.push("… and " + (lines.length - shown.length) + " more lines."); }
    var chunk = document.createElement("div");
    chunk.textContent = shown.join("\n"); // text, never markup
    this.region.appendChild(chunk);
    while (this.region.childNodes.length > ANNOUNCE_KEEP) { this.region.removeChild(this.region.firstChild); }
  };

  function RunView(box) {
    this.box = box;
    this.cols = parseInt(box.getAttribute("data-cols"), 10) || 120;
    this.rows = parseInt(box.getAttribute("data-rows"), 10) || 32;
    this.term = null;
    this.socket = null;
    this.delay = 1000;
    this.received = 0; // bytes of output received, shown while the run is live
    this.scrollback = parseInt(box.getAttribute("data-scrollback"), 10) || 20000;
    this.lines = 0; // line feeds received: past the scrollback, the first lines leave the terminal
    this.transcript = null; // the plain-text transcript, fetched once for Find when output outgrew the terminal
    this.heardAt = Date.now(); // when the socket last said anything
    // lastSeq: the last chunk received (queued or written); reconnecting asks for what follows.
    this.state = { lastSeq: 0, renderedSeq: 0, pending: 0, queue: [], finished: false, replayed: false, done: false, replaying: false };
    this.connection = document.getElementById("run-connection");
    this.replayButton = document.getElementById("run-replay");
    this.reader = new OutputReader(document.getElementById("run-output-live"));
    window.ecsportalRun = this;
  }

  RunView.prototype.say = function (text, kind) {
    if (!this.connection) { return; }
    this.connection.textContent = text;
    this.connection.setAttribute("data-state", kind);
  };

  // Flow control: xterm parses asynchronously; keep at most HIGH_WATER bytes in its hands.
  RunView.prototype.pump = function () {
    var self = this;
    var state = this.state;
    while (this.term && !state.replaying && state.queue.length && state.pending < HIGH_WATER) {
      var item = state.queue.shift();
      state.pending += item.bytes.length;
      this.term.write(item.bytes, this.written(item));
    }
    return self;
  };

  RunView.prototype.written = function (item) {
    var self = this;
    return function () {
      self.noteTrimmed();
      self.state.pending -= item.bytes.length;
      self.state.renderedSeq = Math.max(self.state.renderedSeq, item.seq);
      self.box.setAttribute("data-rendered-seq", String(self.state.renderedSeq));
      if (self.state.pending < LOW_WATER) { self.pump(); }
    };
  };

  RunView.prototype.onStatus = function (message) {
    this.state.finished = !!message.finished;
    this.box.setAttribute("data-status", message.status);
    this.state.refreshes = 0;
    this.refreshFacts();
  };

  // Re-fetch #run-facts until it shows the status the socket last reported. Two gaps make a
  // single trigger per status message unreliable: a status that arrives before htmx has
  // wired the page triggers nothing, and htmx drops a request queued behind one in flight
  // once that one's outerHTML swap has replaced the element (running, then succeeded, close
  // together). So this is also called when htmx is ready and after every swap. Bounded, so
  // a server that keeps answering something else cannot make the page loop.
  RunView.prototype.refreshFacts = function () {
    var facts = document.getElementById("run-facts");
    var wanted = this.box.getAttribute("data-status");
    if (!facts || !wanted || !window.htmx || facts.getAttribute("data-status") === wanted) { return; }
    if (this.state.refreshes >= 5) { return; }
    this.state.refreshes += 1;
    window.htmx.trigger(document.body, "run-status");
  };

  // A viewer that has heard nothing for QUIET_MS asks for the run's status itself: a status
  // message the server could not deliver (a broker restart, say) must not leave "running"
  // on the page forever. The server answers with any stored output first, then the status.
  RunView.prototype.askWhenQuiet = function () {
    var self = this;
    window.setInterval(function () {
      var socket = self.socket;
      if (self.state.done || !socket || socket.readyState !== WebSocket.OPEN) { return; }
      if (Date.now() - self.heardAt < QUIET_MS) { return; }
      self.heardAt = Date.now();
      socket.send(JSON.stringify({ type: "status" }));
    }, 1000);
  };

  RunView.prototype.onMessage = function (event) {
    this.heardAt = Date.now();
    var state = this.state;
    var message;
    try { message = JSON.parse(event.data); } catch (e) { return; }
    if (message.type === "output") {
      if (message.seq <= state.lastSeq) { return; } // already have it
      if (message.seq !== state.lastSeq + 1) { this.socket.close(); return; } // a gap: ask again from the last one
      state.lastSeq = message.seq;
      var bytes = decode(message.data);
      state.queue.push({ seq: message.seq, bytes: bytes });
      if (state.liveSeen) { this.reader.add(bytes); }
      this.received += bytes.length;
      this.lines += countLineFeeds(bytes);
      this.unacked += bytes.length;
      if (this.unacked >= ACK_BYTES) {
        this.unacked = 0;
        this.socket.send(JSON.stringify({ type: "ack", seq: message.seq }));
      }
      var shown = document.getElementById("run-bytes");
      if (shown && !state.finished) { shown.textContent = sizeText(this.received); }
      this.pump();
    } else if (message.type === "replayed") {
      state.replayed = true;
      state.liveSeen = true; // output after this arrives as it happens: read it out
    } else if (message.type === "status") {
      this.onStatus(message);
    }
    if (state.replayed) {
      var ended = state.lastSeq ? "ended" : "ended · no output";
      this.say(state.finished ? ended : "live", state.finished ? "ended" : "live");
      if (state.finished) {
        this.reader.flush(true);
        state.done = true; // nothing more will come: no reconnecting
        this.socket.close(1000);
        this.showReplay();
      }
    }
  };

  RunView.prototype.connect = function () {
    var self = this;
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var path = this.box.getAttribute("data-socket") + "?after=" + this.state.lastSeq;
    this.socket = new WebSocket(scheme + window.location.host + path);
    this.state.replayed = false;
    this.unacked = 0; // bytes received on this socket since the last ack
    this.socket.addEventListener("open", function () {
      self.say(self.state.lastSeq ? "catching up…" : "connected", "open");
      self.delay = 1000;
    });
    this.socket.addEventListener("message", function (event) { self.onMessage(event); });
    this.socket.addEventListener("close", function (event) {
      if (self.state.done) { return; }
      if (REFUSED[event.code]) { self.say(REFUSED[event.code], "refused"); self.state.done = true; return; }
      self.say("disconnected; retrying in " + Math.round(self.delay / 1000) + " s", "retrying");
      window.setTimeout(function () { self.connect(); }, self.delay);
      self.delay = Math.min(self.delay * 2, 30000);
    });
  };

  RunView.prototype.openTerminal = function () {
    var self = this;
    this.term = new window.Terminal({
      cols: this.cols,
      rows: this.rows,
      disableStdin: true, // runs are read-only: no keystroke ever reaches the container from here
      cursorBlink: false,
      cursorStyle: "underline",
      scrollback: 20000,
      fontSize: 13,
      fontFamily: "SFMono-Regular, Menlo, Consolas, 'Liberation Mono', monospace",
      theme: { background: "#1e1f22", foreground: "#e6e6e6", cursor: "#1e1f22" },
    });
    // Container output is text. xterm.js turns an OSC 8 hyperlink into a clickable link whose
    // shown text need not be its target (and asks with a confirm() before opening it); OSC 52
    // would write the clipboard if a clipboard addon were ever loaded. Both are consumed here
    // and do nothing: the link's text stays plain text, the clipboard stays the user's.
    this.term.parser.registerOscHandler(8, function () { return true; });
    this.term.parser.registerOscHandler(52, function () { return true; });
    var fit = new window.FitAddon.FitAddon();
    this.term.loadAddon(fit);
    this.term.open(this.box);
    this.attachKeys();
    this.wireKeyboard();
    // Columns are the run's PTY width (the container formats output for it); rows fill the box.
    var fitRows = function () {
      var dims = fit.proposeDimensions();
      if (dims && dims.rows > 0) { self.term.resize(self.cols, Math.max(8, dims.rows)); }
    };
    fitRows();
    window.addEventListener("resize", fitRows);
    this.wireSearch();
    this.wireCopy();
    this.wireReplay();
    this.pump();
  };

  // Past the scrollback, xterm drops the first lines: say so, and where the rest is.
  RunView.prototype.isTrimmed = function () {
    if (!this.term) { return false; }
    return this.lines > this.scrollback || this.term.buffer.active.length >= this.scrollback + this.term.rows;
  };

  RunView.prototype.noteTrimmed = function () {
    var note = document.getElementById("run-scrollback-note");
    if (note && note.hidden && this.isTrimmed()) {
      note.hidden = false;
      this.box.setAttribute("data-trimmed", "1");
    }
  };

  // Copy: Ctrl+C (Cmd+C) with a selection, Ctrl+Shift+C, and the Copy button. Ctrl+C without a
  // selection still sends nothing: runs are read-only.
  RunView.prototype.copy = function (allWhenNothingSelected) {
    var term = this.term;
    var text = term.hasSelection() ? term.getSelection() : "";
    if (!text && allWhenNothingSelected) { text = this.shownText(); }
    var button = document.getElementById("run-copy");
    if (!text) { return; }
    var done = function (label) {
      if (!button) { return; }
      button.textContent = label;
      window.setTimeout(function () { button.textContent = "Copy"; }, 1500);
    };
    writeClipboard(text).then(function () { done("Copied"); }, function () { done("Copy failed"); });
  };

  RunView.prototype.shownText = function () {
    var buffer = this.term.buffer.active;
    var lines = [];
    for (var i = 0; i < buffer.length; i++) {
      var line = buffer.getLine(i);
      if (!line) { continue; }
      var text = line.translateToString(true);
      if (line.isWrapped && lines.length) { lines[lines.length - 1] += text; } else { lines.push(text); }
    }
    while (lines.length && !lines[lines.length - 1]) { lines.pop(); }
    return lines.join("\n");
  };

  // xterm takes one custom key handler: every key goes through each of ours in turn, and a
  // handler that answers false keeps the key from xterm (copy, and Tab leaving the terminal).
  RunView.prototype.attachKeys = function () {
    var handlers = this.keyHandlers = [];
    this.term.attachCustomKeyEventHandler(function (event) {
      for (var i = 0; i < handlers.length; i++) {
        if (handlers[i](event) === false) { return false; }
      }
      return true;
    });
  };

  RunView.prototype.wireCopy = function () {
    var self = this;
    this.keyHandlers.push(function (event) {
      if (event.type !== "keydown" || !(event.ctrlKey || event.metaKey) || String(event.key).toLowerCase() !== "c") { return true; }
      if (!event.shiftKey && !self.term.hasSelection()) { return true; }
      event.preventDefault();
      self.copy(false);
      return false;
    });
    var button = document.getElementById("run-copy");
    if (button) { button.addEventListener("click", function () { self.copy(true); }); }
  };

  // Keyboard: xterm's input textarea takes Tab (a shell completes with it), so focus would be
  // trapped in the terminal (WCAG 2.1.2). Esc then Tab (or Shift+Tab) always moves focus on, as
  // in editors with a terminal. A plain Tab leaves too, unless the box says Tab is input
  // (data-tab-is-input: a terminal that sends keys to a shell); run pages are read-only. The
  // page says so next to the terminal (#run-keys), and the textarea is described by that hint.
  RunView.prototype.wireKeyboard = function () {
    var box = this.box;
    var escaped = false;
    this.keyHandlers.push(function (event) {
      if (event.type !== "keydown") { return true; }
      var tabIsInput = box.hasAttribute("data-tab-is-input");
      if (event.key === "Tab" && !event.ctrlKey && !event.altKey && !event.metaKey && (!tabIsInput || escaped)) {
        escaped = false;
        return false; // not for xterm: the browser moves focus
      }
      escaped = event.key === "Escape";
      return true;
    });
    var textarea = this.term.textarea;
    if (textarea && document.getElementById("run-keys")) {
      textarea.setAttribute("aria-describedby", "run-keys");
      textarea.setAttribute("aria-label", this.box.getAttribute("aria-label") || "Terminal");
    }
  };

  // Find in output, row by row over the buffer. Not xterm's search addon: it recursed once per
  // wrapped row, so a container printing a million-character line overflowed its stack and froze
  // the page. This costs one pass over at most scrollback + rows rows, whatever a line holds.
  // Columns are counted in characters, so a match after wide (CJK) characters is highlighted a
  // little to the left of where it is; it is still found and scrolled to.
  RunView.prototype.find = function (needle, backwards, incremental) {
    var term = this.term;
    if (!term || !needle) { return false; }
    var buffer = term.buffer.active;
    var rows = buffer.length;
    var wanted = needle.toLowerCase();
    var at = term.getSelectionPosition();
    var startRow = at ? at.start.y : (backwards ? rows - 1 : 0);
    var startCol = at ? at.start.x + (backwards ? -1 : (incremental ? 0 : 1)) : (backwards ? Infinity : 0);
    for (var i = 0; i <= rows; i++) {
      var row = backwards ? (startRow - i + rows) % rows : (startRow + i) % rows;
      var line = buffer.getLine(row);
      if (!line) { continue; }
      var text = line.translateToString(true).toLowerCase();
      var col;
      if (backwards) {
        var from = i === 0 ? startCol : Infinity;
        col = from < 0 ? -1 : text.lastIndexOf(wanted, from);
      } else {
        col = text.indexOf(wanted, i === 0 ? startCol : 0);
      }
      if (col >= 0) {
        term.select(col, row, needle.length);
        term.scrollToLine(Math.max(0, row - Math.floor(term.rows / 2)));
        return true;
      }
    }
    term.clearSelection();
    return false;
  };

  // How many times the needle is in the terminal, and which of them is selected (0: none).
  RunView.prototype.countShown = function (needle) {
    var buffer = this.term.buffer.active;
    var wanted = needle.toLowerCase();
    var at = this.term.getSelectionPosition();
    var total = 0;
    var index = 0;
    for (var row = 0; row < buffer.length; row++) {
      var line = buffer.getLine(row);
      if (!line) { continue; }
      var text = line.translateToString(true).toLowerCase();
      for (var col = text.indexOf(wanted); col >= 0; col = text.indexOf(wanted, col + wanted.length)) {
        total += 1;
        if (at && at.start.y === row && at.start.x === col) { index = total; }
      }
    }
    return { total: total, index: index };
  };

  // Once output outgrew the terminal, Find also reads the plain-text transcript (fetched when
  // searched, again only if more output came since) for the lines the terminal no longer has.
  RunView.prototype.earlierMatches = function (needle, then) {
    var self = this;
    var url = this.box.getAttribute("data-find-url");
    var search = function () {
      var lines = self.transcript.text.split("\n");
      var wanted = needle.toLowerCase();
      var before = Math.max(0, lines.length - self.term.buffer.active.length);
      var found = [];
      for (var i = 0; i < before; i++) {
        if (lines[i].toLowerCase().indexOf(wanted) >= 0) { found.push({ n: i + 1, text: lines[i] }); }
      }
      then(found);
    };
    if (this.transcript && this.transcript.lines === this.lines) { search(); return; }
    if (this.fetching) { this.fetching.then(function () { if (self.transcript) { search(); } }); return; }
    var lines = this.lines;
    this.fetching = window.fetch(url, { credentials: "same-origin" })
      .then(function (answer) { if (!answer.ok) { throw new Error(String(answer.status)); } return answer.text(); })
      .then(function (text) { self.transcript = { text: text, lines: lines }; self.fetching = null; search(); })
      .catch(function () { self.fetching = null; then(null); });
  };

  RunView.prototype.showFind = function (needle) {
    var self = this;
    var status = document.getElementById("run-find-status");
    var earlier = document.getElementById("run-find-earlier");
    if (!status || !this.term) { return; }
    var token = (this.findToken = (this.findToken || 0) + 1);
    // data-needle says which search the text answers, once it is the whole answer.
    var say = function (text, final) {
      status.textContent = text;
      if (final) { status.setAttribute("data-needle", needle); } else { status.removeAttribute("data-needle"); }
    };
    if (earlier) { earlier.hidden = true; }
    if (!needle) { say("", true); return; }
    var shown = this.countShown(needle);
    var text = shown.total === 0 ? "no match" : shown.index ? shown.index + " of " + shown.total : shown.total + (shown.total === 1 ? " match" : " matches");
    if (!this.isTrimmed()) { say(text, true); return; }
    if (!this.box.getAttribute("data-find-url")) { say(text + " in the lines shown", true); return; }
    say(text + " · searching earlier lines…", false);
    this.earlierMatches(needle, function (found) {
      if (token !== self.findToken) { return; } // the needle changed meanwhile
      if (found === null) { say(text + " · earlier lines could not be searched", true); return; }
      if (!found.length) { say(shown.total ? text + " · none earlier" : "no match", true); return; }
      say((shown.total ? text : "none shown") + " · " + found.length + " earlier, only in the transcript", true);
      self.listEarlier(earlier, needle, found);
    });
  };

  RunView.prototype.listEarlier = function (earlier, needle, found) {
    if (!earlier) { return; }
    var LIMIT = 50;
    earlier.textContent = "";
    var head = document.createElement("div");
    head.className = "fw-semibold";
    head.textContent = "Earlier lines matching \u201c" + needle + "\u201d (no longer in the terminal):";
    earlier.appendChild(head);
    for (var i = 0; i < Math.min(found.length, LIMIT); i++) {
      var row = document.createElement("div");
      row.className = "mono run-find-line";
      row.textContent = "line " + found[i].n + ": " + found[i].text.slice(0, 300);
      earlier.appendChild(row);
    }
    if (found.length > LIMIT) {
      var more = document.createElement("div");
      more.textContent = "\u2026 and " + (found.length - LIMIT) + " more: download the transcript to see them all.";
      earlier.appendChild(more);
    }
    earlier.hidden = false;
  };

  RunView.prototype.wireSearch = function () {
    var self = this;
    var input = document.getElementById("run-search");
    if (!input) { return; }
    var timer = null;
    input.addEventListener("keydown", function (event) {
      if (event.key !== "Enter") { return; }
      event.preventDefault();
      self.find(input.value, event.shiftKey, false);
      self.showFind(input.value);
    });
    input.addEventListener("input", function () {
      if (input.value) { self.find(input.value, false, true); }
      window.clearTimeout(timer);
      timer = window.setTimeout(function () { self.showFind(input.value); }, 150);
    });
  };

  // Replay the asciicast with its timing (idle gaps shortened to at most 1.5 s).
  RunView.prototype.showReplay = function () {
    if (this.replayButton && this.box.getAttribute("data-cast-url")) { this.replayButton.hidden = false; }
  };

  RunView.prototype.wireReplay = function () {
    var self = this;
    var button = this.replayButton;
    if (!button) { return; }
    button.addEventListener("click", function () {
      if (self.state.replaying) { return; }
      self.state.replaying = true;
      button.disabled = true;
      button.textContent = "Replaying…";
      window.fetch(self.box.getAttribute("data-cast-url"), { credentials: "same-origin" })
        .then(function (answer) { if (!answer.ok) { throw new Error(String(answer.status)); } return answer.text(); })
        .then(function (text) { self.play(text.split("\n").slice(1).filter(Boolean).map(JSON.parse)); })
        .catch(function () { self.endReplay("Replay failed; reload the page"); });
    });
  };

  RunView.prototype.play = function (events) {
    var self = this;
    var index = 0;
    var previous = 0;
    this.term.reset();
    function next() {
      if (index >= events.length) { self.endReplay(null); return; }
      var event = events[index++];
      var wait = Math.min(Math.max(0, event[0] - previous), 1.5);
      previous = event[0];
      window.setTimeout(function () {
        if (event[1] === "o") { self.term.write(String(event[2]), next); } else { next(); }
      }, wait * 1000);
    }
    next();
  };

  RunView.prototype.endReplay = function (problem) {
    this.state.replaying = false;
    this.replayButton.disabled = false;
    this.replayButton.textContent = problem || "Replay";
    this.pump();
  };

  var box = document.getElementById("run-terminal");
  if (!box) { return; }
  tickElapsed();
  window.setInterval(tickElapsed, 1000);
  installStyleShims(box.getAttribute("data-style-nonce"));
  var view = new RunView(box);
  view.connect();
  view.askWhenQuiet();
  // htmx:load fires on the body once htmx has wired the page (status messages that came
  // before then triggered nothing: no listener yet) and on each new #run-facts after a swap.
  document.addEventListener("htmx:load", function (event) {
    if (event.target === document.body || (event.target && event.target.id === "run-facts")) { view.refreshFacts(); }
  });
  document.addEventListener("DOMContentLoaded", function () {
    if (!window.Terminal) { view.say("The terminal could not load; download the transcript instead.", "refused"); return; }
    view.openTerminal();
  });
})();
