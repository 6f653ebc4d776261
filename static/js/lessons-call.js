// The in-call page of a lesson or meeting (templates/lessons/includes/call.html).
//
// Standard WebRTC only: getUserMedia for the camera and microphone,
// getDisplayMedia for the screen, and two RTCPeerConnections with the
// portal's media server — one that publishes (this page offers) and one that
// receives everyone else (the server offers). Signalling goes over the call's
// WebSocket, /ws/lessons/<occurrence>/ (docs/protocol.md, "Lesson call
// WebSocket"). Every text shown comes from #call-texts or from the server and
// is set with textContent, never as HTML.

const call = document.getElementById("call");
const room = document.getElementById("room");

const STATS_EVERY_MS = 5000;
// Below this estimate of what the page can send (the browser's bandwidth
// estimate of its publishing connection), in this many reports in a row,
// the page stops its camera and switches to audio only by itself.
const LOW_OUTGOING_BITRATE = 100000;
const LOW_OUTGOING_REPORTS = 2;
const PING_EVERY_MS = 25000;
// The microphone's sender is capped, whatever the media server's answer asks
// for (lessons/media/opus.py): a listener on "audio only" receives the sum
// of what the speakers send and must stay within 64 kbit/s.
const AUDIO_MAX_BITRATE = 24000;
const VIDEO_CONSTRAINTS = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24, max: 30 } };

const texts = {};
const byId = (id) => document.getElementById(id);

function t(key, values) {
  let text = texts[key] || key;
  for (const [name, value] of Object.entries(values || {})) {
    text = text.split("%(" + name + ")s").join(String(value));
  }
  return text;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function button(text, label, onClick, className) {
  const node = element("button", className || "link", text);
  node.type = "button";
  if (label) {
    node.setAttribute("aria-label", label);
  }
  node.addEventListener("click", onClick);
  return node;
}

const state = {
  socket: null,
  refs: 0,
  waiting: new Map(), // ref -> resolve of request()
  me: null,
  role: call ? call.dataset.role : null,
  callState: { is_safe_lesson: false, are_microphones_locked: false, floor: null },
  recording: null, // the recording under way: {id, active, started_at, finished_at}
  participants: new Map(), // participant id -> presence
  quality: new Map(), // participant id -> level
  sources: new Map(), // source id -> {peer, kind, mid (the publisher's)}
  remote: [], // the tracks of the latest offer: {mid, kind, source, peer, active}
  publish: null,
  subscribe: null,
  publishBusy: false,
  publishAgain: false,
  publishOffered: false,
  pendingCandidates: [],
  subscribeQueue: Promise.resolve(),
  microphone: null, // the local audio track
  camera: null, // the local video track
  screen: null, // the local screen track
  transceivers: { audio: null, video: null, screen: null },
  muted: new Set(["audio", "video"]),
  handRaised: false,
  audioOnly: false,
  cameraBeforeAudioOnly: false, // the camera was on when audio only began
  lowOutgoing: 0, // reports in a row with a very low outgoing estimate
  isLowOutgoingArmed: true, // not again after asking for video back, until the estimate was fine
  lastStats: null,
  timers: [],
  finished: false,
  guestToken: room ? room.dataset.guestToken || null : null,
};

// --- Status -------------------------------------------------------------------------------------------------------

function status(text) {
  byId("call-status").textContent = text;
}

function alertText(text) {
  const node = byId("call-alert");
  node.textContent = text;
  node.hidden = !text;
}

// --- The socket ---------------------------------------------------------------------------------------------------

function send(frame) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    state.socket.send(JSON.stringify(frame));
  }
}

// A frame with a fresh ref; resolves with the server's answer to it.
function request(frame) {
  state.refs += 1;
  const ref = "c" + state.refs;
  return new Promise((resolve) => {
    state.waiting.set(ref, resolve);
    send({ ...frame, ref });
  });
}

