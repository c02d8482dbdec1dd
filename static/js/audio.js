// Live audio for a space (docs/media.md): one RTCPeerConnection to the
// media worker, negotiated over the space's websocket. On stage it sends the
// microphone and receives the other speakers, one transceiver each; in the
// audience it receives the room's mix. live.js drives it: start(role),
// onAnswer, onError, reset, setMuted, resume, stop; its <audio> elements live
// in the minimised player (#audio), so they play on while the person browses
// the site. It never waits for good: each offer carries a ref, an answer that
// doesn't come within ANSWER_TIMEOUT_MS (the worker is restarting) means offer
// again, and a restarted worker's `media.reset` makes it offer at once.
(function () {
  "use strict";

  var SLOTS = 12; // the most other speakers a stage of 13 can hold
  var ANSWER_TIMEOUT_MS = 5000;
  var supported = !!(window.RTCPeerConnection && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);

  function SpaceAudio(options) {
    this.send = options.send;           // send a message on the space's socket
    this.status = options.status;       // show a message to the person
    this.iceServers = options.iceServers || [];
    this.pc = null;
    this.microphone = null;
    this.publishing = false;
    this.muted = true;
    this.wanted = null;                 // "speaker" | "listener" | null
    this.retry = 0;
    this.retryTimer = null;
    this.offerRef = 0;
    this.answerTimer = null;
    this.audioBox = options.audioBox;
    this.blocked = options.blocked;    // the browser wants a tap before it plays: blocked(true)
  }

  SpaceAudio.prototype.start = function (onStage) {
    if (!supported) {
      this.status("This browser can't play live audio. Try a recent Chrome, Firefox or Safari.", true);
      return;
    }
    var want = onStage ? "speaker" : "listener";
    if (this.wanted === want && this.pc) return;
    this.wanted = want;
    this.connect();
  };

  SpaceAudio.prototype.connect = function () {
    var self = this;
    this.close();
    var publish = this.wanted === "speaker";
    var pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;
    pc.addEventListener("track", function (event) { self.play(event.track); });
    pc.addEventListener("connectionstatechange", function () {
      if (pc !== self.pc) return;
      if (pc.connectionState === "connected") self.retry = 0;
      if (pc.connectionState === "failed" || pc.connectionState === "disconnected") self.reconnectLater();
    });
    var ready = publish ? this.openMicrophone() : Promise.resolve(null);
    ready
      .then(function (track) {
        if (pc !== self.pc) return null;
        if (publish && !track) { publish = false; self.wanted = "listener"; }
        if (publish) {
          track.enabled = !self.muted;
          pc.addTransceiver(track, { direction: "sendonly" });
          for (var i = 0; i < SLOTS; i++) pc.addTransceiver("audio", { direction: "recvonly" });
        } else {
          pc.addTransceiver("audio", { direction: "recvonly" });
        }
        self.publishing = publish;
        return pc.createOffer().then(function (offer) { return pc.setLocalDescription(offer); });
      })
      .then(function () { return pc === self.pc ? gathered(pc) : null; })
      .then(function () {
        if (pc !== self.pc) return;
        var ref = "offer-" + ++self.offerRef;
        self.send({ type: "media.offer", sdp: pc.localDescription.sdp, publish: self.publishing, ref: ref });
        clearTimeout(self.answerTimer);
        self.answerTimer = setTimeout(function () {
          if (pc === self.pc && pc.signalingState === "have-local-offer") self.reconnectLater();
        }, ANSWER_TIMEOUT_MS);
      })
      .catch(function (error) {
        self.status("Audio could not start: " + error.message, true);
        self.reconnectLater();
      });
  };

  SpaceAudio.prototype.openMicrophone = function () {
    var self = this;
    if (this.microphone && this.microphone.readyState === "live") return Promise.resolve(this.microphone);
    return navigator.mediaDevices
      .getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true }, video: false })
      .then(function (stream) {
        self.microphone = stream.getAudioTracks()[0];
        return self.microphone;
      })
      .catch(function (error) {
        var blocked = error && (error.name === "NotAllowedError" || error.name === "SecurityError");
        self.status(
          blocked
            ? "Your microphone is blocked. Allow it in your browser's site settings to speak; you can still listen."
            : "No microphone could be opened (" + (error && error.name) + "); you can still listen.",
          true
        );
        return null;
      });
  };

  SpaceAudio.prototype.current = function (message) {
    // An answer or refusal for an offer we have since replaced is not ours to act on.
    return message.ref === undefined || message.ref === "offer-" + this.offerRef;
  };

  SpaceAudio.prototype.onAnswer = function (message) {
    if (!this.pc || this.pc.signalingState !== "have-local-offer" || !this.current(message)) return;
    clearTimeout(this.answerTimer);
    this.pc.setRemoteDescription({ type: "answer", sdp: message.sdp }).catch(this.reconnectLater.bind(this));
  };

  SpaceAudio.prototype.onError = function (message) {
    if (!this.current(message)) return;
    clearTimeout(this.answerTimer);
    if (message.code === "media_unavailable") {
      this.status(message.detail, false);
      this.reconnectLater((message.retry_after || 2) * 1000);
      return;
    }
    if (message.code === "not_on_stage") {
      // Off the stage (or not yet on it): listen instead.
      this.wanted = "listener";
      this.connect();
      return;
    }
    this.status(message.detail, true);
  };

  SpaceAudio.prototype.setMuted = function (muted) {
    this.muted = muted;
    if (this.microphone) this.microphone.enabled = !muted;
  };

  SpaceAudio.prototype.play = function (track) {
    var element = document.createElement("audio");
    element.autoplay = true;
    element.srcObject = new MediaStream([track]);
    this.audioBox.appendChild(element);
    track.addEventListener("ended", function () { element.remove(); });
    this.playing(element);
  };

  SpaceAudio.prototype.playing = function (element) {
    var self = this;
    var started = element.play();
    if (started && started.catch) started.catch(function () { self.blocked(true); });
  };

  SpaceAudio.prototype.resume = function () {
    // After the person's tap, or after the player was moved into a new page: play what is paused.
    var self = this;
    this.blocked(false);
    this.audioBox.querySelectorAll("audio").forEach(function (element) {
      if (element.paused) self.playing(element);
    });
  };

  SpaceAudio.prototype.reset = function () {
    // The media worker restarted: our connection went with it; offer again now.
    if (!this.wanted) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.retry = 0;
    this.connect();
  };

  SpaceAudio.prototype.reconnectLater = function (after) {
    var self = this;
    if (!this.wanted || this.retryTimer) return;
    var delay = after || Math.min(10000, 500 * Math.pow(2, this.retry++));
    this.retryTimer = setTimeout(function () {
      self.retryTimer = null;
      if (self.wanted) self.connect();
    }, delay);
  };

  SpaceAudio.prototype.close = function () {
    clearTimeout(this.answerTimer);
    if (this.pc) {
      this.pc.close();
      this.pc = null;
    }
    this.audioBox.querySelectorAll("audio").forEach(function (a) { a.remove(); });
  };

  SpaceAudio.prototype.stop = function () {
    this.wanted = null;
    this.close();
    if (this.microphone) { this.microphone.stop(); this.microphone = null; }
  };

  function gathered(pc) {
    // The worker takes complete offers (no trickle): wait for ICE gathering, at most 3 s.
    return new Promise(function (resolve) {
      if (pc.iceGatheringState === "complete") return resolve();
      var done = function () {
        if (pc.iceGatheringState === "complete") { pc.removeEventListener("icegatheringstatechange", done); resolve(); }
      };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 3000);
    });
  }

  SpaceAudio.supported = supported;
  window.SpaceAudio = SpaceAudio;
})();
