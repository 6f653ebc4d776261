/* Live chats over one WebSocket (/ws/, docs/protocol.md) on pages that work
   without JavaScript. The form is sent over the socket; if that fails it is
   posted as usual, and its client_id makes the two one message. */
const $ = (id) => document.getElementById(id);
const list = document.querySelector("[data-chats-list]"), log = $("messages"), data = log ? log.dataset : {};
const chatId = +data.chat || 0, isLive = data.live === "1", me = +data.user || 0, zone = data.timeZone || undefined;
const lang = document.documentElement.lang || "ru", form = $("send") instanceof HTMLFormElement ? $("send") : null;
const fields = form?.elements, pending = {}, typists = {};
let lastSeq = +data.lastSeq || 0, socket = null, attempts = 0, refs = 0, typedAt = 0, readTimer = 0;

function connect() {
  socket = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws/");
  socket.onopen = () => { attempts = 0; };
  socket.onmessage = (event) => {
    let frame;
    try { frame = JSON.parse(event.data); } catch { return; }
    if (frame && handlers[frame.type]) handlers[frame.type](frame);
  };
  socket.onclose = (event) => {
    socket = null;
    delete document.body.dataset.socket;
    Object.keys(pending).forEach(fallback);
    if (event.code === 4001) return; // signed out
    // 1 s doubling to 30 s, jittered: a restarted server is not hit by all at once.
    setTimeout(connect, Math.min(30000, 1000 * 2 ** attempts++) * (0.5 + Math.random() / 2));
  };
}

function send(frame) {
  if (!socket || socket.readyState !== 1) return false;
  socket.send(JSON.stringify(frame));
  return true;
}

const sync = () => isLive && send({ type: "sync", chats: { [chatId]: lastSeq } });

function settle(ref) {
  const had = ref in pending;
  clearTimeout(pending[ref]);
  delete pending[ref];
  return had;
}

const element = (tag, name = "") => Object.assign(document.createElement(tag), { className: name });

const handlers = {
  hello(frame) {
    document.body.dataset.socket = "open";
    if (log) return sync(); // all missed since the page was made
    for (const chat of frame.chats || []) {
      const item = listItem(chat.chat), seen = item && +item.dataset.lastSeq;
      if (item && chat.last_seq > seen) {
        unread(item, chat.last_seq - seen, true);
        item.dataset.lastSeq = chat.last_seq;
      }
    }
  },
  message(frame) { (list ? listMessage : onMessage)(frame.message || {}); },
  "message.updated"(frame) {
    const message = frame.message || {}, item = ours(message.chat, message.seq);
    if (item) fill(item, message);
  },
  "message.deleted"(frame) {
    const item = ours(frame.chat, frame.seq);
    if (item) fill(item, { is_deleted: true });
  },
  resync(frame) { if (frame.chat === chatId && isLive) location.reload(); }, // missed too much
  ack(frame) {
    if (!settle(frame.ref)) return;
    formReset();
    if (frame.status === "scheduled") note(text(data.tScheduled, when(frame.deliver_at, true)));
    // The message follows as an event; if that is lost, catch up.
    else setTimeout(() => { if (lastSeq < frame.seq) sync(); }, 2000);
  },
  error(frame) {
    if (!settle(frame.ref)) return;
    busy(false);
    note(frame.detail);
  },
  typing({ chat, user }) {
    if (chat !== chatId || !user || user.id === me) return;
    clearTimeout(typists[user.id]?.timer);
    typists[user.id] = { name: user.display_name, timer: setTimeout(() => typing(user), 5000) };
    typing();
  },
  "chat.read"(frame) { // read on another device
    const item = listItem(frame.chat);
    if (item) unread(item, Math.max(0, item.dataset.lastSeq - frame.seq));
  },
};

// The chat list

const listItem = (id) => list && list.querySelector(`[data-chat="${+id}"]`);

function unread(item, count, isAdded) {
  const badge = item.querySelector("[data-unread]"), number = badge && badge.querySelector("[data-count]");
  if (!number) return;
  count += isAdded ? +number.textContent : 0;
  number.textContent = count;
  badge.classList.toggle("is-empty", count <= 0);
}

function listMessage(message) {
  const item = listItem(message.chat);
  if (!item || message.seq <= +item.dataset.lastSeq) return;
  item.dataset.lastSeq = message.seq;
  if (!message.author || message.author.id !== me) unread(item, 1, true);
  const preview = item.querySelector("[data-preview]"), author = message.author ? message.author.display_name + ": " : "";
  if (preview) preview.textContent = ` · ${author}${message.body.slice(0, 120)} · ${when(message.created_at)}`;
  item.parentNode.prepend(item);
}

// One chat

const ours = (chat, seq) => log && chat === chatId && $("m" + seq);

