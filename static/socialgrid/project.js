// The live numbers of a project page and its picture.
//
// Listens to the project's WebSocket (data-socket-path) for
//   {"type": "stats", "online": n, "results_today": n, "batch": {"id", "done", "total"} | null}
// and, while the socket is unavailable, polls the same object from data-stats-url every 10 s
// (retrying the socket with a growing delay). Writes text with textContent only.

const POLL_MS = 10_000;
const RECONNECT_FIRST_MS = 5_000;
const RECONNECT_MAX_MS = 300_000;

const root = document.querySelector("[data-live-stats]");
if (root) {
  watch(root);
}

function watch(root) {
  const numbers = new Intl.NumberFormat(document.documentElement.lang || undefined);
  const picture = document.querySelector("img[data-live-image]");
  let pictureVersion = picture ? new URL(picture.src, location.href).searchParams.get("v") : null;
  let pollTimer = null;
  let reconnectTimer = null;
  let reconnectDelay = RECONNECT_FIRST_MS;

  function isCount(value) {
    return Number.isInteger(value) && value >= 0;
  }

  function setText(selector, text) {
    for (const el of root.querySelectorAll(selector)) {
      if (el.textContent !== text) el.textContent = text;
    }
  }

  function showBatch(batch) {
    const valid = batch && isCount(batch.id) && isCount(batch.done) && isCount(batch.total);
    for (const el of root.querySelectorAll("[data-batch]")) el.hidden = !valid;
    for (const el of root.querySelectorAll("[data-no-batch]")) el.hidden = Boolean(valid);
    if (!valid) return;
    setText('[data-stat="batch_done"]', numbers.format(batch.done));
    setText('[data-stat="batch_total"]', numbers.format(batch.total));
    for (const bar of root.querySelectorAll("progress[data-stat-progress]")) {
      bar.max = Math.max(batch.total, 1);
      bar.value = batch.done;
    }
    // The same batch in the "Work in progress" list, if it is there.
    const row = document.querySelector(`[data-batch-row="${batch.id}"]`);
    if (row) {
      for (const el of row.querySelectorAll("[data-row-done]")) {
        const text = numbers.format(batch.done);
        if (el.textContent !== text) el.textContent = text;
      }
      for (const bar of row.querySelectorAll("progress")) bar.value = batch.done;
    }
    refreshPicture(`${batch.id}-${batch.done}`);
  }

  function refreshPicture(version) {
    if (!picture || version === pictureVersion) return;
    pictureVersion = version;
    const url = new URL(picture.dataset.src, location.href);
    url.searchParams.set("v", version);
    // Load it off-screen first, so the old picture stays until the new one is ready.
    const next = new Image();
    next.addEventListener("load", () => {
      if (pictureVersion === version) picture.src = next.src;
    });
    next.src = url.href;
  }

  function show(stats) {
    if (!stats || typeof stats !== "object") return;
    if (isCount(stats.online)) setText('[data-stat="online"]', numbers.format(stats.online));
    if (isCount(stats.results_today)) {
      setText('[data-stat="results_today"]', numbers.format(stats.results_today));
    }
    if ("batch" in stats) showBatch(stats.batch);
  }

  async function poll() {
    if (document.hidden) return;
    try {
      const response = await fetch(root.dataset.statsUrl, {
        headers: { Accept: "application/json" },
        cache: "no-store",
      });
      if (response.ok) show(await response.json());
    } catch {
      // Offline for a moment: the next poll tries again.
    }
  }

  function note(text) {
    for (const el of root.querySelectorAll("[data-live-note]")) el.textContent = text;
  }

  function startPolling() {
    if (pollTimer !== null) return;
    note("Updated every 10 seconds.");
    poll();
    pollTimer = setInterval(poll, POLL_MS);
  }

  function stopPolling() {
    clearInterval(pollTimer);
    pollTimer = null;
  }

  function scheduleReconnect() {
    if (reconnectTimer !== null) return;
    const delay = reconnectDelay * (0.5 + Math.random());
    reconnectDelay = Math.min(reconnectDelay * 2, RECONNECT_MAX_MS);
    reconnectTimer = setTimeout(() => {
      reconnectTimer = null;
      connect();
    }, delay);
  }

  function connect() {
    const path = root.dataset.socketPath;
    if (!path || !("WebSocket" in window)) {
      startPolling();
      return;
    }
    let socket;
    try {
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      socket = new WebSocket(`${scheme}//${location.host}${path}`);
    } catch {
      startPolling();
      scheduleReconnect();
      return;
    }
    socket.addEventListener("open", () => {
      reconnectDelay = RECONNECT_FIRST_MS;
      stopPolling();
      note("Live: numbers change as results arrive.");
    });
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message && message.type === "stats") show(message);
    });
    // "error" is always followed by "close".
    socket.addEventListener("close", () => {
      startPolling();
      scheduleReconnect();
    });
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && pollTimer !== null) poll();
  });

  connect();
}