function connect(joinFrame) {
  const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(scheme + window.location.host + call.dataset.socketPath);
  state.socket = socket;
  socket.addEventListener("open", () => {
    document.body.dataset.callSocket = "open";
    status(t("joining"));
    send(joinFrame);
  });
  socket.addEventListener("message", (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch (error) {
      return;
    }
    handle(frame).catch((error) => console.warn("call frame failed", frame.type, error));
  });
  socket.addEventListener("close", (event) => {
    document.body.dataset.callSocket = "closed";
    if (!state.finished) {
      finish(t("closed"), true);
    }
    for (const resolve of state.waiting.values()) {
      resolve({ type: "error", code: "closed", detail: t("closed") });
    }
    state.waiting.clear();
  });
  state.timers.push(window.setInterval(() => send({ type: "ping" }), PING_EVERY_MS));
}

async function handle(frame) {
  if (frame.ref && state.waiting.has(frame.ref) && frame.type !== "joined" && frame.type !== "lobby") {
    const resolve = state.waiting.get(frame.ref);
    state.waiting.delete(frame.ref);
    resolve(frame);
    if (frame.type === "error") {
      alertText(frame.detail);
    }
    return;
  }
  switch (frame.type) {
    case "lobby":
      status(t("lobby"));
      break;
    case "joined":
      await joined(frame);
      break;
    case "offer":
      state.subscribeQueue = state.subscribeQueue.then(() => answerOffer(frame)).catch((error) => {
        console.warn("the receiving connection failed", error);
      });
      break;
    case "track.published":
      state.sources.set(frame.source, { peer: frame.peer, kind: frame.kind, mid: frame.mid });
      break;
    case "track.unpublished":
      state.sources.delete(frame.source);
      break;
    case "peer.left":
      break;
    case "call.presence":
      presence(frame);
      break;
    case "participant.removed":
      if (frame.participant) {
        state.participants.delete(frame.participant.id);
        render();
      }
      break;
    case "call.state":
      state.callState = frame.state;
      applyCallState();
      render();
      break;
    case "call.muted":
      if (state.me && frame.participants.includes(state.me.id)) {
        for (const kind of frame.kinds) {
          setLocalMuted(kind, true);
        }
        alertText(t("muted_by_host"));
      }
      break;
    case "call.message":
      showMessage(frame.message);
      break;
    case "call.recording":
      showRecording(frame.recording);
      break;
    case "audio_only":
      // The server switched this page to audio only: the connection is weak.
      await audioOnlyEnter();
      fallbackNotice(true);
      break;
    case "call.quality":
      state.quality.set(frame.participant, frame.level);
      render();
      break;
    case "lobby.changed":
      showLobby(frame.participants);
      break;
    case "removed":
    case "denied":
    case "ended":
    case "replaced":
      finish(frame.detail, false);
      break;
    case "media.lost":
      finish(frame.detail, true);
      break;
    case "left":
      finish(t("left"), true);
      break;
    case "error":
      alertText(frame.detail);
      if (frame.ref === "join") {
        finish(frame.detail, false);
      }
      break;
    default:
      break;
  }
}

// --- Joining ------------------------------------------------------------------------------------------------------

async function localMedia(withMicrophone, withCamera) {
  if (!withMicrophone && !withCamera) {
    return;
  }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    alertText(window.isSecureContext ? t("no_media") : t("insecure"));
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: withMicrophone ? { echoCancellation: true, noiseSuppression: true } : false,
      video: withCamera ? VIDEO_CONSTRAINTS : false,
    });
    state.microphone = stream.getAudioTracks()[0] || null;
    state.camera = stream.getVideoTracks()[0] || null;
  } catch (error) {
    alertText(t("no_media"));
  }
}

async function start(event) {
  event.preventDefault();
  byId("call-start").hidden = true;
  const withMicrophone = byId("start-microphone").checked;
  const withCamera = byId("start-camera").checked;
  state.audioOnly = byId("start-audio-only").checked;
  status(t("connecting"));
  await localMedia(withMicrophone, withCamera && !state.audioOnly);
  const muted = [];
  if (!state.microphone) {
    muted.push("audio");
  }
  if (!state.camera) {
    muted.push("video");
  }
  const frame = { type: "join", ref: "join", muted, audio_only: state.audioOnly };
  if (state.guestToken) {
    frame.link = state.guestToken;
  }
  connect(frame);
}

