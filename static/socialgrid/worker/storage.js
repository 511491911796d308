// What the client keeps in localStorage: the host's identity and the results the server has
// not acknowledged yet (so that reloading the page does not lose finished work).

const HOST = "socialgrid.host";
const HOST_TOKEN = "socialgrid.hostToken";
const RESULTS = "socialgrid.results";

export function loadIdentity(storage) {
  return { host: storage.getItem(HOST), hostToken: storage.getItem(HOST_TOKEN) };
}

// A signed-in user's host has no token (the session vouches for it): forget any old one.
export function saveIdentity(storage, host, hostToken) {
  storage.setItem(HOST, host);
  if (hostToken) storage.setItem(HOST_TOKEN, hostToken);
  else storage.removeItem(HOST_TOKEN);
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
