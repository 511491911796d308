// The volunteer panel of a project page, bound to a VolunteerClient.
//
// Markup contract (templates/compute/project.html): an element with data-volunteer and
// data-ws-url (a path, made ws:// or wss:// from the page's location, or an absolute URL),
// data-project (slug); inside it buttons [data-action=start|pause|resume|finish], inputs
// [data-setting=cores|cpu|pause-hidden], [data-show=cores|cpu|status|done|credit], a
// list [data-tasks] and [data-offers] (where, while the project has no work, the projects
// that have some are offered, from data-offers-url). The root gets data-state=<client
// state>. Server text is only ever set as textContent.
//
// A volunteer switching project from an offer starts on the other page at once: the offer
// leaves that project's slug in sessionStorage (which other sites cannot write), and the
// page whose project it names starts when bound, as if Start were pressed. Links marked
// data-keep-computing (sign up, sign in) do the same for this project while it computes.
import { VolunteerClient } from "./worker/client.js";
import { browserStorage, defaultCores } from "./worker/environment.js";
import { loadDone, loadIdentity } from "./worker/storage.js";

const SETTINGS_KEY = "socialgrid.settings";
const START_KEY = "socialgrid.startOn"; // sessionStorage: the project an offer switched to

// Which buttons each state offers: "on", "off" (shown, disabled) or "hidden".
const CONTROLS = {
  idle: { start: "on", pause: "hidden", resume: "hidden", finish: "hidden" },
  connecting: { start: "hidden", pause: "on", resume: "hidden", finish: "on" },
  running: { start: "hidden", pause: "on", resume: "hidden", finish: "on" },
  waiting: { start: "hidden", pause: "on", resume: "hidden", finish: "on" },
  reconnecting: { start: "hidden", pause: "on", resume: "hidden", finish: "on" },
  paused: { start: "hidden", pause: "hidden", resume: "on", finish: "on" },
  finishing: { start: "hidden", pause: "on", resume: "hidden", finish: "off" },
  stopped: { start: "on", pause: "hidden", resume: "hidden", finish: "hidden" },
};

export function controlsFor(state) {
  return CONTROLS[state] || CONTROLS.idle;
}

// After this long running with no task computing or queued (results on their way, a request
// not answered yet), the panel says it waits for the server instead of "Computing"; until
// then the task that finished last stays listed. Before any task has started it says so at
// once.
export const IDLE_AFTER_MS = 1500;

export function statusText(
  state,
  { cores = 1, retryAt = null, reason = null, now = 0, idle = false } = {},
) {
  switch (state) {
    case "connecting":
      return "Connecting…";
    case "running":
      if (idle) return "Waiting for the server to answer…";
      return `Computing on ${cores} ${cores === 1 ? "core" : "cores"}`;
    case "waiting": {
      const seconds = retryAt === null ? 0 : Math.ceil((retryAt - now) / 1000);
      return seconds > 0
        ? `No work for this project right now: asking again in ${seconds} s`
        : "No work for this project right now: asking again…";
    }
    case "paused":
      return "Paused";
    case "finishing":
      return "Finishing current work…";
    case "stopped":
      return reason ? `Stopped: ${reason}` : "Stopped";
    case "reconnecting": {
      const seconds = retryAt === null ? 0 : Math.ceil((retryAt - now) / 1000);
      return seconds > 0 ? `Reconnecting in ${seconds} s…` : "Reconnecting…";
    }
    default:
      return "Idle";
  }
}

export function socketUrl(value, location) {
  const url = new URL(value, location.href);
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  return url.href;
}

export function loadSettings(storage, maxCores) {
  let stored = {};
  try {
    stored = JSON.parse(storage.getItem(SETTINGS_KEY) || "{}") || {};
  } catch {
    // a damaged entry: defaults
  }
  const fallback = defaultCores({ hardwareConcurrency: maxCores });
  const cores = Number.isInteger(stored.cores) ? stored.cores : fallback;
  const cpu = Number.isInteger(stored.cpu) ? stored.cpu : 100;
  return {
    cores: Math.min(maxCores, Math.max(1, cores)),
    cpu: Math.min(100, Math.max(10, cpu)),
    pauseHidden: stored.pauseHidden === true,
  };
}

// Offers of other projects with work, as plain elements (names are set as text).
export function renderOffers(container, projects, { onChoose = () => {} } = {}) {
  container.replaceChildren();
  const doc = container.ownerDocument;
  const lead = doc.createElement("p");
  if (!projects.length) {
    lead.textContent = "No other project has work right now either; this page keeps asking.";
    container.append(lead);
    return;
  }
  lead.textContent = projects.length === 1 ? "This project has work now:" : "These projects have work now:";
  const list = doc.createElement("ul");
  for (const project of projects) {
    const item = doc.createElement("li");
    const link = doc.createElement("a");
    link.href = project.url;
    link.setAttribute("role", "button");
    link.className = "secondary";
    link.textContent = `Compute for ${project.name}`;
    link.addEventListener("click", () => onChoose(project));
    item.append(link);
    list.append(item);
  }
  container.append(lead, list);
}