async function joined(frame) {
  state.me = frame.participant;
  state.callState = frame.state;
  state.audioOnly = frame.audio_only;
  state.muted = new Set(frame.muted);
  if (!state.microphone) {
    state.muted.add("audio");
  }
  if (!state.camera) {
    state.muted.add("video");
  }
  for (const track of frame.published) {
    state.sources.set(track.source, { peer: track.peer, kind: track.kind, mid: track.mid });
  }
  for (const item of frame.participants) {
    state.participants.set(item.id, item);
  }
  state.iceServers = frame.ice_servers;
  byId("call-main").hidden = false;
  status(t("in_call"));
  for (const message of frame.messages) {
    showMessage(message);
  }
  if (frame.lobby) {
    showLobby(frame.lobby);
  }
  showRecording(frame.recording);
  applyCallState();
  render();
  if (state.microphone || state.camera) {
    await publishStart();
  }
  // The server may have asked to start muted (a safe lesson).
  for (const kind of ["audio", "video"]) {
    setLocalMuted(kind, state.muted.has(kind));
  }
  state.timers.push(window.setInterval(() => reportStats().catch(() => {}), STATS_EVERY_MS));
}

function configuration() {
  return { iceServers: state.iceServers || [], bundlePolicy: "max-bundle" };
}

// A media connection that fails (the network went away, or the media
// server restarted) is not mended in place: the page offers to join again.
function watchConnection(connection) {
  connection.addEventListener("connectionstatechange", () => {
    if (connection.connectionState === "failed" && !state.finished) {
      send({ type: "leave" });
      finish(t("closed"), true);
    }
  });
}

// --- Publishing ---------------------------------------------------------------------------------------------------

function publishConnection() {
  if (state.publish) {
    return state.publish;
  }
  const connection = new RTCPeerConnection(configuration());
  connection.addEventListener("icecandidate", (event) => {
    const candidate = event.candidate ? event.candidate.toJSON() : null;
    if (state.publishOffered) {
      send({ type: "ice", target: "publish", candidate });
    } else {
      state.pendingCandidates.push(candidate);
    }
  });
  watchConnection(connection);
  state.publish = connection;
  return connection;
}

function audioSending() {
  return { direction: "sendonly", sendEncodings: [{ maxBitrate: AUDIO_MAX_BITRATE }] };
}

async function publishStart() {
  const connection = publishConnection();
  if (state.microphone) {
    state.transceivers.audio = connection.addTransceiver(state.microphone, audioSending());
  }
  if (state.camera) {
    state.transceivers.video = connection.addTransceiver(state.camera, { direction: "sendonly" });
  }
  await negotiate();
}

// Offers go one at a time: the next waits for the answer to the last.
async function negotiate() {
  if (state.publishBusy) {
    state.publishAgain = true;
    return;
  }
  state.publishBusy = true;
  try {
    do {
      state.publishAgain = false;
      const connection = publishConnection();
      await connection.setLocalDescription(await connection.createOffer());
      const answer = request({ type: "offer", offer: { type: "offer", sdp: connection.localDescription.sdp } });
      state.publishOffered = true;
      for (const candidate of state.pendingCandidates.splice(0)) {
        send({ type: "ice", target: "publish", candidate });
      }
      const reply = await answer;
      if (reply.type === "answer") {
        await connection.setRemoteDescription(reply.answer);
      } else if (connection.signalingState === "have-local-offer") {
        await connection.setLocalDescription({ type: "rollback" });
      }
    } while (state.publishAgain);
  } finally {
    state.publishBusy = false;
  }
}

// --- Receiving ----------------------------------------------------------------------------------------------------

function subscribeConnection() {
  if (state.subscribe) {
    return state.subscribe;
  }
  const connection = new RTCPeerConnection(configuration());
  connection.addEventListener("icecandidate", (event) => {
    send({ type: "ice", target: "subscribe", candidate: event.candidate ? event.candidate.toJSON() : null });
  });
  connection.addEventListener("track", () => attachRemote());
  watchConnection(connection);
  state.subscribe = connection;
  return connection;
}

async function answerOffer(frame) {
  const connection = subscribeConnection();
  state.remote = frame.tracks || [];
  await connection.setRemoteDescription(frame.offer);
  await connection.setLocalDescription(await connection.createAnswer());
  send({ type: "answer", revision: frame.revision, answer: { type: "answer", sdp: connection.localDescription.sdp } });
  attachRemote();
}

