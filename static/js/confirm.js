// Forms with a data-confirm question ask it before they are sent (no inline handlers: the
// Content-Security-Policy allows scripts from the site's files only).
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
