// The live space's page: while it is on screen it draws the space from the tab's live connection
// (live.js: the socket, the audio and the state they keep), joining it if the tab isn't in this
// space yet, and sends the person's commands through it. Leaving the page only detaches the
// drawing; the connection plays on in the minimised player (player.js), and coming back draws
// the state as it is now, without reconnecting. The buttons shown only mirror what the role may
// do; the server checks every command.
(function () {
  "use strict";

  var ROLE_LABELS = { host: "Host", cohost: "Co-host", speaker: "Speaker" };

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

  function SpaceView(root) {
    this.root = root;
    this.me = root.dataset.me || null;
    this.find = function (selector) { return root.querySelector(selector); };
    this.stageEl = this.find("#stage");
    this.statusEl = this.find("#status");
    this.controlsEl = this.find("#controls");
    this.handsEl = this.find("#hands");
    this.handListEl = this.find("#hand-list");
    this.reactionsEl = this.find("#reactions");
    this.floatingEl = this.find("#floating");
    this.countEl = this.find("[data-listener-count]");
    this.captionsEl = this.find("#captions");
    this.captionLinesEl = this.find("#caption-lines");
    this.captionNoteEl = this.find("#caption-note");
    this.ccButton = this.find("#cc");
    this.tapButton = null;
    this.live = null;
  }

  SpaceView.prototype.send = function (message) { this.live.send(message); };
  SpaceView.prototype.state = function () { return this.live.state; };
  SpaceView.prototype.role = function () { return this.state().you ? this.state().you.role : null; };
  SpaceView.prototype.isModerator = function () { return this.role() === "host" || this.role() === "cohost"; };

  // Rendering

  SpaceView.prototype.renderStatus = function () {
    var status = this.live.status;
    if (!status.text && !this.state().space) return;  // still "Connecting…"
    this.statusEl.textContent = status.text;
    this.statusEl.classList.toggle("error", status.isError);
  };

  SpaceView.prototype.renderStage = function () {
    var self = this;
    var state = this.state();
    this.stageEl.textContent = "";
    state.stage.forEach(function (p) {
      var li = el("li", { className: "speaker" + (p.present ? "" : " absent") + (state.speaking[p.user.username] ? " speaking" : ""), "data-username": p.user.username });
      li.appendChild(el("img", { className: "avatar avatar-lg", src: p.user.avatar_url, alt: "" }));
      if (p.muted) li.appendChild(el("span", { className: "speaker-muted", title: "Muted", "data-muted": "true" }, "🔇"));
      li.appendChild(el("span", { className: "speaker-name" }, p.user.name));
      li.appendChild(el("span", { className: "speaker-role" }, ROLE_LABELS[p.role] + (p.present ? "" : " · away")));
      var menu = self.moderatorMenu(p);
      if (menu) li.appendChild(menu);
      self.stageEl.appendChild(li);
    });
  };

  SpaceView.prototype.moderatorMenu = function (p) {
    if (!this.isModerator() || p.user.username === this.me) return null;
    var self = this;
    var mine = this.role();
    var protectedTarget = mine === "cohost" && (p.role === "host" || p.role === "cohost");
    var menu = el("div", { className: "speaker-menu" });
    function command(type) { return function () { self.send({ type: type, user: p.user.username }); }; }
    if (!p.muted && !(mine === "cohost" && p.role === "host")) {
      menu.appendChild(button("Mute", command("mute"), "button button-outline"));
    }
    if (!protectedTarget && p.role !== "host") {
      menu.appendChild(button("To audience", command("move_to_audience"), "button button-outline"));
    }
    if (mine === "host" && p.role === "speaker") {
      menu.appendChild(button("Make co-host", command("add_cohost"), "button button-outline"));
    }
    if (mine === "host" && p.role === "cohost") {
      menu.appendChild(button("Remove co-host", command("remove_cohost"), "button button-outline"));
      menu.appendChild(button("Make host", command("transfer_host"), "button button-outline"));
    }
    if (!protectedTarget && p.role !== "host") {
      menu.appendChild(button("Remove", function () {
        if (window.confirm("Remove @" + p.user.username + " from this space?")) command("remove")();
      }, "button button-danger-outline"));
    }
    return menu.childNodes.length ? menu : null;
  };

  SpaceView.prototype.renderHands = function () {
    var self = this;
    this.handsEl.hidden = !this.isModerator() || this.state().ended;
    this.handListEl.textContent = "";
    this.state().hands.forEach(function (p) {
      var li = el("li", { className: "person", "data-hand": p.user.username });
      var who = el("span", { className: "person-link" });
      who.appendChild(el("img", { className: "avatar avatar-md", src: p.user.avatar_url, alt: "" }));
      who.appendChild(el("strong", {}, "✋ " + p.user.name));
      li.appendChild(who);
      var actions = el("span");
      actions.appendChild(button("Approve", function () { self.send({ type: "approve", user: p.user.username }); }));
      actions.appendChild(button("Deny", function () { self.send({ type: "deny", user: p.user.username }); }, "button button-small button-outline"));
      li.appendChild(actions);
      self.handListEl.appendChild(li);
    });
  };

  SpaceView.prototype.renderControls = function () {
    var self = this;
    var state = this.state();
    var controls = this.controlsEl;
    function add(label, type, className) {
      controls.appendChild(button(label, function () { self.send({ type: type }); }, className));
    }
    controls.textContent = "";
    controls.hidden = state.ended;
    if (this.reactionsEl) this.reactionsEl.hidden = state.ended || !this.me;  // rendered only for who may react now
    if (state.ended) return;
    if (!this.me) {
      controls.appendChild(el("a", { className: "button button-small", href: "/accounts/login/?next=" + encodeURIComponent(location.pathname) }, "Log in to take part"));
      return;
    }
    var you = state.you;
    if (!you) return;
    if (you.role === "listener") {
      if (you.invited) {
        add("Join the stage", "accept_invite");
        add("Not now", "decline_invite", "button button-small button-outline");
      } else if (you.hand_raised) {
        add("✋ Lower hand", "lower_hand", "button button-small button-outline");
      } else {
        add("✋ Request to speak", "request_speak");
      }
    } else {
      if (you.muted) add("🎙 Unmute", "unmute_self");
      else add("🔇 Mute", "mute_self", "button button-small button-outline");
      if (you.role !== "host") add("Leave stage", "leave_stage", "button button-small button-outline");
    }
    if (this.isModerator() && state.space) {
      var on = state.space.captions_enabled;
      controls.appendChild(button(on ? "Turn captions off" : "Turn captions on", function () {
        self.send({ type: "set_captions", on: !on });
      }, "button button-small button-outline"));
      var recording = state.space.recording_enabled;
      controls.appendChild(button(recording ? "Stop recording" : "⏺ Record", function () {
        if (recording || window.confirm("Record this space? Everyone in it will see that it is recorded.")) {
          self.send({ type: "set_recording", on: !recording });
        }
      }, "button button-small button-outline"));
    }
    if (you.role === "host") {
      controls.appendChild(button("End space", function () {
        if (window.confirm("End this space for everyone?")) self.send({ type: "end" });
      }, "button button-small button-danger-outline"));
    }
    controls.appendChild(button("Leave", function () {
      self.live.leave();
      if (window.Turbo) window.Turbo.visit("/");
      else location.href = "/";
    }, "button button-small button-outline"));
  };

  SpaceView.prototype.renderTap = function () {
    // The browser wants a gesture before it plays sound: one tap starts every stream.
    var self = this;
    var wanted = this.state().tapNeeded && !this.state().closed;
    var shown = this.find(".tap-to-listen");  // this view's, or one left in a page Turbo kept
    if (shown && (!wanted || shown !== this.tapButton)) shown.remove();
    if (!wanted || (shown && shown === this.tapButton)) return;
    this.tapButton = button("🔊 Tap to listen", function () { self.live.audio.resume(); }, "button tap-to-listen");
    this.controlsEl.parentNode.insertBefore(this.tapButton, this.controlsEl);
  };

  SpaceView.prototype.renderSpace = function () {
    var s = this.state().space;
    if (!s) return;
    this.find("[data-space-title]").textContent = s.title;
    var host = this.find("[data-space-host]");
    host.textContent = s.host.name;
    host.href = "/u/" + s.host.username + "/";
    var topics = this.find("[data-space-topics]");
    topics.textContent = "";
    s.topics.forEach(function (t) { topics.appendChild(el("span", { className: "topic" }, t)); });
    var link = this.find("[data-space-link]");
    link.hidden = !s.pinned_link;
    if (s.pinned_link) { link.querySelector("a").href = s.pinned_link; link.querySelector("a").textContent = s.pinned_link; }
    this.root.dataset.state = s.state;
    if (this.state().listenerCount !== null) this.countEl.textContent = this.state().listenerCount;
    if (this.state().ended) {
      this.root.querySelectorAll(".badge-live").forEach(function (b) { b.remove(); });
      this.find("[data-space-state-label]").textContent = s.state === "cancelled" ? "Cancelled" : "Ended";
    }
    // Everyone sees that a live space is recorded before they speak; the clip button follows.
    var recorded = s.recording_enabled && s.state === "live";
    this.root.querySelectorAll("[data-rec]").forEach(function (node) { node.hidden = !recorded; });
  };

  SpaceView.prototype.renderCaptions = function () {
    var state = this.state();
    var wanted = this.live.captionsWanted;
    var available = !!(state.space && state.space.captions_enabled) && !state.ended && !!this.captionsEl;
    this.ccButton.hidden = !available;
    this.ccButton.setAttribute("aria-pressed", wanted ? "true" : "false");
    this.ccButton.textContent = wanted ? "CC on" : "CC";
    if (!this.captionsEl) return;
    this.captionsEl.hidden = !(available && wanted);
    this.captionNoteEl.hidden = !state.captionsBehind;
    this.captionNoteEl.textContent = state.captionsBehind ? "Captions are running behind; finished lines will still come." : "";
    var lines = this.captionLinesEl;
    lines.textContent = "";
    state.captions.forEach(function (line) {
      var li = el("li", { className: "caption" + (line.final ? "" : " caption-partial"), "data-line": line.line });
      li.appendChild(el("span", { className: "caption-speaker" }, line.speaker.name || line.speaker.username));
      li.appendChild(el("span", { className: "caption-text" }, line.text));
      lines.appendChild(li);
    });
  };

  SpaceView.prototype.showCaption = function (m) {
    // One line changes in place, so a screen reader hears the new words, not the whole list again.
    if (!this.captionsEl) return;
    var line = this.state().captions.find(function (x) { return x.line === m.line; });
    var li = this.captionLinesEl.querySelector('[data-line="' + m.line + '"]');
    if (!line || !li) { this.renderCaptions(); return; }
    li.classList.toggle("caption-partial", !line.final);
    li.querySelector(".caption-text").textContent = line.text;
  };

  SpaceView.prototype.showSpeaking = function (username, speaking) {
    var li = this.stageEl.querySelector('[data-username="' + username + '"]');
    if (li) li.classList.toggle("speaking", speaking);
  };

  SpaceView.prototype.floatReaction = function (emoji) {
    var node = el("span", { className: "float" }, emoji);
    node.style.left = Math.round(Math.random() * 24) + "px";
    this.floatingEl.appendChild(node);
    setTimeout(function () { node.remove(); }, 2600);
  };

  SpaceView.prototype.renderAll = function () {
    this.renderSpace(); this.renderStage(); this.renderHands(); this.renderControls();
    this.renderCaptions(); this.renderTap(); this.renderStatus();
  };

  SpaceView.prototype.hear = function (m) {
    switch (m.type) {
      case "speaking": this.showSpeaking(m.user.username, m.speaking); break;
      case "listeners.count": this.countEl.textContent = m.count; break;
      case "caption.partial": case "caption.final": this.showCaption(m); break;
      case "captions.status": this.renderCaptions(); break;
      case "reaction": this.floatReaction(m.emoji); break;
      case "live.status": this.renderStatus(); break;
      case "live.tap": this.renderTap(); break;
      case "snapshot": case "participant.updated": case "participant.removed":
      case "space.updated": case "space.ended": case "live.closed":
        this.renderAll();
        break;
    }
  };

  // The page's own controls, bound each time the page is shown.
  SpaceView.prototype.bind = function () {
    var self = this;
    this.find("#invite-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var input = event.target.elements.user;
      var username = input.value.trim().replace(/^@/, "");
      if (username) self.send({ type: "invite", user: username });
      input.value = "";
    });
    if (this.reactionsEl) this.reactionsEl.addEventListener("click", function (event) {
      var emoji = event.target.dataset && event.target.dataset.emoji;
      if (emoji) self.send({ type: "react", emoji: emoji });
    });
    this.ccButton.addEventListener("click", function () {
      self.live.setCaptions(!self.live.captionsWanted);
      self.renderCaptions();
    });
  };

  SpaceView.prototype.attach = function () {
    var self = this;
    this.live = window.SpaceLive.join(this.root.dataset.spaceId, this.me);
    this.live.setViewing(true);
    this.bind();
    this.floatingEl.textContent = "";  // reactions caught mid-flight in a page Turbo kept
    var unlisten = window.SpaceLive.listen(function (message, live) { if (live === self.live) self.hear(message); });
    this.renderAll();
    return function () {
      unlisten();
      if (window.SpaceLive.current() === self.live) self.live.setViewing(false);
    };
  };

  window.spacesPage(function () {
    var root = document.getElementById("space");
    if (!root || !window.SpaceLive) return null;
    if (root.dataset.state !== "live" || root.dataset.canEnter !== "true") return null;
    return new SpaceView(root).attach();
  });
})();