function isScreen(source, peer) {
  const info = state.sources.get(source);
  const id = participantIdOf(peer);
  const person = id !== null ? state.participants.get(id) : null;
  return Boolean(info && person && person.screen_mid && info.mid === person.screen_mid);
}

function participantIdOf(peer) {
  return typeof peer === "string" && peer.startsWith("p") ? Number(peer.slice(1)) : null;
}

// Put every received track where it belongs: a participant's tile, or the
// shared screen.
function attachRemote() {
  const connection = state.subscribe;
  if (!connection) {
    return;
  }
  const transceivers = new Map(connection.getTransceivers().map((item) => [item.mid, item]));
  let screenShown = false;
  for (const item of state.remote) {
    if (!item.active) {
      continue;
    }
    const transceiver = transceivers.get(item.mid);
    if (!transceiver) {
      continue;
    }
    const track = transceiver.receiver.track;
    let target = null;
    if (item.kind === "video" && isScreen(item.source, item.peer)) {
      target = byId("call-screen-video");
      const person = state.participants.get(participantIdOf(item.peer));
      byId("call-screen-name").textContent = t("sharing", { name: person ? person.display_name : "" });
      screenShown = true;
    } else {
      const tile = document.querySelector('.tile[data-peer="' + CSS.escape(item.peer) + '"]');
      target = tile ? tile.querySelector(item.kind === "video" ? "video" : "audio") : null;
    }
    if (target && (!target.srcObject || target.srcObject.getTracks()[0] !== track)) {
      target.srcObject = new MediaStream([track]);
      target.play().catch(() => {});
    }
  }
  byId("call-screen").hidden = !screenShown;
}

// --- Participants -------------------------------------------------------------------------------------------------

function presence(frame) {
  const person = frame.participant;
  if (frame.action === "left") {
    state.participants.delete(person.id);
  } else {
    state.participants.set(person.id, person);
  }
  render();
}

function sortedParticipants() {
  return [...state.participants.values()].sort((first, second) => {
    if ((first.role === "host") !== (second.role === "host")) {
      return first.role === "host" ? -1 : 1;
    }
    return first.joined_at < second.joined_at ? -1 : 1;
  });
}

function describe(person) {
  const parts = [];
  if (person.role === "host") {
    parts.push(t("role_host"));
  } else if (person.is_guest) {
    parts.push(t("role_guest"));
  }
  if (person.is_audio_muted) {
    parts.push(t("state_microphone_off"));
  }
  if (person.is_video_muted) {
    parts.push(t("state_camera_off"));
  }
  if (person.is_audio_only) {
    parts.push(t("state_audio_only"));
  }
  if (person.is_hand_raised) {
    parts.push(t("state_hand"));
  }
  if (state.callState.floor === person.id) {
    parts.push(t("state_floor"));
  }
  return parts.join(" · ");
}

function render() {
  renderTiles();
  renderPeople();
  attachRemote();
}

function renderTiles() {
  const list = byId("call-tiles");
  const wanted = sortedParticipants();
  const keep = new Set(wanted.map((person) => person.peer));
  for (const tile of [...list.children]) {
    if (!keep.has(tile.dataset.peer)) {
      tile.remove();
    }
  }
  wanted.forEach((person, index) => {
    let tile = list.querySelector('.tile[data-peer="' + CSS.escape(person.peer) + '"]');
    const isMe = state.me && person.id === state.me.id;
    if (!tile) {
      tile = element("li", "tile");
      tile.dataset.peer = person.peer;
      const video = element("video");
      video.autoplay = true;
      video.playsInline = true;
      video.muted = true;
      tile.append(video);
      if (!isMe) {
        const audio = element("audio");
        audio.autoplay = true;
        tile.append(audio);
      }
      tile.append(element("p", "tile-name"), element("p", "tile-state"), element("p", "tile-quality"));
    }
    if (list.children[index] !== tile) {
      list.insertBefore(tile, list.children[index] || null);
    }
    tile.querySelector(".tile-name").textContent = person.display_name + (isMe ? " " + t("you") : "");
    tile.querySelector(".tile-state").textContent = describe(person);
    const level = state.quality.get(person.id);
    tile.querySelector(".tile-quality").textContent = level ? t("quality_" + level) : "";
    tile.dataset.quality = level || "";
    tile.classList.toggle("has-hand", Boolean(person.is_hand_raised));
    tile.classList.toggle("has-floor", state.callState.floor === person.id);
    const video = tile.querySelector("video");
    if (isMe) {
      video.hidden = !state.camera || state.muted.has("video");
      if (state.camera && (!video.srcObject || video.srcObject.getTracks()[0] !== state.camera)) {
        video.srcObject = new MediaStream([state.camera]);
      }
    } else {
      video.hidden = Boolean(person.is_video_muted) || state.audioOnly;
    }
  });
}

