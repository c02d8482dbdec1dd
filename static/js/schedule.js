// The host's schedule page: the new time is typed in the browser's zone, so send that zone's
// offset for the chosen date (confirm.js asks before cancelling).
(function () {
  "use strict";
  window.spacesPage(function () {
    var form = document.getElementById("reschedule-form");
    if (!form) return;
    form.addEventListener("submit", function () {
      var value = form.querySelector("input[name=scheduled_for]").value;
      var offset = form.querySelector("input[name=tz_offset]");
      var when = new Date(value);  // a datetime-local value is read as local time
      if (offset && !isNaN(when)) offset.value = String(when.getTimezoneOffset());
    });
  });
})();
