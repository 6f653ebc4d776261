/* Live chats over one WebSocket (/ws/, docs/protocol.md "Chat WebSocket") on
   pages that work without JavaScript: the chat list, a chat and a channel.

   The pages are made by the server; this script applies the socket's events
   to them with the server's own markup and wording: what it adds (a message,
   a poll, a post, a member) is copied from <template> prototypes the page
   renders with the same includes, and its texts come from the page's JSON
   ("chat-live"). Text from people is only ever set as text (textContent),
   never parsed as HTML.

   Forms still work as plain forms. With the socket open, the send form, the
   reactions, deleting and "I have read it" go over the socket; pins, polls,
   muting and announcement mode are posted in the background (fetch) and the
   page is changed by the event that follows, like everyone else's. */
const $ = (id) => document.getElementById(id);
const config = JSON.parse($("chat-live")?.textContent || "{}");
const texts = config.texts || {};
const placeholders = config.placeholders || {};
const isChannel = config.page === "channel";
const list = document.querySelector("[data-chats-list]");
const log = $("messages") || $("posts");
const data = log ? log.dataset : {};
const chatId = +data.chat || 0, me = +(log || list)?.dataset.user || 0;
const zone = data.timeZone || (list && list.dataset.timeZone) || undefined;
const lang = document.documentElement.lang || "ru";
const form = !isChannel && $("send") instanceof HTMLFormElement ? $("send") : null;
const fields = form?.elements, pending = {}, answers = {}, typists = {}, mutedTimers = {};
const titleBox = $("chat-title"), titleSuffix = titleBox ? document.title.slice(titleBox.textContent.length) : "";
let isLive = data.live === "1", lastSeq = +data.lastSeq || 0, membersCount = +config.membersCount || 0;
let socket = null, attempts = 0, refs = 0, typedAt = 0, readTimer = 0, isSyncing = false, wasOpen = false;
const posting = {
  announcement: !(document.querySelector("[data-announcement]")?.hidden ?? true),
  mutedUntil: config.mutedUntil ? Date.parse(config.mutedUntil) : 0,
};

function connect() {
  socket = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws/");
  socket.onopen = () => { attempts = 0; };
  socket.onmessage = (event) => {
    let frame;
    try { frame = JSON.parse(event.data); } catch { return; }
    if (frame && Object.hasOwn(handlers, frame.type)) handlers[frame.type](frame);
  };
  socket.onclose = (event) => {
    socket = null;
    isSyncing = false;
    delete document.body.dataset.socket;
    Object.keys(pending).forEach(fallback);
    Object.keys(answers).forEach((ref) => delete answers[ref]);
    if (event.code === 4001) return; // signed out
    // 1 s doubling to 30 s, jittered: a restarted server is not hit by all at once.
    setTimeout(connect, Math.min(30000, 1000 * 2 ** attempts++) * (0.5 + Math.random() / 2));
  };
}

const isOpen = () => socket && socket.readyState === 1;

function send(frame) {
  if (!isOpen()) return false;
  socket.send(JSON.stringify(frame));
  return true;
}

function sync() {
  if (!isLive || isSyncing) return;
  isSyncing = send({ type: "sync", chats: { [chatId]: lastSeq } });
}

