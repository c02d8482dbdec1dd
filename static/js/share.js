// "Copy link" buttons: the page's address to the clipboard (or the system's share sheet where there is one).
(function () {
  "use strict";
  window.spacesPage(function () {
    document.querySelectorAll("[data-share-url], #share[data-url]").forEach(function (button) {
      button.addEventListener("click", function () {
        var url = button.dataset.url || button.dataset.shareUrl;
        var label = button.textContent;
        function done(text) { button.textContent = text; setTimeout(function () { button.textContent = label; }, 2000); }
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(url).then(function () { done("Link copied"); }, function () { window.prompt("Copy this link:", url); });
        } else if (navigator.share) {
          navigator.share({ url: url }).catch(function () {});
        } else {
          window.prompt("Copy this link:", url);
        }
      });
    });
  });
})();
