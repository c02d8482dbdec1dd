// The start form: its button says what it will do, go live now or schedule for later.
(function () {
  "use strict";
  window.spacesPage(function () {
    var form = document.getElementById("space-new-form");
    if (!form) return;
    var when = form.querySelector("input[name=scheduled_for]");
    var submit = form.querySelector("button[type=submit]");
    if (!when || !submit) return;
    function label() {
      submit.textContent = when.value ? submit.dataset.scheduleLabel : submit.dataset.startLabel;
    }
    when.addEventListener("input", label);
    when.addEventListener("change", label);
    label();
  });
})();