// A frame whose ack or error is awaited: `done(ack)` or `refused(error)`.
function ask(frame, done, refused) {
  const ref = "a" + ++refs;
  answers[ref] = { done, refused };
  return send({ ...frame, ref });
}

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
    if (log) {
      // Catch-up brings the missed messages; what changed in the ones on
      // the page while the socket was away is reloaded over REST.
      if (wasOpen) refresh();
      wasOpen = true;
      return sync();
    }
    for (const chat of frame.chats || []) {
      const item = listItem(chat.chat), seen = item && +item.dataset.lastSeq;
      if (item && chat.last_seq > seen) {
        unread(item, chat.last_seq - seen, true);
        item.dataset.lastSeq = chat.last_seq;
      }
    }
  },
  message(frame) {
    (list ? listMessage : onMessage)(frame.message || {});
    announce(frame.message || {});
  },
  "message.updated"(frame) {
    const message = frame.message || {};
    if (list) return listPreview(message.chat, message.seq, message);
    const item = ours(message.chat, message.seq);
    if (item) fill(item, message);
    if (message.chat === chatId) echoes(message.seq, message);
  },
  "message.deleted"(frame) {
    if (list) return listPreview(frame.chat, frame.seq, { is_deleted: true });
    const item = ours(frame.chat, frame.seq);
    if (item) erase(item);
    if (frame.chat === chatId) echoes(frame.seq, { is_deleted: true });
  },
  "message.reactions"(frame) {
    const item = ours(frame.chat, frame.seq);
    if (item) reactions(item, frame.reactions || {});
  },
  "pin.added"(frame) { if (frame.chat === chatId && !isChannel) pinned(frame.seq, frame.message); },
  "pin.removed"(frame) { if (frame.chat === chatId && !isChannel) pinned(frame.seq, null); },
  "poll.updated"(frame) {
    const item = ours(frame.chat, frame.seq);
    if (item && frame.poll) poll(item, frame.poll);
  },
  "member.added"(frame) { if (frame.chat === chatId) memberAdded(frame.user || {}); },
  "member.removed"(frame) { if (frame.chat === chatId) memberRemoved(frame.user); },
  "member.muted"(frame) { if (frame.chat === chatId) memberMuted(frame.user, frame.muted_until); },
  "chat.updated"(frame) { (list ? listChatUpdated : chatUpdated)(frame); },
  "chat.archived"(frame) { left(frame.chat, texts.archived); },
  "chat.left"(frame) { left(frame.chat, texts.left); },
  "chat.joined"(frame) { if (list) listChatJoined(frame.chat); },
  "bot.answer"(frame) { if (frame.chat === chatId && !isChannel) botAnswer(String(frame.text || "")); },
  "chat.seen"(frame) { if (frame.chat === chatId && !isChannel) seenSoon(); }, // someone read further
  "chat.read"(frame) { // read on another device
    const item = listItem(frame.chat);
    if (item) unread(item, Math.max(0, item.dataset.lastSeq - frame.seq));
  },
  synced(frame) { if (frame.chat === chatId) isSyncing = false; },
  resync(frame) { if (frame.chat === chatId && isLive) location.reload(); }, // missed too much
  ack(frame) {
    const answer = answers[frame.ref];
    if (answer) {
      delete answers[frame.ref];
      return answer.done(frame);
    }
    if (!settle(frame.ref)) return;
    formReset();
    if (frame.status === "scheduled") note(fmt(texts.scheduled, { when: when(frame.deliver_at, "j E, H:i") }));
    // The message follows as an event; if that is lost, catch up.
    else setTimeout(() => { if (lastSeq < frame.seq) sync(); }, 2000);
  },
  error(frame) {
    const answer = answers[frame.ref];
    if (answer) {
      delete answers[frame.ref];
      return answer.refused(frame);
    }
    if (!settle(frame.ref)) {
      // The catch-up of this chat was refused: the person is no longer in it.
      if (frame.code === "not_found" && frame.chat === chatId && frame.ref === null) left(chatId, texts.left);
      return;
    }
    busy(false);
    note(frame.detail);
  },
  typing({ chat, user }) {
    if (chat !== chatId || !user || user.id === me || !$("typing")) return;
    clearTimeout(typists[user.id]?.timer);
    typists[user.id] = { name: user.display_name, timer: setTimeout(() => typing(user), 5000) };
    typing();
  },
};

// --- Texts, times and names as the server writes them -----------------------------------------------------

// "%(name)s" placeholders of the server's messages.
const fmt = (template, values) => (template || "").replace(/%\((\w+)\)s/g, (all, key) => (key in values ? values[key] : all));

// Django's truncatechars: at most `length` characters, the last one "…".
const truncate = (text, length) => (text.length > length ? text.slice(0, length - 1) + "…" : text);

