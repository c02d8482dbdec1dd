// Times are sent in UTC; show them in the viewer's own time zone, on each page shown (pages.js).
(function () {
  "use strict";
  var format = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
  window.spacesPage(function () {
    document.querySelectorAll("time[data-local-time]").forEach(function (node) {
      var when = new Date(node.getAttribute("datetime"));
      if (!isNaN(when)) node.textContent = format.format(when);
    });
  });
})();
