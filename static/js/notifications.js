// The bell and live notifications, and the reminder buttons.
// Signed-in pages open /ws/me/; each `notification` event adds one to the bell's
// count and shows a small toast (and joins the list on the notifications page).
// Reminder forms answer at once through the API; without JavaScript they post
// and the page reloads.
(function () {
  "use strict";

  // Reminder buttons ("Remind me" / "Reminder set").
  function renderReminder(form, reminded) {
    var button = form.querySelector(".reminder-button");
    form.dataset.reminded = reminded ? "true" : "false";
    form.action = reminded ? form.dataset.unsetUrl : form.dataset.setUrl;
    button.textContent = reminded ? "Reminder set" : "Remind me";
    button.setAttribute("aria-pressed", reminded ? "true" : "false");
    button.classList.toggle("button-outline", reminded);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("reminder-form")) return;
    event.preventDefault();
    var button = form.querySelector(".reminder-button");
    var reminded = form.dataset.reminded === "true";
    button.disabled = true;
    window.spacesApi(form.dataset.api, reminded ? "DELETE" : "POST", form)
      .then(function (state) { renderReminder(form, state.reminded); })
      .catch(function (error) { window.alert(error.message); })
      .finally(function () { button.disabled = false; });
  });

  // The bell. The socket stays open from page to page (Turbo, pages.js); the bell, the toasts
  // and the list are the page's own, so each event looks them up on the page shown now.
  if (!document.getElementById("notification-bell") || !("WebSocket" in window)) return;

  function bell() { return document.getElementById("notification-bell"); }

  function setCount(count) {
    var node = bell();
    if (!node) return;
    var countNode = node.querySelector("[data-unread-count]");
    count = Math.max(0, count);
    countNode.textContent = String(count);
    countNode.hidden = count === 0;
    node.setAttribute("aria-label", "Notifications: " + count + " unread");
  }

  function unread() {
    var node = bell();
    return node ? parseInt(node.querySelector("[data-unread-count]").textContent, 10) || 0 : 0;
  }

  function refreshCount() {
    var node = bell();
    if (!node) return;
    fetch(node.dataset.countApi, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) { if (body) setCount(body.unread); })
      .catch(function () { /* the next event or page load corrects the count */ });
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function showToast(notification) {
    var toasts = document.getElementById("toasts");
    if (!toasts) return;
    var toast = element("a", "toast", "");
    toast.href = notification.url || (bell() ? bell().dataset.listUrl : "/notifications/");
    toast.setAttribute("role", "status");
    toast.dataset.notification = notification.id;
    toast.appendChild(element("strong", "toast-title", notification.title));
    toast.appendChild(element("span", "toast-body", notification.body));
    toasts.appendChild(toast);
    window.setTimeout(function () { toast.classList.add("toast-leaving"); }, 7000);
    window.setTimeout(function () { toast.remove(); }, 7600);
  }

  function addToList(notification) {
    var list = document.getElementById("notification-list");
    if (!list) return;
    var empty = list.querySelector(".notifications-empty");
    if (empty) empty.remove();
    var item = element("li", "notification unread", "");
    item.dataset.notification = notification.id;
    var link = element("a", "", "");
    link.href = notification.url;
    link.appendChild(element("strong", "", notification.title));
    item.appendChild(link);
    item.appendChild(element("span", "", " " + notification.body));
    list.insertBefore(item, list.firstChild);
  }

  var retryMs = 1000;
  var connectedOnce = false;

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/ws/me/");
    var ping = null;
    socket.addEventListener("open", function () {
      retryMs = 1000;
      if (connectedOnce) refreshCount();  // missed events while away: the count, not the toasts
      connectedOnce = true;
      ping = window.setInterval(function () { socket.send(JSON.stringify({ type: "ping" })); }, 30000);
    });
    socket.addEventListener("message", function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (error) { return; }
      if (message.type !== "notification" || !message.notification) return;
      setCount(unread() + 1);
      showToast(message.notification);
      addToList(message.notification);
    });
    socket.addEventListener("close", function (event) {
      if (ping) window.clearInterval(ping);
      if (event.code === 4401 || event.code === 4403) return;  // signed out or banned: don't retry
      window.setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 30000);
    });
  }

  connect();
})();