// A time in the page's time zone, in the server's formats ("H:i", "j E Y, H:i", …).
function when(iso, pattern) {
  const parts = {};
  const options = { timeZone: zone, day: "numeric", month: "long", year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  for (const part of new Intl.DateTimeFormat(lang, options).formatToParts(new Date(iso))) parts[part.type] = part.value;
  const values = { j: parts.day, E: parts.month, Y: parts.year, H: parts.hour, i: parts.minute };
  return pattern.replace(/[jEYHi]/g, (letter) => values[letter]);
}

function stamp(time, iso, pattern) {
  time.dateTime = iso;
  time.textContent = when(iso, pattern);
}

// Django's filesizeformat.
function size(bytes) {
  const units = [["GB", 1024 ** 3], ["MB", 1024 ** 2], ["KB", 1024]];
  for (const [unit, scale] of units) {
    if (bytes >= scale) {
      const number = (bytes / scale).toLocaleString(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
      return fmt(texts.sizes?.[unit], { size: number });
    }
  }
  const forms = texts.sizes?.bytes || {};
  const form = forms[new Intl.PluralRules(lang).select(bytes)] || forms.other || "%(size)s";
  return fmt(form, { size: bytes });
}

// A name as {% user_name %} draws it (the cap and the look-alike warning come from the page).
function name(box, author) {
  box.textContent = "";
  if (!author) return (box.textContent = texts.parta || "Парта");
  const kind = author.is_verified_educator ? "[data-verified]" : author.is_name_flagged ? "[data-flagged]" : "";
  const sample = kind && $("name-template")?.content.querySelector(kind);
  box.append(sample ? sample.cloneNode(true) : element("span", "user-name"));
  box.querySelector(".user-name").textContent = author.display_name;
}

// A copy of a prototype with its placeholder ids replaced.
function copy(template, replacements) {
  const fragment = $(template).content.cloneNode(true);
  for (const node of fragment.querySelectorAll("*")) {
    for (const attribute of [...node.attributes]) {
      let value = attribute.value;
      for (const [placeholder, real] of replacements) value = value.replaceAll(String(placeholder), String(real));
      if (value !== attribute.value) node.setAttribute(attribute.name, value);
    }
  }
  const seq = replacements.find(([placeholder]) => placeholder === placeholders.seq)?.[1];
  if (seq !== undefined) fragment.querySelectorAll("[data-seq-text]").forEach((node) => (node.textContent = seq));
  return fragment;
}

const newClientId = () => (crypto.randomUUID ? crypto.randomUUID().replace(/-/g, "") : `${Date.now()}${Math.random()}`.replace(".", ""));

function csrfToken() {
  return document.querySelector("[name=csrfmiddlewaretoken]")?.value || "";
}

// --- The chat list ---------------------------------------------------------------------------------------

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
  listPreview(message.chat, message.seq, message, true);
  item.parentNode.prepend(item);
}

// Every new message of the person's chats as a DOM event, for the browser
// notifications of static/js/pwa.js (shown there while the tab is hidden).
function announce(message) {
  if (!message.chat || !message.author || message.is_deleted) return;
  const item = listItem(message.chat), link = item && item.querySelector(".chat-title");
  // A direct chat's title is the other person: the author of what arrives.
  const title = link ? (link.querySelector(".user-name") || link).textContent.trim()
    : message.chat === chatId ? (titleBox ? titleBox.textContent : message.author.display_name) : "";
  document.dispatchEvent(new CustomEvent("parta:message", { detail: {
    chatId: message.chat, chatTitle: title, author: message.author.display_name, text: message.body || "",
    isOwn: message.author.id === me,
  } }));
}

// The preview of a chat's newest message: " · Author: text · time".
function listPreview(chat, seq, message, isNew) {
  const item = listItem(chat), preview = item && item.querySelector("[data-preview]");
  if (!preview || (!isNew && +item.dataset.lastSeq !== seq)) return;
  if (message.is_deleted && !isNew) {
    const body = preview.querySelector("[data-preview-body]");
    if (body) body.textContent = texts.deleted;
    return;
  }
  preview.textContent = " · ";
  if (message.author) preview.append(Object.assign(element("span"), { textContent: message.author.display_name + ": " }));
  const body = preview.appendChild(element("span"));
  body.dataset.previewBody = "";
  body.textContent = message.is_deleted ? texts.deleted : truncate(message.body, 120);
  preview.append(" · ");
  stamp(preview.appendChild(element("time")), message.created_at, "j E H:i");
}

function listChatUpdated(frame) {
  const title = listItem(frame.chat)?.querySelector(".chat-title");
  if (title && "title" in frame && !title.querySelector(".user-name")) title.textContent = frame.title;
}

// A chat one was just added to: its entry, made from the REST API's chat.
async function listChatJoined(id) {
  if (listItem(id) || !$("chat-item-template")) return;
  let chat;
  try {
    const response = await fetch(`/api/v1/chats/${+id}/`, { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    chat = await response.json();
  } catch {
    return;
  }
  if (chat.kind === "channel" || listItem(id)) return; // channels have their own page
  const fragment = copy("chat-item-template", [[placeholders.chat, chat.id]]), item = fragment.firstElementChild;
  item.dataset.lastSeq = chat.last_seq;
  const title = item.querySelector(".chat-title");
  if (chat.other_user) name(title, chat.other_user);
  else title.textContent = chat.title;
  item.querySelector("[data-official]").hidden = !chat.is_verified;
  item.querySelector(".chat-kind").textContent = texts.kinds?.[chat.kind] || "";
  unread(item, Math.max(0, chat.last_seq - (chat.me?.last_read_seq || 0)));
  list.querySelector("[data-empty]")?.remove();
  list.prepend(item);
}

// --- One chat or channel ---------------------------------------------------------------------------------

const ours = (chat, seq) => log && chat === chatId && $((isChannel ? "p" : "m") + seq);

function onMessage(message) {
  const seq = message.seq;
  if (message.chat !== chatId || !isLive || seq <= lastSeq) return;
  if (seq > lastSeq + 1) return sync(); // a gap: catch up in order
  const item = isChannel ? newPost(message) : newMessage(message);
  log.querySelector(".empty")?.remove();
  if (!isChannel) newDay(message.created_at);
  log.append(item);
  lastSeq = seq;
  data.lastSeq = seq;
  if (!isChannel) typing(message.author);
  readSoon();
}

function newMessage(message) {
  const own = !!message.author && message.author.id === me;
  const item = copy(own ? "message-own" : "message-other", [[placeholders.seq, message.seq]]).querySelector("li");
  if (message.author) item.dataset.author = message.author.id;
  name(item.querySelector(".author"), message.author);
  stamp(item.querySelector("time"), message.created_at, "H:i");
  if (message.kind === "system") {
    item.classList.add("system");
    item.querySelector(".foot")?.remove();
  }
  if (message.reply_to && !message.is_deleted) item.querySelector(".meta").after(quote(message.reply_to));
  fill(item, message);
  if (message.reactions) reactions(item, message.reactions, message.my_reactions || []);
  if (message.poll) poll(item, message.poll);
  return item;
}

// The day's heading above the first message of a day.
function newDay(iso) {
  const times = log.querySelectorAll(".msg time"), previous = times[times.length - 1];
  const day = when(iso, "j E Y");
  if (previous && when(previous.dateTime, "j E Y") === day) return;
  const heading = element("li", "day");
  heading.dataset.day = new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date(iso));
  heading.textContent = day;
  log.append(heading);
}

// The quote of the message replied to, as the server draws it.
function quote(seq) {
  const box = copy("quote-template", []).firstElementChild, link = box.querySelector("a");
  const original = $("m" + seq), body = original?.querySelector(".body");
  box.dataset.replyTo = seq;
  link.href = "#m" + seq;
  if (!body) {
    link.textContent = texts.replyTo; // not on this page
    return box;
  }
  const author = original.querySelector(".author .user-name");
  if (author) box.querySelector("[data-quote-author]").textContent = author.textContent + ": ";
  box.querySelector("[data-quote-text]").textContent = body.classList.contains("deleted") ? texts.deleted : truncate(body.innerText.trim(), 100);
  return box;
}

// Where a changed message is repeated: quotes of replies to it and the pins.
function echoes(seq, message) {
  for (const text of document.querySelectorAll(`[data-reply-to="${+seq}"] [data-quote-text]`)) {
    text.textContent = message.is_deleted ? texts.deleted : truncate(message.body, 100);
  }
  const pin = $("pins")?.querySelector(`li[data-seq="${+seq}"]`);
  if (!pin) return;
  if (message.is_deleted) {
    pin.remove();
    pinsShown();
  } else {
    pin.firstElementChild.textContent = pinText(message);
  }
}

function setBody(body, text) {
  body.textContent = "";
  text.split(/\r\n|\r|\n/).forEach((line, index) => {
    if (index) body.append(element("br"));
    body.append(line);
  });
}

// A message's text, "(edited)" and files; a deleted one is erased.
function fill(item, message) {
  if (message.is_deleted) return erase(item);
  const body = item.querySelector(".body");
  if (!body || body.classList.contains("deleted")) return;
  // A poll's question stands as its text until the poll itself arrives.
  if (typeof message.body === "string") setBody(body, message.body);
  let edited = item.querySelector(".edited");
  if (!edited && message.edited_at) {
    edited = Object.assign(element("span", "edited"), { textContent: texts.edited });
    item.querySelector(".meta .time").after(" ", edited);
  }
  if (edited) edited.hidden = !message.edited_at;
  botButtons(item, message.buttons);
  if (!Array.isArray(message.attachments)) return;
  item.querySelector(".files")?.remove();
  if (!message.attachments.length) return;
  const files = element("ul", "files");
  for (const file of message.attachments) {
    const entry = files.appendChild(element("li")), link = entry.appendChild(element("a"));
    link.href = file.url;
    if (file.thumbnail_url) {
      const image = link.appendChild(element("img"));
      image.src = file.thumbnail_url;
      image.alt = file.name;
      image.loading = "lazy";
    } else {
      link.textContent = file.name;
      entry.append(" ", Object.assign(element("span", "help"), { textContent: size(file.size) }));
    }
  }
  body.after(files);
}

// A bot's inline buttons (docs/protocol.md "Bots in chats"): the same plain
// forms the server renders, one per row; a message without them has none.
function botButtons(item, rows) {
  item.querySelector(".bot-buttons")?.remove();
  const react = item.querySelector("form.reactions");
  if (!Array.isArray(rows) || !rows.length || !react) return;
  // ".../messages/<seq>/react/" → ".../messages/<seq>/button/" (the copy of a
  // <template> has no base URL of its own: resolve against the page's).
  const reactUrl = new URL(react.getAttribute("action"), location.href);
  const action = new URL("../button/", reactUrl).pathname, box = element("div", "bot-buttons");
  rows.forEach((row, rowIndex) => {
    const rowForm = Object.assign(element("form", "button-row"), { method: "post", action });
    rowForm.append(Object.assign(element("input"), { type: "hidden", name: "csrfmiddlewaretoken", value: csrfToken() }));
    row.forEach((button, column) => {
      const press = Object.assign(element("button"), { type: "submit", name: "button", value: `${rowIndex}:${column}` });
      press.textContent = button.text;
      rowForm.append(press);
    });
    box.append(rowForm);
  });
  item.querySelector(".body").after(box);
}

// A bot's answer to a button press, shown above the messages (as text).
function botAnswer(text) {
  let notice = $("bot-answer");
  if (!notice) {
    notice = Object.assign(element("p", "notice"), { id: "bot-answer" });
    notice.setAttribute("role", "status");
    log.before(notice);
  }
  notice.textContent = text;
}

// "Message deleted" in place of the text, with nothing to act on.
function erase(item) {
  let body = item.querySelector(".body");
  if (!body) {
    body = element("p", "body");
    (item.querySelector("form.poll") || item.querySelector(".meta")).after(body);
  }
  for (const part of [".files", ".foot", ".quote", "form.poll", "[data-poll-close]", ".edited", ".bot-buttons"]) {
    item.querySelectorAll(part).forEach((node) => node.remove());
  }
  body.className = "body deleted";
  body.textContent = texts.deleted;
}

// Reaction counts; `mine` (the person's own) when known, else as shown.
function reactions(item, counts, mine) {
  const box = item.querySelector("[data-reactions]");
  if (!box) return;
  const pressed = new Set(mine || [...box.querySelectorAll("button[aria-pressed=true]")].map((button) => button.value));
  box.querySelectorAll("button").forEach((button) => button.remove());
  for (const [emoji, count] of Object.entries(counts)) {
    if (!(count > 0)) continue;
    const button = box.appendChild(element("button"));
    button.name = "emoji";
    button.value = emoji;
    button.setAttribute("aria-pressed", String(pressed.has(emoji)));
    button.textContent = `${emoji} ${count}`;
  }
  box.hidden = !box.querySelector("button");
}

// A poll: drawn from the prototype the first time, then its counts and state.
function poll(item, state) {
  if (item.querySelector(".body.deleted") || !$("poll-template")) return;
  let form = item.querySelector("form.poll");
  if (!form) {
    const fragment = copy("poll-template", [[placeholders.seq, item.dataset.seq], [placeholders.poll, state.id]]);
    form = fragment.querySelector("form.poll");
    form.querySelector("legend").textContent = state.question;
    const prototype = form.querySelector("label.option");
    for (const option of state.options || []) {
      const label = prototype.cloneNode(true), input = label.querySelector("input");
      input.type = state.allows_multiple ? "checkbox" : "radio";
      input.value = option.id;
      input.nextSibling.textContent = ` ${option.text} `;
      prototype.before(label);
    }
    prototype.remove();
    if (+item.dataset.author !== me) fragment.querySelector("[data-poll-close]")?.remove();
    item.querySelector(".files")?.remove();
    item.querySelector(".body").replaceWith(fragment);
  }
  const mine = Array.isArray(state.my_votes) ? new Set(state.my_votes) : null;
  for (const option of state.options || []) {
    const input = form.querySelector(`input[value="${+option.id}"]`);
    if (!input) continue;
    input.parentNode.querySelector(".help").textContent = `— ${option.votes}`;
    input.disabled = !!state.is_closed;
    if (mine) input.checked = mine.has(option.id);
  }
  form.querySelector("[data-voted]").textContent = fmt(texts.voted, { count: state.voters_count });
  form.querySelector("[data-anonymous]").hidden = !state.is_anonymous;
  form.querySelector("[data-closed]").hidden = !state.is_closed;
  form.querySelector("[data-vote]").hidden = !!state.is_closed;
  if (state.is_closed) item.querySelector("[data-poll-close]")?.remove();
}

// --- Pins -------------------------------------------------------------------------------------------------

const pinText = (message) => (message.author ? message.author.display_name + ": " : "") + truncate(message.body || "", 120);

function pinsShown() {
  const section = $("pins");
  if (section) section.hidden = !section.querySelector("li");
}

// Pinned (with the message) or unpinned (null).
function pinned(seq, message) {
  const item = ours(chatId, seq);
  if (item) {
    item.querySelector("[data-pinned]").hidden = !message;
    const pin = item.querySelector("[data-pin]"), unpin = item.querySelector("[data-unpin]");
    if (pin && unpin) {
      pin.hidden = !!message;
      unpin.hidden = !message;
    }
  }
  const section = $("pins");
  if (!section) return;
  section.querySelector(`li[data-seq="${+seq}"]`)?.remove();
  if (message && !message.is_deleted) {
    const entry = element("li"), link = entry.appendChild(element("a"));
    entry.dataset.seq = seq;
    link.href = `${location.pathname}?before=${+seq + 1}#m${+seq}`;
    link.textContent = pinText(message);
    section.querySelector("ul").prepend(entry);
  }
  pinsShown();
}

// --- Members and settings -----------------------------------------------------------------------------------

const memberItem = (id) => $("member-list")?.querySelector(`li[data-user="${+id}"]`);

function membersCounted(change) {
  membersCount = Math.max(0, membersCount + change);
  const count = document.querySelector("[data-members-count]"), summary = document.querySelector("[data-members-summary]");
  if (count) count.textContent = fmt(texts.members, { count: membersCount });
  if (summary) summary.textContent = fmt(texts.membersSummary, { count: membersCount });
}

function memberAdded(user) {
  const members = $("member-list");
  if (!members || !user.id || memberItem(user.id)) return;
  const item = copy("member-template", [[placeholders.user, user.id]]).querySelector("li");
  name(item.querySelector("[data-name]"), user);
  item.querySelectorAll("[data-name-text]").forEach((node) => (node.textContent = user.display_name));
  members.append(item);
  membersCounted(1);
}

function memberRemoved(id) {
  const item = memberItem(id);
  if (!item) return;
  item.remove();
  membersCounted(-1);
}

function memberMuted(id, until) {
  const end = until ? Date.parse(until) : 0, badge = memberItem(id)?.querySelector("[data-muted]");
  const show = () => {
    if (badge) badge.hidden = !(end > Date.now());
    if (id === me) {
      posting.mutedUntil = end;
      postingChanged(true);
    }
  };
  clearTimeout(mutedTimers[id]);
  show();
  // The badge goes when the time is up (at most a week; timers hold ~24 days).
  if (end > Date.now()) mutedTimers[id] = setTimeout(show, Math.min(end - Date.now() + 1000, 2 ** 31 - 1));
}

function chatUpdated(frame) {
  if (frame.chat !== chatId) return;
  if ("title" in frame && titleBox) {
    titleBox.textContent = frame.title;
    document.title = frame.title + titleSuffix;
  }
  if (isChannel) return;
  if ("is_announcement_only" in frame) {
    const on = !!frame.is_announcement_only;
    const mark = document.querySelector("[data-announcement]"), toggle = document.querySelector("[data-announcement-form]");
    if (mark) mark.hidden = !on;
    if (toggle) {
      toggle.querySelector("[value='0']").hidden = !on;
      toggle.querySelector("[value='1']").hidden = on;
    }
    posting.announcement = on;
    postingChanged(true);
  }
  if ("opens_at" in frame || "closes_at" in frame) {
    const hours = document.querySelector("[data-hours]");
    if (hours && frame.opens_at && frame.closes_at) {
      hours.textContent = " · " + fmt(texts.hours, { opens: frame.opens_at, closes: frame.closes_at });
      hours.hidden = false;
    } else if (hours) {
      hours.hidden = true;
    }
  }
}

// Posting refused or allowed again (announcement mode, muting): the form is
// hidden behind the server's own refusal, or shown again. A page made
// without the form is made again by the server, which checks every rule.
function postingChanged(isEvent) {
  const refusal = !config.isStaff && posting.announcement ? texts.announcementOnly : posting.mutedUntil > Date.now() ? texts.muted : "";
  const notice = $("posting-refusal");
  if (!form || !form.isConnected) {
    const wasRefusedSo = config.postingRefusal === "announcement_only" || config.postingRefusal === "muted";
    if (!refusal && isEvent && wasRefusedSo && isLive) location.reload();
    return;
  }
  if (refusal) {
    const box = notice || form.parentNode.insertBefore(Object.assign(element("p", "notice"), { id: "posting-refusal" }), form);
    box.textContent = refusal;
  } else {
    notice?.remove();
  }
  form.hidden = !!refusal;
}

// The chat was closed, or the person is no longer in it.
function left(id, text) {
  if (list) return listItem(id)?.remove();
  if (id !== chatId || !log) return;
  isLive = false;
  const notice = $("chat-gone");
  if (notice) {
    notice.textContent = text;
    notice.hidden = false;
  }
  for (const box of [form, $("post"), $("posting-refusal")]) if (box) box.hidden = true;
  Object.values(typists).forEach((typist) => clearTimeout(typist.timer));
  Object.keys(typists).forEach((id) => delete typists[id]);
  typing();
}

// --- A channel's posts -------------------------------------------------------------------------------------

function newPost(message) {
  const item = copy("post-template", [[placeholders.seq, message.seq]]).querySelector("li");
  if (message.author) item.dataset.author = message.author.id;
  name(item.querySelector(".author"), message.author);
  stamp(item.querySelector("time"), message.created_at, "j E Y, H:i");
  if (!message.requires_acknowledgement) {
    item.querySelectorAll("[data-acknowledge], [data-asks-acknowledgement], [data-summary-acknowledged]").forEach((node) => node.remove());
  }
  const reply = item.querySelector("[data-private-reply]");
  if (reply && !(message.author && message.author.id !== me && (config.repliable || []).includes(message.author.id))) reply.remove();
  else if (reply) reply.querySelector("[name=client_id]").value = newClientId();
  fill(item, message);
  return item;
}

// --- Refresh after a reconnect --------------------------------------------------------------------------------

async function refresh() {
  const first = log.querySelector("[data-seq]");
  if (!first) return;
  try {
    const headers = { Accept: "application/json" };
    const response = await fetch(`/api/v1/chats/${chatId}/messages/?after=${first.dataset.seq - 1}&limit=100`, { headers });
    if (!response.ok) return;
    for (const message of (await response.json()).messages || []) {
      const item = ours(message.chat, message.seq);
      if (!item) continue;
      fill(item, message);
      if (message.is_deleted) continue;
      if (message.reactions) reactions(item, message.reactions, message.my_reactions || []);
      if (message.poll) poll(item, message.poll);
    }
    if (isChannel) return;
    const detail = await (await fetch(`/api/v1/chats/${chatId}/`, { headers })).json();
    chatUpdated({ chat: chatId, title: detail.title, is_announcement_only: detail.is_announcement_only, opens_at: detail.opens_at, closes_at: detail.closes_at });
    const pins = $("pins")?.querySelector("ul");
    if (pins) {
      pins.textContent = "";
      log.querySelectorAll("[data-pinned]").forEach((badge) => pinned(badge.closest("[data-seq]").dataset.seq, null));
      for (const pin of [...(detail.pins || [])].reverse()) {
        if (pin.body_preview) pinned(pin.seq, { author: pin.author, body: pin.body_preview });
      }
    }
    membersCounted(detail.members_count - membersCount);
  } catch {
    // The next event or reconnect tries again.
  }
}

// --- "Seen by N of M" ----------------------------------------------------------------------------------------

let seenTimer = null;

function seenSoon() { // many members read at once: one request for all of them
  clearTimeout(seenTimer);
  seenTimer = setTimeout(async () => {
    const items = [...log.querySelectorAll("[data-seq]")].filter((item) => item.querySelector(".foot")).slice(-100);
    if (!items.length) return;
    try {
      const seqs = items.map((item) => item.dataset.seq).join(",");
      const response = await fetch(`/api/v1/chats/${chatId}/receipts/?seqs=${seqs}`, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      for (const receipt of await response.json()) {
        const item = ours(chatId, receipt.seq);
        const foot = item && item.querySelector(".foot");
        if (!foot || !receipt.seen_by) continue;
        let seen = foot.querySelector(".seen");
        if (!seen) {
          seen = document.createElement("span");
          seen.className = "help seen";
          foot.insertBefore(seen, foot.querySelector(".reply-link"));
        }
        seen.textContent = fmt(texts.seen, { seen: receipt.seen_by, total: receipt.of_members });
      }
    } catch {
      // The next "chat.seen" tries again.
    }
  }, 1500);
}

// --- Reading, typing and notes ----------------------------------------------------------------------------

function readSoon() { // what is shown is read once someone looks
  clearTimeout(readTimer);
  readTimer = setTimeout(() => {
    const token = csrfToken();
    if (document.visibilityState !== "visible" || !token || !isLive || !lastSeq) return;
    const headers = { "Content-Type": "application/json", "X-CSRFToken": token };
    fetch(`/api/v1/chats/${chatId}/read/`, { method: "POST", headers, body: JSON.stringify({ seq: lastSeq }) })
      .catch(() => {});
  }, 1000);
}

function typing(stopped) {
  clearTimeout(typists[stopped?.id]?.timer);
  delete typists[stopped?.id];
  const names = Object.values(typists).map((typist) => typist.name).join(", ");
  if ($("typing")) $("typing").textContent = names && fmt(texts.typing, { name: names });
}

const note = (message) => ($("send-error").textContent = message);

const actionNote = (message) => { if ($("action-error")) $("action-error").textContent = message || ""; };

// --- The send form ----------------------------------------------------------------------------------------

function busy(isBusy) { form.querySelector("button[type=submit]").disabled = isBusy; }

function formReset() {
  fields.body.value = fields.reply_to.value = "";
  // A new id for the next message, as the server gives each form.
  fields.client_id.value = newClientId();
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
    if ((file && file.files.length) || !body.trim() || !isOpen()) return;
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
}

// --- Actions on messages: over the socket, in the background, or plainly ------------------------------------

function onAction(event) {
  const target = event.target, submitter = event.submitter;
  if (!(target instanceof HTMLFormElement) || target.dataset.plain) return;
  if (!log.contains(target) && !target.matches("[data-fetch]")) return;
  const item = target.closest("[data-seq]"), seq = item && +item.dataset.seq;
  const refused = (error) => actionNote(error.detail);
  const menu = target.closest("details.actions");
  if (target.matches(".reactions") && submitter?.value && isOpen()) {
    event.preventDefault();
    const emoji = submitter.value;
    ask({ type: "react", chat: chatId, seq, emoji }, (ack) => {
      actionNote("");
      const mine = new Set([...item.querySelectorAll("[data-reactions] button[aria-pressed=true]")].map((button) => button.value));
      if (ack.added) mine.add(emoji);
      else mine.delete(emoji);
      reactions(item, ack.reactions || {}, [...mine]);
    }, refused);
  } else if (target.matches("[data-delete]") && isOpen()) {
    event.preventDefault();
    ask({ type: "delete", chat: chatId, seq }, () => actionNote(""), refused);
  } else if (target.matches("[data-acknowledge]") && isOpen()) {
    event.preventDefault();
    ask({ type: "acknowledge", chat: chatId, seq }, () => {
      actionNote("");
      const badge = Object.assign(element("span", "badge"), { textContent: texts.confirmed });
      badge.setAttribute("role", "status");
      badge.dataset.acknowledged = "";
      target.replaceWith(badge);
    }, refused);
  } else if (target.matches("[data-fetch]")) {
    event.preventDefault();
    const body = new FormData(target);
    if (submitter?.name) body.append(submitter.name, submitter.value);
    const again = () => {
      target.dataset.plain = "1";
      target.requestSubmit(submitter || undefined);
    };
    // getAttribute: a control named "action" (the unpin button) shadows form.action.
    fetch(target.getAttribute("action"), { method: "POST", body, headers: { Accept: "application/json" } })
      .then(async (response) => {
        if (response.ok) return actionNote("");
        const answer = await response.json().catch(() => null);
        if (!answer) return again(); // not the JSON answer: let the page do it
        actionNote(answer.detail);
      })
      .catch(again);
  } else {
    return;
  }
  menu?.removeAttribute("open"); // done with the message's menu
}

if (log) {
  document.addEventListener("submit", onAction);
  document.addEventListener("visibilitychange", readSoon);
}
if (list || log) connect();