function onMessage(message) {
  const seq = message.seq;
  if (message.chat !== chatId || !isLive || seq <= lastSeq) return;
  if (seq > lastSeq + 1) return sync(); // a gap: catch up in order
  const item = $("message-template").content.firstElementChild.cloneNode(true);
  item.id = "m" + seq;
  item.dataset.seq = seq;
  if (message.author && message.author.id === me) item.classList.add("own");
  name(item.querySelector(".author"), message.author);
  const time = item.querySelector("time");
  time.dateTime = message.created_at;
  time.textContent = when(message.created_at);
  item.querySelector(".time").href = "#m" + seq;
  item.querySelector(".reply-link").href = `?reply=${seq}#send`;
  if (message.reply_to) {
    const quote = item.querySelector(".quote"), body = $("m" + message.reply_to)?.querySelector(".body");
    quote.hidden = false;
    quote.firstChild.href = "#m" + message.reply_to;
    quote.firstChild.textContent = body ? body.textContent.slice(0, 100) : data.tReplyTo;
  }
  fill(item, message);
  log.querySelector(".empty")?.remove();
  log.append(item);
  lastSeq = seq;
  log.dataset.lastSeq = seq;
  typing(message.author);
  readSoon();
}

// A name as {% user_name %} draws it (the cap and the look-alike warning come from the page).
function name(box, author) {
  if (!author) return (box.textContent = "Парта");
  const kind = author.is_verified_educator ? "[data-verified]" : author.is_name_flagged ? "[data-flagged]" : "";
  box.append(kind ? $("name-template").content.querySelector(kind).cloneNode(true) : element("span", "user-name"));
  box.querySelector(".user-name").textContent = author.display_name;
}

function fill(item, message) {
  const body = item.querySelector(".body"), gone = message.is_deleted;
  if (!body) return;
  for (const part of ["files", gone && "foot", gone && "quote", gone && "poll"]) {
    if (part) item.querySelector("." + part)?.remove();
  }
  body.textContent = gone ? data.tDeleted : "";
  body.classList.toggle("deleted", !!gone);
  if (gone) return;
  message.body.split("\n").forEach((line, index) => {
    if (index) body.append(element("br"));
    body.append(line);
  });
  let edited = item.querySelector(".edited");
  if (!edited && message.edited_at) {
    edited = item.querySelector(".meta").appendChild(element("span", "edited"));
    edited.textContent = data.tEdited;
  }
  if (edited) edited.hidden = !message.edited_at;
  if (!(message.attachments || []).length) return;
  const files = element("ul", "files");
  for (const file of message.attachments) {
    const link = files.appendChild(element("li")).appendChild(element("a"));
    link.href = file.url;
    if (file.thumbnail_url) {
      const image = link.appendChild(element("img"));
      image.src = file.thumbnail_url;
      image.alt = file.name;
    } else {
      link.textContent = file.name;
    }
  }
  body.after(files);
}

function when(iso, withDate) {
  const date = withDate && { day: "numeric", month: "long" };
  return new Date(iso).toLocaleString(lang, { timeZone: zone, hour: "2-digit", minute: "2-digit", ...date });
}

const text = (template, value) => (template || "").replace(/%\(\w+\)s/, value);

function readSoon() { // what is shown is read once someone looks
  clearTimeout(readTimer);
  readTimer = setTimeout(() => {
    const token = form && form.querySelector("[name=csrfmiddlewaretoken]");
    if (document.visibilityState !== "visible" || !token) return;
    const headers = { "Content-Type": "application/json", "X-CSRFToken": token.value };
    fetch(`/api/v1/chats/${chatId}/read/`, { method: "POST", headers, body: JSON.stringify({ seq: lastSeq }) })
      .catch(() => {});
  }, 1000);
}

function typing(stopped) {
  clearTimeout(typists[stopped?.id]?.timer);
  delete typists[stopped?.id];
  const names = Object.values(typists).map((typist) => typist.name).join(", ");
  if ($("typing")) $("typing").textContent = names && text(data.tTyping, names);
}

// The send form

const note = (message) => ($("send-error").textContent = message);

function busy(isBusy) { form.querySelector("button[type=submit]").disabled = isBusy; }

function formReset() {
  fields.body.value = fields.reply_to.value = "";
  // A new id for the next message, as the server gives each form.
  fields.client_id.value = crypto.randomUUID ? crypto.randomUUID().replace(/-/g, "") : `${Date.now()}${Math.random()}`;
  $("replying")?.remove();
  note("");
  busy(false);
  fields.body.focus();
}

function fallback(ref) {
  settle(ref);
  form.submit(); // the plain POST, with the same client_id
}

if (form && log && isLive) {
  form.addEventListener("submit", (event) => {
    const file = fields.attachment, body = fields.body.value;
    if ((file && file.files.length) || !body.trim() || !socket || socket.readyState !== 1) return;
    event.preventDefault();
    const ref = "s" + ++refs, frame = { type: "send", ref, chat: chatId, body, client_id: fields.client_id.value };
    if (fields.reply_to.value) frame.reply_to = +fields.reply_to.value;
    busy(true);
    pending[ref] = setTimeout(() => fallback(ref), 8000);
    if (!send(frame)) fallback(ref);
  });
  fields.body.addEventListener("input", () => {
    if (Date.now() - typedAt > 3000 && send({ type: "typing", chat: chatId })) typedAt = Date.now();
  });
  document.addEventListener("visibilitychange", readSoon);
}
if (list || log) connect();