function renderPeople() {
  const list = byId("call-people-list");
  list.replaceChildren();
  const people = sortedParticipants();
  byId("call-count").textContent = String(people.length);
  for (const person of people) {
    const isMe = state.me && person.id === state.me.id;
    const item = element("li");
    item.dataset.participant = String(person.id);
    item.append(element("strong", "", person.display_name + (isMe ? " " + t("you") : "")));
    const about = describe(person);
    if (about) {
      item.append(" ", element("span", "help", about));
    }
    if (state.role === "host" && !isMe && person.role !== "host") {
      const actions = element("span", "call-actions");
      const name = person.display_name;
      actions.append(
        button(t("mute"), t("mute_one", { name }), () => request({ type: "mute_participant", participant: person.id })),
      );
      if (state.callState.floor === person.id) {
        actions.append(
          button(t("floor_back"), t("floor_take", { name }), () => request({ type: "give_floor", participant: null })),
        );
      } else {
        actions.append(
          button(t("floor"), t("floor_give", { name }), () => request({ type: "give_floor", participant: person.id })),
        );
      }
      actions.append(
        button(
          t("remove"),
          t("remove_one", { name }),
          () => {
            if (window.confirm(t("confirm_remove", { name }))) {
              request({ type: "remove", participant: person.id });
            }
          },
          "link danger",
        ),
      );
      item.append(" ", actions);
    }
    list.append(item);
  }
}

function showLobby(people) {
  const list = byId("call-lobby-list");
  if (!list) {
    return;
  }
  list.replaceChildren();
  byId("call-lobby-count").textContent = String(people.length);
  byId("call-lobby-empty").hidden = people.length > 0;
  for (const person of people) {
    const item = element("li");
    item.dataset.participant = String(person.id);
    item.append(element("strong", "", person.display_name));
    if (person.is_guest) {
      item.append(" ", element("span", "badge", t("role_guest")));
    }
    const name = person.display_name;
    item.append(
      " ",
      button(t("admit"), t("admit_one", { name }), () => request({ type: "admit", participant: person.id, admit: true }), ""),
      " ",
      button(t("deny"), t("deny_one", { name }), () => request({ type: "admit", participant: person.id, admit: false })),
    );
    list.append(item);
  }
}

