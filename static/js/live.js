// The live space this tab is in: its websocket (docs/websocket.md) and its audio (audio.js),
// held here rather than by a page, so both outlive Turbo's page changes (pages.js) while the
// minimised player (player.js) plays on. It keeps the space's state as the snapshot and events
// tell it; the space page (space.js) and the player draw that state, send the person's commands
// through it and hear every event through SpaceLive.listen. The server checks every command;
// the socket reconnects by itself. One space at a time: opening another live space's page
// moves the tab there, as a page load did before.
(function () {
  "use strict";

  // Close codes after which reconnecting would not help.
  var FINAL = { 1000: true, 1009: true, 4403: true, 4404: true, 4429: true, 4401: true };
  var CAPTION_LINES_KEPT = 4;
  var ROLE_NAMES = { host: "the host", cohost: "a co-host", speaker: "a speaker" };
  var listeners = [];
  var current = null;

  function emit(live, message) {
    listeners.slice().forEach(function (listener) { listener(message, live); });
  }

  function captionsChosen() {
    // Each person's choice to show captions, remembered on this device.
    try { return localStorage.getItem("spaces.captions") === "on"; } catch (e) { return false; }
  }

  function Live(spaceId, me) {
    var self = this;
    this.spaceId = String(spaceId);
    this.me = me || null;
    this.state = {
      space: null, stage: [], hands: [], you: null, listenerCount: null,
      speaking: {}, captions: [], captionsBehind: false,
      ended: false, closed: false, tapNeeded: false,
    };
    this.status = { text: "", isError: false };
    this.viewing = false;               // the space's own page is on screen
    this.captionsWanted = captionsChosen();
    this.socket = null;
    this.heartbeat = null;
    this.retries = 0;
    this.retryAfter = 0;                // the server's hint, from an `unavailable` error, for the next reconnect
    this.statusTimer = null;
    this.mine = null;
    this.audio = window.SpaceAudio ? new window.SpaceAudio({
      send: this.send.bind(this),
      status: function (text, isError) { self.setStatus(text, isError, true); },
      audioBox: document.getElementById("audio"),
      blocked: function (blocked) { self.state.tapNeeded = blocked; emit(self, { type: "live.tap" }); },
    }) : null;
    this.connect();
  }

  Live.prototype.role = function () { return this.state.you ? this.state.you.role : null; };
  Live.prototype.title = function () { return this.state.space ? this.state.space.title : "the space"; };

  Live.prototype.setStatus = function (text, isError, sticky) {
    var self = this;
    this.status = { text: text || "", isError: !!isError };
    clearTimeout(this.statusTimer);
    if (text && !sticky) this.statusTimer = setTimeout(function () { self.setStatus(""); }, 5000);
    emit(this, { type: "live.status" });
  };

  Live.prototype.send = function (message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
    else this.setStatus("Not connected yet; try again in a moment.", true);
  };

  Live.prototype.setViewing = function (viewing) {
    this.viewing = viewing;
    emit(this, { type: "live.viewing" });
  };

  Live.prototype.setCaptions = function (on) {
    this.captionsWanted = on;
    try { localStorage.setItem("spaces.captions", on ? "on" : "off"); } catch (e) { /* private mode */ }
    this.send({ type: "captions", on: on });
  };

  // What changes for you is said in the status line, which screen readers announce (aria-live).
  Live.prototype.announceMine = function (p) {
    var before = this.mine;
    this.mine = { role: p.role, muted: p.muted };
    if (!before) return;
    if (before.role !== p.role) {
      this.setStatus(p.role === "listener" ? "You're back in the audience." : "You're on stage as " + ROLE_NAMES[p.role] + ".");
    } else if (before.muted !== p.muted && p.role !== "listener") {
      this.setStatus(p.muted ? "You're muted." : "You're unmuted: everyone can hear you.");
    }
  };

  // State changes

  function upsert(list, p) {
    var i = list.findIndex(function (x) { return x.user.username === p.user.username; });
    if (i >= 0) list[i] = p; else list.push(p);
  }

  function drop(list, username) {
    return list.filter(function (x) { return x.user.username !== username; });
  }

  var ORDER = { host: 0, cohost: 1, speaker: 2 };

  Live.prototype.applyParticipant = function (p) {
    var state = this.state;
    var username = p.user.username;
    if (p.role === "listener") state.stage = drop(state.stage, username);
    else {
      upsert(state.stage, p);
      state.stage.sort(function (a, b) { return ORDER[a.role] - ORDER[b.role]; });
    }
    if (p.role === "listener" && p.hand_raised) upsert(state.hands, p);
    else state.hands = drop(state.hands, username);
    if (username === this.me) state.you = p;
  };

  Live.prototype.keepCaption = function (m, isFinal) {
    var lines = this.state.captions;
    var line = lines.find(function (x) { return x.line === m.line; });
    if (!line) {
      line = { line: m.line, speaker: m.speaker };
      lines.push(line);
      while (lines.length > CAPTION_LINES_KEPT) lines.shift();
    }
    line.text = m.text;
    line.final = isFinal;
  };

  var handlers = {
    snapshot: function (live, m) {
      var state = live.state;
      state.space = m.space;
      state.stage = m.stage;
      state.you = m.you;
      state.hands = m.hands || [];
      state.listenerCount = m.listener_count;
      state.speaking = {};  // the worker tells who is speaking again as the audio starts
      live.startHeartbeat(m.heartbeat_s || 20);
      live.retryAfter = 0;
      if (live.captionsWanted) live.send({ type: "captions", on: true });
      live.setStatus("");
      live.mine = m.you ? { role: m.you.role, muted: m.you.muted } : null;
      if (live.audio) {
        live.audio.iceServers = m.ice_servers || [];
        live.audio.setMuted(m.you ? m.you.muted : true);
        live.audio.start(!!m.you && m.you.role !== "listener");
      }
    },
    "participant.updated": function (live, m) {
      live.applyParticipant(m.participant);
      if (m.participant.user.username !== live.me) return;
      live.announceMine(m.participant);
      if (live.audio) {
        live.audio.setMuted(m.participant.muted);
        live.audio.start(m.participant.role !== "listener");
      }
    },
    speaking: function (live, m) {
      if (m.speaking) live.state.speaking[m.user.username] = true;
      else delete live.state.speaking[m.user.username];
    },
    "media.answer": function (live, m) { if (live.audio) live.audio.onAnswer(m); },
    "media.error": function (live, m) { if (live.audio) live.audio.onError(m); },
    "media.reset": function (live) { if (live.audio) live.audio.reset(); },
    "participant.removed": function (live, m) {
      live.state.stage = drop(live.state.stage, m.user.username);
      live.state.hands = drop(live.state.hands, m.user.username);
    },
    "space.updated": function (live, m) { live.state.space = m.space; },
    "space.ended": function (live, m) {
      live.state.ended = true;
      live.state.space = m.space;
      live.state.speaking = {};
      if (live.audio) live.audio.stop();
      live.setStatus("This space has ended.", false, true);
    },
    "listeners.count": function (live, m) { live.state.listenerCount = m.count; },
    "caption.partial": function (live, m) { live.keepCaption(m, false); },
    "caption.final": function (live, m) { live.keepCaption(m, true); },
    "captions.status": function (live, m) { live.state.captionsBehind = !!m.behind; },
    error: function (live, m) {
      if (m.code === "unavailable") {
        live.retryAfter = (m.retry_after || 2) * 1000;
        live.setStatus(m.detail, false, true);
        return;
      }
      live.setStatus(m.detail, true, m.code === "removed" || m.code === "entry_refused" || m.code === "ticket_refunded");
    },
  };

  Live.prototype.handle = function (message) {
    var handle = handlers[message.type];
    if (handle) handle(this, message);
    emit(this, message);
  };

  // The socket

  Live.prototype.startHeartbeat = function (seconds) {
    var self = this;
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(function () { self.send({ type: "ping" }); }, seconds * 1000);
  };

  Live.prototype.connect = function () {
    var self = this;
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/ws/spaces/" + this.spaceId + "/");
    this.socket = socket;
    socket.addEventListener("open", function () { self.retries = 0; });
    socket.addEventListener("message", function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (socket === self.socket) self.handle(message);
    });
    socket.addEventListener("close", function (event) {
      if (socket !== self.socket) return;
      clearInterval(self.heartbeat);
      if (self.audio) self.audio.close();
      if (self.state.closed) return;
      if (self.state.ended || FINAL[event.code]) {
        if (event.code === 4429) self.setStatus("Disconnected for sending too much.", true, true);
        self.finish(self.state.ended ? "ended" : "refused");
        return;
      }
      // 4503 (try again later) comes after an `unavailable` error with its own hint.
      var delay = self.retryAfter || Math.min(10000, 500 * Math.pow(2, self.retries++));
      self.retryAfter = 0;
      self.setStatus("Reconnecting…", false, true);
      setTimeout(function () { if (!self.state.closed) self.connect(); }, delay);
    });
  };

  Live.prototype.finish = function (reason) {
    // Over for good: the space ended, the server refused us, or the person left.
    this.state.closed = true;
    this.state.speaking = {};
    clearInterval(this.heartbeat);
    if (this.audio) this.audio.stop();
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) this.socket.close(1000);
    if (current === this) current = null;
    emit(this, { type: "live.closed", reason: reason });
  };

  Live.prototype.leave = function () {
    // A deliberate leave: the server updates every page at once (not after the reconnect grace).
    if (this.state.closed) return;
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ type: "leave" }));
    this.finish("left");
  };

  window.SpaceLive = {
    // The live space this tab is in, or null.
    current: function () { return current; },
    // The connection to this space: the one already open, or a new one (closing another space's).
    join: function (spaceId, me) {
      if (current && current.spaceId === String(spaceId)) return current;
      if (current) current.finish("moved");
      current = new Live(spaceId, me);
      emit(current, { type: "live.opened" });
      return current;
    },
    // listener(message, live) hears every event of every connection; returns a function that stops it.
    listen: function (listener) {
      listeners.push(listener);
      return function () { listeners = listeners.filter(function (l) { return l !== listener; }); };
    },
  };
})();
