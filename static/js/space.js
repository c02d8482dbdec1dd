// The live space page: one websocket (docs/websocket.md), a snapshot on connect,
// then events. The server checks every command; the buttons shown here only
// mirror what the role may do. The socket reconnects by itself.
(function () {
  "use strict";

  var root = document.getElementById("space");
  if (!root) return;

  var spaceId = root.dataset.spaceId;
  var me = root.dataset.me || null;
  var stageEl = document.getElementById("stage");
  var statusEl = document.getElementById("status");
  var controlsEl = document.getElementById("controls");
  var handsEl = document.getElementById("hands");
  var handListEl = document.getElementById("hand-list");
  var reactionsEl = document.getElementById("reactions");
  var floatingEl = document.getElementById("floating");
  var countEl = document.querySelector("[data-listener-count]");
  var captionsEl = document.getElementById("captions");
  var captionLinesEl = document.getElementById("caption-lines");
  var captionNoteEl = document.getElementById("caption-note");
  var ccButton = document.getElementById("cc");
  var CAPTION_LINES_SHOWN = 4;
  // Each person's choice to show captions, remembered on this device.
  var captionsWanted = (function () { try { return localStorage.getItem("spaces.captions") === "on"; } catch (e) { return false; } })();

  var state = { you: null, stage: [], hands: [], space: null, ended: false };
  var audio = window.SpaceAudio ? new window.SpaceAudio({ send: send, status: function (text, isError) { setStatus(text, isError, true); } }) : null;
  var socket = null;
  var heartbeat = null;
  var retries = 0;
  var retryAfter = 0; // the server's hint, from an `unavailable` error, for the next reconnect
  var statusTimer = null;
  // Close codes after which reconnecting would not help.
  var FINAL = { 1000: true, 1009: true, 4403: true, 4404: true, 4429: true, 4401: true };

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "className") node.className = attrs[key];
      else if (key.indexOf("data-") === 0) node.setAttribute(key, attrs[key]);
      else node[key] = attrs[key];
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function button(label, onClick, className) {
    var b = el("button", { type: "button", className: className || "button button-small" }, label);
    b.addEventListener("click", onClick);
    return b;
  }

  // What changes for you is said in the status line, which screen readers announce (aria-live).
  var mine = null;
  function announceMine(p) {
    var before = mine;
    mine = { role: p.role, muted: p.muted };
    if (!before) return;
    if (before.role !== p.role) {
      setStatus(p.role === "listener" ? "You're back in the audience."
        : "You're on stage as " + { host: "the host", cohost: "a co-host", speaker: "a speaker" }[p.role] + ".");
    } else if (before.muted !== p.muted && p.role !== "listener") {
      setStatus(p.muted ? "You're muted." : "You're unmuted: everyone can hear you.");
    }
  }

  function setStatus(text, isError, sticky) {
    statusEl.textContent = text || "";
    statusEl.classList.toggle("error", !!isError);
    clearTimeout(statusTimer);
    if (text && !sticky) statusTimer = setTimeout(function () { setStatus(""); }, 5000);
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    else setStatus("Not connected yet; try again in a moment.", true);
  }

  function role() { return state.you ? state.you.role : null; }
  function isModerator() { return role() === "host" || role() === "cohost"; }

  // Rendering

  function renderStage() {
    stageEl.textContent = "";
    state.stage.forEach(function (p) {
      var li = el("li", { className: "speaker" + (p.present ? "" : " absent"), "data-username": p.user.username });
      li.appendChild(el("img", { className: "avatar avatar-lg", src: p.user.avatar_url, alt: "" }));
      if (p.muted) li.appendChild(el("span", { className: "speaker-muted", title: "Muted", "data-muted": "true" }, "🔇"));
      li.appendChild(el("span", { className: "speaker-name" }, p.user.name));
      li.appendChild(el("span", { className: "speaker-role" }, { host: "Host", cohost: "Co-host", speaker: "Speaker" }[p.role] + (p.present ? "" : " · away")));
      var menu = moderatorMenu(p);
      if (menu) li.appendChild(menu);
      stageEl.appendChild(li);
    });
  }

  function moderatorMenu(p) {
    if (!isModerator() || p.user.username === me) return null;
    var mine = role();
    var protectedTarget = mine === "cohost" && (p.role === "host" || p.role === "cohost");
    var menu = el("div", { className: "speaker-menu" });
    var target = { user: p.user.username };
    if (!p.muted && !(mine === "cohost" && p.role === "host")) {
      menu.appendChild(button("Mute", function () { send(Object.assign({ type: "mute" }, target)); }, "button button-outline"));
    }
    if (!protectedTarget && p.role !== "host") {
      menu.appendChild(button("To audience", function () { send(Object.assign({ type: "move_to_audience" }, target)); }, "button button-outline"));
    }
    if (mine === "host" && p.role === "speaker") {
      menu.appendChild(button("Make co-host", function () { send(Object.assign({ type: "add_cohost" }, target)); }, "button button-outline"));
    }
    if (mine === "host" && p.role === "cohost") {
      menu.appendChild(button("Remove co-host", function () { send(Object.assign({ type: "remove_cohost" }, target)); }, "button button-outline"));
      menu.appendChild(button("Make host", function () { send(Object.assign({ type: "transfer_host" }, target)); }, "button button-outline"));
    }
    if (!protectedTarget && p.role !== "host") {
      menu.appendChild(button("Remove", function () {
        if (window.confirm("Remove @" + p.user.username + " from this space?")) send(Object.assign({ type: "remove" }, target));
      }, "button button-danger-outline"));
    }
    return menu.childNodes.length ? menu : null;
  }

  function renderHands() {
    handsEl.hidden = !isModerator() || state.ended;
    handListEl.textContent = "";
    state.hands.forEach(function (p) {
      var li = el("li", { className: "person", "data-hand": p.user.username });
      var who = el("span", { className: "person-link" });
      who.appendChild(el("img", { className: "avatar avatar-md", src: p.user.avatar_url, alt: "" }));
      who.appendChild(el("strong", {}, "✋ " + p.user.name));
      li.appendChild(who);
      var actions = el("span");
      actions.appendChild(button("Approve", function () { send({ type: "approve", user: p.user.username }); }));
      actions.appendChild(button("Deny", function () { send({ type: "deny", user: p.user.username }); }, "button button-small button-outline"));
      li.appendChild(actions);
      handListEl.appendChild(li);
    });
  }

  function renderControls() {
    controlsEl.textContent = "";
    controlsEl.hidden = state.ended;
    if (reactionsEl) reactionsEl.hidden = state.ended || !me;  // rendered only for who may react now
    if (state.ended) return;
    if (!me) {
      controlsEl.appendChild(el("a", { className: "button button-small", href: "/accounts/login/?next=" + encodeURIComponent(location.pathname) }, "Log in to take part"));
      return;
    }
    var you = state.you;
    if (!you) return;
    if (you.role === "listener") {
      if (you.invited) {
        controlsEl.appendChild(button("Join the stage", function () { send({ type: "accept_invite" }); }));
        controlsEl.appendChild(button("Not now", function () { send({ type: "decline_invite" }); }, "button button-small button-outline"));
      } else if (you.hand_raised) {
        controlsEl.appendChild(button("✋ Lower hand", function () { send({ type: "lower_hand" }); }, "button button-small button-outline"));
      } else {
        controlsEl.appendChild(button("✋ Request to speak", function () { send({ type: "request_speak" }); }));
      }
    } else {
      if (you.muted) controlsEl.appendChild(button("🎙 Unmute", function () { send({ type: "unmute_self" }); }));
      else controlsEl.appendChild(button("🔇 Mute", function () { send({ type: "mute_self" }); }, "button button-small button-outline"));
      if (you.role !== "host") controlsEl.appendChild(button("Leave stage", function () { send({ type: "leave_stage" }); }, "button button-small button-outline"));
    }
    if (isModerator() && state.space) {
      var on = state.space.captions_enabled;
      controlsEl.appendChild(button(on ? "Turn captions off" : "Turn captions on", function () {
        send({ type: "set_captions", on: !on });
      }, "button button-small button-outline"));
      var recording = state.space.recording_enabled;
      controlsEl.appendChild(button(recording ? "Stop recording" : "⏺ Record", function () {
        if (recording || window.confirm("Record this space? Everyone in it will see that it is recorded.")) {
          send({ type: "set_recording", on: !recording });
        }
      }, "button button-small button-outline"));
    }
    if (you.role === "host") {
      controlsEl.appendChild(button("End space", function () {
        if (window.confirm("End this space for everyone?")) send({ type: "end" });
      }, "button button-small button-danger-outline"));
    }
    controlsEl.appendChild(button("Leave", function () {
      if (audio) audio.stop();
      send({ type: "leave" });
      location.href = "/";
    }, "button button-small button-outline"));
  }

  function renderSpace() {
    var s = state.space;
    if (!s) return;
    document.querySelector("[data-space-title]").textContent = s.title;
    var host = document.querySelector("[data-space-host]");
    host.textContent = s.host.name;
    host.href = "/u/" + s.host.username + "/";
    var topics = document.querySelector("[data-space-topics]");
    topics.textContent = "";
    s.topics.forEach(function (t) { topics.appendChild(el("span", { className: "topic" }, t)); });
    var link = document.querySelector("[data-space-link]");
    link.hidden = !s.pinned_link;
    if (s.pinned_link) { link.querySelector("a").href = s.pinned_link; link.querySelector("a").textContent = s.pinned_link; }
    root.dataset.state = s.state;
    // Everyone sees that a live space is recorded before they speak; the clip button follows.
    var recorded = s.recording_enabled && s.state === "live";
    document.querySelectorAll("[data-rec]").forEach(function (node) { node.hidden = !recorded; });
  }

  function renderCaptions() {
    var available = !!(state.space && state.space.captions_enabled) && !state.ended && !!captionsEl;
    ccButton.hidden = !available;
    ccButton.setAttribute("aria-pressed", captionsWanted ? "true" : "false");
    ccButton.textContent = captionsWanted ? "CC on" : "CC";
    if (captionsEl) captionsEl.hidden = !(available && captionsWanted);
  }

  function showCaption(m, isFinal) {
    var li = captionLinesEl.querySelector('[data-line="' + m.line + '"]');
    if (!li) {
      li = el("li", { className: "caption", "data-line": m.line });
      li.appendChild(el("span", { className: "caption-speaker" }, m.speaker.name || m.speaker.username));
      li.appendChild(el("span", { className: "caption-text" }));
      captionLinesEl.appendChild(li);
      while (captionLinesEl.children.length > CAPTION_LINES_SHOWN) captionLinesEl.firstChild.remove();
    }
    li.classList.toggle("caption-partial", !isFinal);
    li.querySelector(".caption-text").textContent = m.text;
  }

  function renderAll() { renderSpace(); renderStage(); renderHands(); renderControls(); renderCaptions(); }

  // State changes

  function upsert(list, p) {
    var i = list.findIndex(function (x) { return x.user.username === p.user.username; });
    if (i >= 0) list[i] = p; else list.push(p);
  }

  function drop(list, username) {
    return list.filter(function (x) { return x.user.username !== username; });
  }

  var ORDER = { host: 0, cohost: 1, speaker: 2 };

  function applyParticipant(p) {
    var username = p.user.username;
    if (p.role === "listener") state.stage = drop(state.stage, username);
    else {
      upsert(state.stage, p);
      state.stage.sort(function (a, b) { return ORDER[a.role] - ORDER[b.role]; });
    }
    if (p.role === "listener" && p.hand_raised) upsert(state.hands, p);
    else state.hands = drop(state.hands, username);
    if (username === me) state.you = p;
  }

  function floatReaction(emoji) {
    var node = el("span", { className: "float" }, emoji);
    node.style.left = Math.round(Math.random() * 24) + "px";
    floatingEl.appendChild(node);
    setTimeout(function () { node.remove(); }, 2600);
  }

  var handlers = {
    snapshot: function (m) {
      state.space = m.space;
      state.stage = m.stage;
      state.you = m.you;
      state.hands = m.hands || [];
      countEl.textContent = m.listener_count;
      startHeartbeat(m.heartbeat_s || 20);
      retryAfter = 0;
      if (captionsWanted) send({ type: "captions", on: true });
      setStatus("");
      mine = m.you ? { role: m.you.role, muted: m.you.muted } : null;
      renderAll();
      if (audio) {
        audio.iceServers = m.ice_servers || [];
        audio.setMuted(m.you ? m.you.muted : true);
        audio.start(!!m.you && m.you.role !== "listener");
      }
    },
    "participant.updated": function (m) {
      applyParticipant(m.participant);
      if (m.participant.user.username === me) announceMine(m.participant);
      if (audio && m.participant.user.username === me) {
        audio.setMuted(m.participant.muted);
        audio.start(m.participant.role !== "listener");
      }
      renderAll();
    },
    speaking: function (m) {
      var li = stageEl.querySelector('[data-username="' + m.user.username + '"]');
      if (li) li.classList.toggle("speaking", m.speaking);
    },
    "media.answer": function (m) { if (audio) audio.onAnswer(m); },
    "media.error": function (m) { if (audio) audio.onError(m); },
    "media.reset": function () { if (audio) audio.reset(); },
    "participant.removed": function (m) {
      state.stage = drop(state.stage, m.user.username);
      state.hands = drop(state.hands, m.user.username);
      renderAll();
    },
    "space.updated": function (m) { state.space = m.space; renderAll(); },
    "space.ended": function (m) {
      state.ended = true;
      if (audio) audio.stop();
      state.space = m.space;
      document.querySelectorAll(".badge-live").forEach(function (b) { b.remove(); });
      document.querySelector("[data-space-state-label]").textContent = m.space.state === "cancelled" ? "Cancelled" : "Ended";
      setStatus("This space has ended.", false, true);
      renderAll();
    },
    "listeners.count": function (m) { countEl.textContent = m.count; },
    "caption.partial": function (m) { showCaption(m, false); },
    "caption.final": function (m) { showCaption(m, true); },
    "captions.status": function (m) {
      captionNoteEl.hidden = !m.behind;
      captionNoteEl.textContent = m.behind ? "Captions are running behind; finished lines will still come." : "";
    },
    reaction: function (m) { floatReaction(m.emoji); },
    error: function (m) {
      if (m.code === "unavailable") { retryAfter = (m.retry_after || 2) * 1000; setStatus(m.detail, false, true); return; }
      setStatus(m.detail, true, m.code === "removed" || m.code === "entry_refused" || m.code === "ticket_refunded");
    },
    pong: function () {},
    ok: function () {},
  };

  // The socket

  function startHeartbeat(seconds) {
    clearInterval(heartbeat);
    heartbeat = setInterval(function () { send({ type: "ping" }); }, seconds * 1000);
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/spaces/" + spaceId + "/");
    socket.addEventListener("open", function () { retries = 0; });
    socket.addEventListener("message", function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      var handle = handlers[message.type];
      if (handle) handle(message);
    });
    socket.addEventListener("close", function (event) {
      clearInterval(heartbeat);
      if (audio) audio.close();
      if (state.ended || FINAL[event.code]) {
        if (event.code === 4429) setStatus("Disconnected for sending too much.", true, true);
        return;
      }
      // 4503 (try again later) comes after an `unavailable` error with its own hint.
      var delay = retryAfter || Math.min(10000, 500 * Math.pow(2, retries++));
      retryAfter = 0;
      setStatus("Reconnecting…", false, true);
      setTimeout(connect, delay);
    });
  }

  // Page controls

  document.getElementById("invite-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var input = event.target.elements.user;
    var username = input.value.trim().replace(/^@/, "");
    if (username) send({ type: "invite", user: username });
    input.value = "";
  });

  if (reactionsEl) reactionsEl.addEventListener("click", function (event) {
    var emoji = event.target.dataset && event.target.dataset.emoji;
    if (emoji) send({ type: "react", emoji: emoji });
  });

  ccButton.addEventListener("click", function () {
    captionsWanted = !captionsWanted;
    try { localStorage.setItem("spaces.captions", captionsWanted ? "on" : "off"); } catch (e) { /* private mode */ }
    send({ type: "captions", on: captionsWanted });
    renderCaptions();
  });

  var share = document.getElementById("share");
  share.addEventListener("click", function () {
    var done = function () { share.textContent = "Link copied"; setTimeout(function () { share.textContent = "Copy link"; }, 2000); };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(share.dataset.url).then(done);
    else { window.prompt("Copy this link:", share.dataset.url); }
  });

  if (root.dataset.state === "live" && root.dataset.canEnter === "true") connect();
})();
