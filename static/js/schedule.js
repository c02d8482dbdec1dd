// The host's schedule page: the new time is typed in the browser's zone, so send
// that zone's offset for the chosen date; ask before cancelling.
(function () {
  "use strict";
  var form = document.getElementById("reschedule-form");
  if (form) {
    form.addEventListener("submit", function () {
      var value = form.querySelector("input[name=scheduled_for]").value;
      var offset = form.querySelector("input[name=tz_offset]");
      var when = new Date(value);  // a datetime-local value is read as local time
      if (offset && !isNaN(when)) offset.value = String(when.getTimezoneOffset());
    });
  }
  document.querySelectorAll("form[data-confirm]").forEach(function (confirmForm) {
    confirmForm.addEventListener("submit", function (event) {
      if (!window.confirm(confirmForm.dataset.confirm)) event.preventDefault();
    });
  });
})();
