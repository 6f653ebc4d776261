/* Parta as an installable web app, on every page (templates/base.html):
   registers the service worker (templates/portal/sw.js) and shows browser
   notifications of new messages where the person allowed them. README:
   "Installing Parta on a phone, offline page and browser notifications".

   Notifications: static/js/chats.js, on the chat list, a chat or a channel,
   dispatches "parta:message" for every new message of the person's chats.
   One is shown while the tab is not in view and not for the person's own
   messages: the chat's title, then the author and the start of the text.
   In a child's account (safe mode: the script tag has data-private) it is
   only "New message" — no chat, no name, no text — since a phone's lock
   screen is seen by whoever holds it. Clicking it opens the chat. */
(() => {
  const script = document.currentScript;
  const worker = navigator.serviceWorker;
  const isSupported = "Notification" in window;
  // After the page has loaded: what the worker fetches once must not slow
  // down the first page on a slow connection.
  if (worker) addEventListener("load", () => worker.register("/sw.js").catch(() => {}));

  // The offline page comes back to the page asked for once the network does.
  if (document.querySelector("[data-offline]")) addEventListener("online", () => location.reload());

  document.addEventListener("parta:message", (event) => {
    const message = event.detail || {};
    if (!isSupported || Notification.permission !== "granted") return;
    if (message.isOwn || document.visibilityState === "visible") return;
    const chat = +message.chatId, url = "/chats/" + chat + "/";
    const generic = script.dataset.newMessage;
    const options = { tag: "parta-chat-" + chat, renotify: true, data: { url } };
    options.icon = new URL("../icons/icon-192.png", script.src).href;
    let title = generic;
    if (!script.hasAttribute("data-private")) {
      title = message.chatTitle || generic;
      const text = String(message.text || "");
      options.body = (message.author ? message.author + ": " : "") + (text.length > 100 ? text.slice(0, 99) + "…" : text);
    }
    show(title, options);
  });

  async function show(title, options) {
    // Through the worker where there is one: Android's Chrome has no `new Notification`.
    try {
      const registration = worker && (await worker.getRegistration());
      if (registration && registration.active) return await registration.showNotification(title, options);
    } catch {
      // Fall back to the page's own notification.
    }
    try {
      const note = new Notification(title, options);
      note.onclick = () => {
        note.close();
        focus();
        if (location.pathname !== options.data.url) location.assign(options.data.url);
      };
    } catch {
      // Not allowed here: nothing to show.
    }
  }

  // The profile's switch (templates/accounts/profile.html): hidden without JS.
  const box = document.querySelector("[data-browser-notifications]");
  if (!box) return;
  const button = box.querySelector("button");
  const update = () => {
    const state = isSupported ? Notification.permission : "unsupported";
    for (const text of box.querySelectorAll("[data-state]")) text.hidden = text.dataset.state !== state;
    button.hidden = state !== "default";
  };
  button.addEventListener("click", () => {
    // The click is the user gesture browsers require for the question.
    if (isSupported) Promise.resolve(Notification.requestPermission()).then(update, update);
  });
  update();
  box.hidden = false;
})();