function showMessage(message) {
  const list = byId("call-messages");
  if (list.querySelector('[data-message="' + message.id + '"]')) {
    return;
  }
  const item = element("li", "msg");
  item.dataset.message = String(message.id);
  const meta = element("p", "meta");
  meta.append(element("strong", "author", message.author), " ");
  const time = element("time", "time", new Date(message.created_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
  time.dateTime = message.created_at;
  meta.append(time);
  item.append(meta, element("p", "body", message.body));
  if (state.me && message.participant === state.me.id) {
    item.classList.add("own");
  }
  list.append(item);
  item.scrollIntoView({ block: "nearest" });
}

// --- Your own switches --------------------------------------------------------------------------------------------

function maySpeak() {
  const current = state.callState;
  return state.role === "host" || !current.are_microphones_locked || (state.me && current.floor === state.me.id);
}

function setLocalMuted(kind, muted) {
  if (muted) {
    state.muted.add(kind);
  } else {
    state.muted.delete(kind);
  }
  const track = kind === "audio" ? state.microphone : state.camera;
  if (track) {
    track.enabled = !muted;
  }
  renderControls();
  renderTiles();
}

function renderControls() {
  const microphone = byId("toggle-microphone");
  microphone.textContent = state.muted.has("audio") ? t("microphone_on") : t("microphone_off");
  microphone.disabled = state.muted.has("audio") && !maySpeak();
  byId("toggle-camera").textContent = state.muted.has("video") ? t("camera_on") : t("camera_off");
  byId("toggle-screen").textContent = state.screen ? t("screen_off") : t("screen_on");
  byId("toggle-screen").hidden = !(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
  byId("toggle-hand").textContent = state.handRaised ? t("hand_down") : t("hand_up");
  byId("toggle-audio-only").textContent = state.audioOnly ? t("audio_only_off") : t("audio_only_on");
  const lock = byId("lock-microphones");
  if (lock) {
    lock.textContent = state.callState.are_microphones_locked ? t("lock_off") : t("lock_on");
    byId("safe-lesson").textContent = state.callState.is_safe_lesson ? t("safe_off") : t("safe_on");
  }
  const recording = byId("toggle-recording");
  if (recording) {
    recording.textContent = state.recording ? t("recording_stop") : t("recording_start");
  }
  const modes = [];
  if (state.callState.is_safe_lesson) {
    modes.push(t("mode_safe"));
  }
  if (state.callState.are_microphones_locked && state.role !== "host") {
    modes.push(state.me && state.callState.floor === state.me.id ? t("mode_floor") : t("mode_locked"));
  }
  if (state.audioOnly) {
    modes.push(t("mode_audio_only"));
  }
  byId("call-mode").textContent = modes.join(" ");
}

// The banner everyone sees while the meeting is recorded; when it stops it
// says so (a status region: screen readers announce both).
function showRecording(recording) {
  const banner = byId("call-recording");
  const wasActive = Boolean(state.recording && state.recording.active);
  state.recording = recording && recording.active ? recording : null;
  if (state.recording) {
    banner.textContent = t("recording_on");
    banner.dataset.recording = "on";
    banner.hidden = false;
  } else if (wasActive) {
    banner.textContent = t("recording_stopped");
    banner.dataset.recording = "off";
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
  renderControls();
}

function applyCallState() {
  if (!maySpeak() && !state.muted.has("audio")) {
    setLocalMuted("audio", true);
  }
  renderControls();
}

async function addLocalTrack(kind) {
  const constraints = kind === "audio" ? { audio: true } : { video: VIDEO_CONSTRAINTS };
  const stream = await navigator.mediaDevices.getUserMedia(constraints);
  const track = kind === "audio" ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
  if (kind === "audio") {
    state.microphone = track;
  } else {
    state.camera = track;
  }
  const transceiver = state.transceivers[kind];
  if (transceiver) {
    await transceiver.sender.replaceTrack(track);
  } else {
    state.transceivers[kind] = publishConnection().addTransceiver(
      track,
      kind === "audio" ? audioSending() : { direction: "sendonly" },
    );
    await negotiate();
  }
}

async function toggle(kind) {
  const muted = !state.muted.has(kind);
  if (!muted) {
    const answer = await request({ type: "mute", kind, muted: false });
    if (answer.type !== "ack") {
      return;
    }
    const track = kind === "audio" ? state.microphone : state.camera;
    if (!track || track.readyState === "ended") {
      try {
        await addLocalTrack(kind);
      } catch (error) {
        alertText(t("no_media"));
        await request({ type: "mute", kind, muted: true });
        return;
      }
    }
    alertText("");
    setLocalMuted(kind, false);
    return;
  }
  setLocalMuted(kind, true);
  if (kind === "video" && state.camera) {
    // The camera's light goes off too.
    state.camera.stop();
    if (state.transceivers.video) {
      await state.transceivers.video.sender.replaceTrack(null);
    }
  }
  await request({ type: "mute", kind, muted: true });
}

async function toggleScreen() {
  if (state.screen) {
    await stopScreen();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  } catch (error) {
    alertText(t("screen_failed"));
    return;
  }
  const track = stream.getVideoTracks()[0];
  state.screen = track;
  track.addEventListener("ended", () => stopScreen());
  let transceiver = state.transceivers.screen;
  if (transceiver) {
    await transceiver.sender.replaceTrack(track);
    transceiver.direction = "sendonly";
  } else {
    transceiver = publishConnection().addTransceiver(track, { direction: "sendonly" });
    state.transceivers.screen = transceiver;
  }
  renderControls();
  await negotiate();
  await request({ type: "screen", mid: transceiver.mid });
}

async function stopScreen() {
  if (!state.screen) {
    return;
  }
  state.screen.stop();
  state.screen = null;
  const transceiver = state.transceivers.screen;
  if (transceiver) {
    await transceiver.sender.replaceTrack(null);
    transceiver.direction = "inactive";
    await negotiate();
  }
  renderControls();
  await request({ type: "screen", mid: null });
}

async function toggleHand() {
  const answer = await request({ type: "hand", raised: !state.handRaised });
  if (answer.type === "ack") {
    state.handRaised = answer.raised;
    renderControls();
  }
}

async function toggleAudioOnly() {
  if (state.audioOnly) {
    await audioOnlyLeave();
    return;
  }
  const answer = await request({ type: "audio_only", enabled: true });
  if (answer.type === "ack") {
    await audioOnlyEnter();
  }
}

// Audio only: nothing but sound comes in (the server stops forwarding
// video), and the camera stops sending too, so that the page stays within
// what a weak connection carries (64 kbit/s both ways).
async function audioOnlyEnter() {
  state.audioOnly = true;
  if (state.camera && !state.muted.has("video")) {
    state.cameraBeforeAudioOnly = true;
    await toggle("video");
  }
  renderControls();
  renderTiles();
}

async function audioOnlyLeave() {
  const answer = await request({ type: "audio_only", enabled: false });
  if (answer.type !== "ack") {
    return;
  }
  state.audioOnly = false;
  state.lowOutgoing = 0;
  fallbackNotice(false);
  if (state.cameraBeforeAudioOnly) {
    state.cameraBeforeAudioOnly = false;
    if (state.muted.has("video")) {
      await toggle("video");
    }
  }
  renderControls();
  renderTiles();
}

function fallbackNotice(shown) {
  const notice = byId("call-fallback");
  byId("call-fallback-text").textContent = shown ? t("fallback") : "";
  notice.hidden = !shown;
}

// --- Connection quality ---------------------------------------------------------------------------------------------

async function reportStats() {
  let rtt = null;
  let lost = 0;
  let received = 0;
  let outgoing = null;
  for (const connection of [state.publish, state.subscribe]) {
    if (!connection) {
      continue;
    }
    const report = await connection.getStats();
    report.forEach((item) => {
      if (item.type === "candidate-pair" && item.nominated && item.currentRoundTripTime !== undefined) {
        rtt = Math.max(rtt || 0, item.currentRoundTripTime * 1000);
      }
      if (
        connection === state.publish &&
        item.type === "candidate-pair" &&
        item.nominated &&
        item.availableOutgoingBitrate !== undefined
      ) {
        outgoing = item.availableOutgoingBitrate;
      }
      if (item.type === "inbound-rtp") {
        lost += item.packetsLost || 0;
        received += item.packetsReceived || 0;
      }
    });
  }
  const previous = state.lastStats || { lost: 0, received: 0 };
  state.lastStats = { lost, received };
  const newLost = Math.max(0, lost - previous.lost);
  const newReceived = Math.max(0, received - previous.received);
  const loss = newLost + newReceived > 0 ? newLost / (newLost + newReceived) : 0;
  const frame = { type: "stats", loss: Math.min(1, loss) };
  if (rtt !== null) {
    frame.rtt_ms = Math.min(600000, Math.round(rtt));
  }
  send(frame);
  await outgoingCheck(outgoing);
}

// The browser's estimate of what it can send is too low for a camera: stop
// the camera and receive sound only, and say so. After the person asked for
// video back, only once the estimate was fine again.
async function outgoingCheck(outgoing) {
  const isSendingVideo = Boolean(state.camera) && !state.muted.has("video") && !state.audioOnly;
  if (outgoing === null || !isSendingVideo) {
    state.lowOutgoing = 0;
    return;
  }
  if (outgoing >= LOW_OUTGOING_BITRATE) {
    state.lowOutgoing = 0;
    state.isLowOutgoingArmed = true;
    return;
  }
  state.lowOutgoing += 1;
  if (state.lowOutgoing < LOW_OUTGOING_REPORTS || !state.isLowOutgoingArmed) {
    return;
  }
  state.lowOutgoing = 0;
  state.isLowOutgoingArmed = false;
  const answer = await request({ type: "audio_only", enabled: true });
  if (answer.type === "ack") {
    await audioOnlyEnter();
    fallbackNotice(true);
  }
}

// --- Leaving --------------------------------------------------------------------------------------------------------

function stopMedia() {
  for (const track of [state.microphone, state.camera, state.screen]) {
    if (track) {
      track.stop();
    }
  }
  for (const connection of [state.publish, state.subscribe]) {
    if (connection) {
      connection.close();
    }
  }
  state.publish = null;
  state.subscribe = null;
  for (const timer of state.timers) {
    window.clearInterval(timer);
  }
  state.timers = [];
}

function finish(text, mayComeBack) {
  state.finished = true;
  stopMedia();
  byId("call-main").hidden = true;
  byId("call-start").hidden = true;
  status(text);
  byId("call-again").hidden = false;
  byId("call-again-link").hidden = !mayComeBack;
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    state.socket.close();
  }
}

// The browser says the connection is slow, or that its user saves data:
// audio only is chosen for them before they join (they may untick it).
function isSlowConnection() {
  const connection = navigator.connection;
  return Boolean(connection && (connection.saveData || ["slow-2g", "2g", "3g"].includes(connection.effectiveType)));
}

// --- Start ----------------------------------------------------------------------------------------------------------

if (call) {
  for (const node of byId("call-texts").querySelectorAll("[data-text]")) {
    texts[node.dataset.text] = node.textContent;
  }
  byId("call-again-link").href = window.location.pathname;
  byId("call-back").href = call.dataset.backUrl;
  status(t("ready"));
  byId("call-start").hidden = false;
  if (isSlowConnection()) {
    byId("start-audio-only").checked = true;
    byId("start-slow").hidden = false;
  }
  byId("call-start").addEventListener("submit", (event) => {
    start(event).catch((error) => {
      console.warn("joining failed", error);
      finish(t("closed"), true);
    });
  });
  byId("toggle-microphone").addEventListener("click", () => toggle("audio"));
  byId("toggle-camera").addEventListener("click", () => toggle("video"));
  byId("toggle-screen").addEventListener("click", () => toggleScreen());
  byId("toggle-hand").addEventListener("click", () => toggleHand());
  byId("toggle-audio-only").addEventListener("click", () => toggleAudioOnly());
  byId("call-fallback-video").addEventListener("click", () => audioOnlyLeave());
  byId("call-leave").addEventListener("click", () => send({ type: "leave" }));
  byId("call-chat-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const field = byId("call-chat-body");
    const body = field.value.trim();
    if (!body) {
      return;
    }
    const answer = await request({ type: "chat", body, client_id: "m" + Date.now() + "-" + state.refs });
    if (answer.type === "ack") {
      field.value = "";
    }
  });
  if (byId("host-controls")) {
    byId("mute-all").addEventListener("click", () => request({ type: "mute_all" }));
    byId("lock-microphones").addEventListener("click", () =>
      request({ type: "lock_microphones", locked: !state.callState.are_microphones_locked }),
    );
    byId("safe-lesson").addEventListener("click", () =>
      request({ type: "safe_lesson", enabled: !state.callState.is_safe_lesson }),
    );
    if (byId("toggle-recording")) {
      byId("toggle-recording").addEventListener("click", async () => {
        const answer = await request({ type: "recording", active: !state.recording });
        if (answer.type === "ack" && answer.recording && answer.recording.active) {
          showRecording(answer.recording);
        }
      });
    }
    byId("end-call").addEventListener("click", () => {
      if (window.confirm(t("confirm_end"))) {
        request({ type: "end" });
      }
    });
  }
  renderControls();
  window.addEventListener("pagehide", () => send({ type: "leave" }));
}
