// Live arrival of feed items on the first page of /feed/.
//
// Listens to /ws/feed/ (data-socket-path) for
//   {"type": "item", "item": {"id", "verb", "text", "parts": [{"text", "href"}], "created_at"}}
// and puts each new item at the top of the list. Server data is only ever written with
// textContent (links get an href only when it is a path on this site), never as HTML.
// Reconnects with a growing delay; a 4001 close (signed out) ends the live updates.

const RECONNECT_FIRST_MS = 3_000;
const RECONNECT_MAX_MS = 300_000;
const UNAUTHENTICATED = 4001;
const RELATIVE_EVERY_MS = 60_000;

const root = document.querySelector("[data-feed][data-socket-path]");
if (root && "WebSocket" in window) {
  listen(root);
}

function sitePath(href) {
  return typeof href === "string" && href.startsWith("/") && !href.startsWith("//") ? href : "";
}

function relativeTime(date, format) {
  const seconds = Math.round((date.getTime() - Date.now()) / 1000);
  if (seconds > -45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes > -60) return format.format(minutes, "minute");
  const hours = Math.round(minutes / 60);
  if (hours > -24) return format.format(hours, "hour");
  return format.format(Math.round(hours / 24), "day");
}

function buildItem(item, format) {
  const li = document.createElement("li");
  const verb = /^[a-z_]+$/.test(item.verb) ? item.verb : "other";
  li.className = `feed-item feed-${verb} feed-item-new`;
  li.id = `feed-item-${item.id}`;
  li.dataset.itemId = String(item.id);

  const sentence = document.createElement("p");
  sentence.className = "feed-sentence";
  for (const part of Array.isArray(item.parts) ? item.parts : []) {
    const text = typeof part?.text === "string" ? part.text : "";
    const href = sitePath(part?.href);
    if (href) {
      const link = document.createElement("a");
      link.href = href;
      link.textContent = text;
      sentence.append(link);
    } else {
      sentence.append(document.createTextNode(text));
    }
  }

  const time = document.createElement("time");
  time.className = "feed-time";
  const created = new Date(item.created_at);
  if (!Number.isNaN(created.getTime())) {
    time.dateTime = item.created_at;
    time.title = created.toLocaleString();
    time.dataset.live = "";
    time.textContent = relativeTime(created, format);
  }
  li.append(sentence, time);
  return li;
}

function listen(root) {
  const list = root.querySelector("[data-feed-list]");
  const empty = root.querySelector("[data-feed-empty]");
  const status = root.querySelector("[data-feed-status]");
  const format = new Intl.RelativeTimeFormat(document.documentElement.lang || undefined, {
    numeric: "auto",
  });
  let reconnectDelay = RECONNECT_FIRST_MS;
  let reconnectTimer = null;

  function show(item) {
    if (!item || !Number.isInteger(item.id) || document.getElementById(`feed-item-${item.id}`)) {
      return;
    }
    list.prepend(buildItem(item, format));
    if (empty) empty.hidden = true;
    if (status && typeof item.text === "string") status.textContent = `New: ${item.text}`;
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
    let socket;
    try {
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      socket = new WebSocket(`${scheme}//${location.host}${root.dataset.socketPath}`);
    } catch {
      scheduleReconnect();
      return;
    }
    socket.addEventListener("open", () => {
      reconnectDelay = RECONNECT_FIRST_MS;
    });
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message && message.type === "item") show(message.item);
    });
    // "error" is always followed by "close".
    socket.addEventListener("close", (event) => {
      if (event.code !== UNAUTHENTICATED) scheduleReconnect();
    });
  }

  // Keep "just now" honest for the items that arrived while the page was open.
  setInterval(() => {
    for (const time of list.querySelectorAll("time[data-live]")) {
      time.textContent = relativeTime(new Date(time.dateTime), format);
    }
  }, RELATIVE_EVERY_MS);

  connect();
}
