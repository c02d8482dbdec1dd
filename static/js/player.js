// The minimised player: a bar at the foot of every page while the tab is in a live space
// (live.js) and that space's own page is not on screen. It lives in #player, which Turbo keeps
// from page to page (data-turbo-permanent), with the space's <audio> elements, so the space
// plays on while the person browses. It shows the space, who is speaking and what changed for
// them (aria-live), and offers mute, leave and the way back. When the space ends, or the person
// is let out, the bar goes and a toast says why.
(function () {
  "use strict";

  var player = document.getElementById("player");
  if (!player || !window.SpaceLive) return;
  var bar = player.querySelector("[data-player-bar]");
  var link = player.querySelector("[data-player-link]");
  var title = player.querySelector("[data-player-title]");
  var speakingEl = player.querySelector("[data-player-speaking]");
  var statusEl = player.querySelector("[data-player-status]");
  var tap = player.querySelector("[data-player-tap]");
  var mute = player.querySelector("[data-player-mute]");
  var leave = player.querySelector("[data-player-leave]");

  function names(people) {
    if (people.length <= 2) return people.join(" and ");
    return people.slice(0, 2).join(", ") + " and " + (people.length - 2) + " more";
  }

  function whoSpeaks(live) {
    var state = live.state;
    var speaking = state.stage
      .filter(function (p) { return state.speaking[p.user.username]; })
      .map(function (p) { return p.user.name; });
    if (speaking.length) return names(speaking) + (speaking.length === 1 ? " is speaking" : " are speaking");
    return state.space ? "Hosted by " + state.space.host.name : "Connecting…";
  }

  function render(live) {
    bar.hidden = !live || live.viewing || live.state.closed;
    if (bar.hidden) return;
    var state = live.state;
    link.href = "/spaces/" + live.spaceId + "/";
    title.textContent = state.space ? state.space.title : "Live space";
    speakingEl.textContent = whoSpeaks(live);
    statusEl.textContent = live.status.text;
    statusEl.classList.toggle("error", live.status.isError);
    tap.hidden = !state.tapNeeded;
    var onStage = state.you && state.you.role !== "listener";
    mute.hidden = !onStage;
    if (onStage) mute.textContent = state.you.muted ? "🎙 Unmute" : "🔇 Mute";
  }

  function toast(heading, body) {
    // #toasts is on every page and polite (aria-live): the person hears why the player went.
    var toasts = document.getElementById("toasts");
    if (!toasts) return;
    var node = document.createElement("div");
    node.className = "toast";
    node.setAttribute("role", "status");
    var strong = document.createElement("strong");
    strong.className = "toast-title";
    strong.textContent = heading;
    node.appendChild(strong);
    if (body) {
      var span = document.createElement("span");
      span.className = "toast-body";
      span.textContent = body;
      node.appendChild(span);
    }
    toasts.appendChild(node);
    setTimeout(function () { node.classList.add("toast-leaving"); }, 7000);
    setTimeout(function () { node.remove(); }, 7600);
  }

  function closed(live, reason) {
    if (live.viewing || reason === "moved") return;  // the space's page says it itself
    var title = "“" + live.title() + "”";
    if (reason === "ended") toast(title + " has ended.", "");
    else if (reason === "left") toast("You left " + title + ".", "");
    else toast("You're no longer in " + title + ".", live.status.text);
  }

  window.SpaceLive.listen(function (message, live) {
    if (message.type === "live.closed") closed(live, message.reason);
    if (live === window.SpaceLive.current() || message.type === "live.closed") render(window.SpaceLive.current());
  });

  tap.addEventListener("click", function () {
    var live = window.SpaceLive.current();
    if (live && live.audio) live.audio.resume();
  });

  mute.addEventListener("click", function () {
    var live = window.SpaceLive.current();
    if (live && live.state.you) live.send({ type: live.state.you.muted ? "unmute_self" : "mute_self" });
  });

  leave.addEventListener("click", function () {
    var live = window.SpaceLive.current();
    if (live) live.leave();
    var main = document.getElementById("main");
    if (main) main.focus({ preventScroll: true });  // the bar that held focus is gone
  });

  // Turbo moves the player into each new page; a browser may pause audio that was moved.
  document.addEventListener("turbo:load", function () {
    var live = window.SpaceLive.current();
    if (live && live.audio && !live.state.closed) live.audio.resume();
  });
})();
