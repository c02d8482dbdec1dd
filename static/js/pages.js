// Pages under Turbo Drive (static/js/vendor/turbo.es2017-umd.js): a link to another page of the
// site swaps the <body> instead of loading a new document, so the minimised player (#player,
// data-turbo-permanent) and its space's socket and audio outlive the page. The site's scripts
// therefore run once per document, from <head>, and anything bound to a page's elements goes
// through spacesPage(setUp): setUp() runs for each page shown (the first one, then after each
// visit) and may return a function that is called before that page is replaced.
// Without JavaScript, or if Turbo didn't load, links and forms work as plain HTML.
(function () {
  "use strict";

  if (window.Turbo) {
    // Forms post as plain HTML, as before Turbo: Django answers an invalid form with 200 and a
    // valid one with 302, and some go to Stripe; a form opts in with data-turbo="true".
    window.Turbo.config.forms.mode = "optin";
  }

  var setUps = [];
  var teardowns = [];
  var shown = false;

  function run(setUp) {
    var teardown = setUp();
    if (typeof teardown === "function") teardowns.push(teardown);
  }

  function show() {
    if (shown) return;
    shown = true;
    setUps.forEach(run);
  }

  function hide() {
    if (!shown) return;
    shown = false;
    teardowns.splice(0).forEach(function (teardown) { teardown(); });
  }

  window.spacesPage = function (setUp) {
    setUps.push(setUp);
    if (shown) run(setUp);
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", show);
  else setTimeout(show);
  document.addEventListener("turbo:load", show);
  // Before a preview from the cache or the fetched page replaces this one.
  document.addEventListener("turbo:before-render", hide);
})();
