// Follow buttons answer at once: the form posts to the API and the button and
// count change in place. Without JavaScript the form posts and the page reloads.
(function () {
  "use strict";

  function render(form, following) {
    var button = form.querySelector(".follow-button");
    form.dataset.following = following ? "true" : "false";
    button.textContent = following ? "Following" : "Follow";
    button.setAttribute("aria-pressed", following ? "true" : "false");
    button.classList.toggle("button-outline", following);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("follow-form")) return;
    event.preventDefault();
    var button = form.querySelector(".follow-button");
    var following = form.dataset.following === "true";
    button.disabled = true;
    window.spacesApi(form.dataset.api, following ? "DELETE" : "POST", form)
      .then(function (state) {
        render(form, state.following);
        var count = document.querySelector("[data-followers-count]");
        if (count && form.closest(".profile")) count.textContent = state.followers_count;
      })
      .catch(function (error) { window.alert(error.message); })
      .finally(function () { button.disabled = false; });
  });
})();