function sessionStore() {
  try {
    return globalThis.sessionStorage || null;
  } catch {
    return null; // storage disabled: an offer opens the page without starting
  }
}

export function bindVolunteer(root, { env, storage = browserStorage(), session = sessionStore() } = {}) {
  const find = (selector) => root.querySelector(selector);
  const show = (name, text) => {
    const element = find(`[data-show="${name}"]`);
    if (element) element.textContent = text;
  };
  const maxCores = Math.max(1, Math.floor(globalThis.navigator.hardwareConcurrency) || 1);
  const settings = loadSettings(storage, maxCores);
  const saveSettings = () => storage.setItem(SETTINGS_KEY, JSON.stringify(settings));

  const client = new VolunteerClient({
    url: socketUrl(root.dataset.wsUrl || "/ws/worker/", globalThis.location),
    project: root.dataset.project || null,
    cores: settings.cores,
    cpuShare: settings.cpu / 100,
    pauseWhenHidden: settings.pauseHidden,
    env,
  });
  const now = () => client.env.now();

  const coresInput = find('[data-setting="cores"]');
  if (coresInput) {
    coresInput.max = String(maxCores);
    coresInput.value = String(settings.cores);
    coresInput.addEventListener("input", () => {
      settings.cores = Number(coresInput.value);
      show("cores", String(settings.cores));
      client.setCores(settings.cores);
      renderState();
      saveSettings();
    });
  }
  const cpuInput = find('[data-setting="cpu"]');
  if (cpuInput) {
    cpuInput.value = String(settings.cpu);
    cpuInput.addEventListener("input", () => {
      settings.cpu = Number(cpuInput.value);
      show("cpu", String(settings.cpu));
      client.setCpuShare(settings.cpu / 100);
      saveSettings();
    });
  }
  const hiddenInput = find('[data-setting="pause-hidden"]');
  if (hiddenInput) {
    hiddenInput.checked = settings.pauseHidden;
    hiddenInput.addEventListener("change", () => {
      settings.pauseHidden = hiddenInput.checked;
      client.setPauseWhenHidden(settings.pauseHidden);
      saveSettings();
    });
  }
  show("cores", String(settings.cores));
  show("cpu", String(settings.cpu));
  // What this browser's host has done so far, before Start (the count outlives a reload).
  show("done", String(loadDone(storage, loadIdentity(storage).host)));

  const actions = {
    start: () => client.start(),
    pause: () => client.pause(),
    resume: () => client.resume(),
    finish: () => client.finishThenStop(),
  };
  for (const button of root.querySelectorAll("[data-action]")) {
    const action = actions[button.dataset.action];
    if (action) button.addEventListener("click", action);
  }

  // The status line, buttons and data-state; a countdown while waiting to reconnect.
  let current = { state: "idle", retryAt: null, reason: null };
  let countdown = null;
  // Running but computing nothing (held tasks all finished, an answer awaited): "idle" once
  // that has lasted IDLE_AFTER_MS, so the line never says computing while nothing is.
  let busy = 0;
  let idle = false;
  // The task list (filled below): items of running tasks, and of finished ones still shown.
  const list = find("[data-tasks]");
  const items = new Map();
  const finished = new Set();
  function clearFinished() {
    for (const item of finished) item.remove();
    finished.clear();
  }
  let idleTimer = null;
  function checkIdle() {
    const nothing = current.state === "running" && busy === 0;
    if (!nothing) {
      clearTimeout(idleTimer);
      idleTimer = null;
      if (idle) {
        idle = false;
        renderState();
      }
      return;
    }
    if (idle || idleTimer) return;
    idleTimer = setTimeout(() => {
      idleTimer = null;
      idle = current.state === "running" && busy === 0;
      if (idle) renderState();
    }, IDLE_AFTER_MS);
  }
  function renderState() {
    const { state } = current;
    // A finished task stays listed while the panel still says it computes (see "task" below).
    if (idle || state !== "running") clearFinished();
    // Nothing listed (no task has started yet, or the last finished one is gone): not computing.
    const quiet = idle || items.size + finished.size === 0;
    root.dataset.state = state;
    if (quiet) root.dataset.idle = "";
    else delete root.dataset.idle;
    show("status", statusText(state, { ...current, cores: settings.cores, now: now(), idle: quiet }));
    const offered = controlsFor(state);
    for (const button of root.querySelectorAll("[data-action]")) {
      const how = offered[button.dataset.action];
      if (!how) continue;
      button.hidden = how === "hidden";
      button.disabled = how !== "on";
    }
  }
  client.addEventListener("state", (event) => {
    current = event.detail;
    clearInterval(countdown);
    const counting = ["reconnecting", "waiting"].includes(current.state);
    countdown = counting ? setInterval(renderState, 1000) : null;
    renderState();
    checkIdle();
    showOffers(current.state === "waiting");
  });

  // While this project has no work: the projects that have some, asked for afresh each time.
  const offers = find("[data-offers]");
  let offersShown = false;
  async function showOffers(on) {
    if (!offers || on === offersShown) return;
    offersShown = on;
    if (!on) {
      offers.hidden = true;
      offers.replaceChildren();
      return;
    }
    const url = new URL(root.dataset.offersUrl || "/projects/with-work.json", globalThis.location.href);
    if (root.dataset.project) url.searchParams.set("but", root.dataset.project);
    let projects = [];
    try {
      const answer = await fetch(url, { headers: { Accept: "application/json" } });
      if (answer.ok) projects = (await answer.json()).projects || [];
    } catch {
      // offline or refused: offer nothing, the status line still tells the truth
    }
    if (!offersShown) return;
    renderOffers(offers, projects, {
      onChoose: (project) => session?.setItem(START_KEY, project.slug),
    });
    offers.hidden = false;
  }

  // One list item per running task. A task that finished stays, full, until the next one
  // starts or the panel stops saying it computes: between two short tasks, or while the next
  // is on its way, the line "Computing" is never beside an empty list.
  client.addEventListener("task", (event) => {
    const { action, replica, name, fraction } = event.detail;
    if (!list) return;
    if (action === "started") {
      clearFinished();
      const item = document.createElement("li");
      item.dataset.replica = String(replica);
      const bar = document.createElement("progress");
      bar.max = 1;
      bar.value = fraction;
      item.append(`${name} `, bar);
      list.append(item);
      items.set(replica, { item, bar });
    } else if (action === "progress" && items.has(replica)) {
      items.get(replica).bar.value = fraction;
    } else if (action === "done" && items.has(replica)) {
      const { item, bar } = items.get(replica);
      bar.value = 1;
      item.dataset.finished = "";
      items.delete(replica);
      finished.add(item);
    } else if (["stopped", "removed"].includes(action) && items.has(replica)) {
      items.get(replica).item.remove();
      items.delete(replica);
    }
    if (action !== "progress") renderState();
  });
  client.addEventListener("stats", (event) => {
    show("done", String(event.detail.done));
    busy = event.detail.running + event.detail.queued;
    checkIdle();
  });
  // Signed in: the volunteer's total, the figure of their profile and the leaderboards;
  // otherwise what this browser earned.
  client.addEventListener("credit", ({ detail }) =>
    show("credit", formatCredit(detail.userTotal ?? detail.total)),
  );
  client.addEventListener("notice", (event) => {
    show("notice", event.detail.text);
    console.info(`socialgrid: ${event.detail.text}`);
  });
  client.addEventListener("protocol-error", (event) => {
    const { code, message, replica } = event.detail;
    console.warn(`socialgrid: server error ${code} (replica ${replica}): ${message}`);
  });

  renderState();
  // Leaving to sign up or sign in while computing: carry on on the page that follows (the
  // same project; its hello, signed in, claims this browser's host and its credit).
  for (const link of root.querySelectorAll("a[data-keep-computing]")) {
    link.addEventListener("click", () => {
      const computing = !["idle", "stopped", "paused"].includes(current.state);
      if (computing && session && root.dataset.project) {
        session.setItem(START_KEY, root.dataset.project);
      }
    });
  }
  // Arrived here from an offer on another project's page: that click was the Start.
  if (session && root.dataset.project && session.getItem(START_KEY) === root.dataset.project) {
    session.removeItem(START_KEY);
    client.start();
  }
  return client;
}

if (typeof document !== "undefined") {
  for (const root of document.querySelectorAll("[data-volunteer]")) bindVolunteer(root);
}

// Credit, by the rule every page uses (compute/credit_display.py): whole numbers with
// separators from 100 up, three significant digits below, trailing zeros dropped; toFixed
// rounds half up on the exact value, as the server does. tests/fixtures/credit_formats.json
// holds the cases both must pass.
export function formatCredit(value) {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) return "0";
  if (number >= 100) return Math.round(number).toLocaleString("en-US");
  const decimals = 2 - Math.floor(Math.log10(number));
  if (decimals > 20) return "0";
  const text = number.toFixed(decimals);
  return text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text;
}
