// One way for page scripts to call the JSON API: the form's CSRF token, the
// session cookie, and the API's {"code", "detail"} errors raised as Error(detail).
(function () {
  "use strict";

  window.spacesApi = function (url, method, form) {
    var input = form && form.querySelector("input[name=csrfmiddlewaretoken]");
    return fetch(url, {
      method: method,
      headers: { "X-CSRFToken": input ? input.value : "", "Accept": "application/json" },
      credentials: "same-origin",
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(body.detail || "Something went wrong.");
        return body;
      });
    });
  };
})();
