// Lessons pages work without this script; it only saves a click:
// - in the lobby (#room[data-status="waiting"]) it asks the join status
//   every few seconds and reloads the page once the host has decided;
// - on the host's meeting page (#lobby[data-lobby-url]) it reloads the page
//   when someone new is waiting.
const POLL_MS = 4000;

async function readJson(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) {
    return { failed: true, status: response.status };
  }
  return response.json();
}

function every(milliseconds, step) {
  let timer = null;
  const tick = async () => {
    if (document.visibilityState === "visible") {
      try {
        if (await step()) {
          return;
        }
      } catch (error) {
        // The network is away for a moment: try again at the next tick.
      }
    }
    timer = window.setTimeout(tick, milliseconds);
  };
  timer = window.setTimeout(tick, milliseconds);
  return () => window.clearTimeout(timer);
}

const room = document.getElementById("room");
if (room && room.dataset.status === "waiting" && room.dataset.statusUrl) {
  every(POLL_MS, async () => {
    const answer = await readJson(room.dataset.statusUrl);
    const status = answer.participant ? answer.participant.status : null;
    // Also when a host started or stopped recording: the page says so.
    const recordingChanged = Boolean(answer.is_being_recorded) !== (room.dataset.recording === "on");
    if (answer.failed || status !== "waiting" || recordingChanged) {
      window.location.reload();
      return true;
    }
    return false;
  });
}

const lobby = document.getElementById("lobby");
if (lobby && lobby.dataset.lobbyUrl) {
  const shown = Number(lobby.dataset.waiting || "0");
  every(POLL_MS + 1000, async () => {
    const answer = await readJson(lobby.dataset.lobbyUrl);
    if (!answer.failed && Array.isArray(answer.participants) && answer.participants.length !== shown) {
      window.location.reload();
      return true;
    }
    return false;
  });
}
