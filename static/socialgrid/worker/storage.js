// What the client keeps in localStorage: the host's identity, the results the server has
// not acknowledged yet (so that reloading the page does not lose finished work), and how
// many results of this host the server has acknowledged (so the count survives a reload,
// as the host's credit does).

const HOST = "socialgrid.host";
const HOST_TOKEN = "socialgrid.hostToken";
const RESULTS = "socialgrid.results";
const DONE = "socialgrid.done";

export function loadIdentity(storage) {
  return { host: storage.getItem(HOST), hostToken: storage.getItem(HOST_TOKEN) };
}

// A signed-in user's host has no token (the session vouches for it): forget any old one.
export function saveIdentity(storage, host, hostToken) {
  storage.setItem(HOST, host);
  if (hostToken) storage.setItem(HOST_TOKEN, hostToken);
  else storage.removeItem(HOST_TOKEN);
}

// Results acknowledged for `host` ({host, count} in storage; another host's count is not
// this one's: a new identity starts from zero, as its credit does).
export function loadDone(storage, host) {
  try {
    const stored = JSON.parse(storage.getItem(DONE) || "null");
    if (stored && stored.host === host && Number.isInteger(stored.count) && stored.count >= 0) {
      return stored.count;
    }
  } catch {
    // a damaged entry: start again
  }
  return 0;
}

// One more acknowledged result of `host`, counted on the stored figure (other tabs of this
// browser count on it too); returns the new count.
export function addDone(storage, host) {
  const count = loadDone(storage, host) + 1;
  try {
    storage.setItem(DONE, JSON.stringify({ host, count }));
  } catch {
    // over quota: the count still goes up on this page
  }
  return count;
}

// Finished tasks by replica id: {replica, lease, name, outcome}. Every change re-reads the
// stored map, so two tabs of the same browser do not overwrite each other's results.
export class PendingResults {
  constructor(storage) {
    this.storage = storage;
  }

  all() {
    try {
      const stored = JSON.parse(this.storage.getItem(RESULTS) || "{}");
      return stored && typeof stored === "object" ? Object.values(stored) : [];
    } catch {
      return [];
    }
  }

  put(entry) {
    this.update((map) => {
      map[entry.replica] = entry;
    });
  }

  remove(replica) {
    this.update((map) => {
      delete map[replica];
    });
  }

  update(change) {
    const map = Object.fromEntries(this.all().map((entry) => [entry.replica, entry]));
    change(map);
    try {
      if (Object.keys(map).length) this.storage.setItem(RESULTS, JSON.stringify(map));
      else this.storage.removeItem(RESULTS);
    } catch {
      // Over quota: the result stays in memory and is still sent; only a reload loses it.
    }
  }
}
