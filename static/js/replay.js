// An ended space's replay: the transcript follows the player (the line being said is highlighted),
// a click on a line plays from there, a clip starts where you are, and a play is counted once.
(function () {
  "use strict";
  window.spacesPage(function () {
    var parts = Array.prototype.slice.call(document.querySelectorAll(".replay-part"));
    if (!parts.length) return;
    var lines = Array.prototype.slice.call(document.querySelectorAll(".transcript-lines li[data-ms]"));

    function csrfToken() {
      var input = document.querySelector("input[name=csrfmiddlewaretoken]");
      return input ? input.value : "";
    }

    function partAt(ms) {
      // The part that holds this moment of the space (or the first one after it).
      for (var i = 0; i < parts.length; i++) {
        var offset = +parts[i].dataset.offsetMs, duration = +parts[i].dataset.durationMs;
        if (ms < offset + duration) return parts[i];
      }
      return parts[parts.length - 1];
    }

    function seek(ms) {
      var part = partAt(ms);
      var player = part.querySelector("audio");
      parts.forEach(function (p) { if (p !== part) p.querySelector("audio").pause(); });
      player.currentTime = Math.max(0, (ms - part.dataset.offsetMs) / 1000);
      var playing = player.play();
      if (playing && playing.catch) playing.catch(function () {});  // autoplay refused: the seek still holds
    }

    function highlight(spaceMs) {
      var current = null;
      lines.forEach(function (line) { if (+line.dataset.ms <= spaceMs) current = line; });
      lines.forEach(function (line) { line.classList.toggle("playing", line === current); });
    }

    parts.forEach(function (part) {
      var player = part.querySelector("audio");
      var counted = false;
      player.addEventListener("play", function () {
        if (counted) return;
        counted = true;
        fetch(part.dataset.playedUrl, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() } });
      });
      player.addEventListener("timeupdate", function () {
        highlight(+part.dataset.offsetMs + player.currentTime * 1000);
      });
      var here = part.querySelector(".clip-here");
      if (here) {
        here.addEventListener("click", function () {
          part.querySelector(".clip-start").value = player.currentTime.toFixed(1);
        });
      }
    });

    lines.forEach(function (line) {
      line.classList.add("seekable");
      line.addEventListener("click", function () { seek(+line.dataset.ms); });
    });
  });
})();
