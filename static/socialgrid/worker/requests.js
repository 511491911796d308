// When to ask the server for tasks, and how many.
//
// One request at a time, whether sent on its own or riding on a result (result.request,
// answered by the result's ack, or by an assign after the error when the result is refused);
// an answer's retry_after (or, for an empty one without it, a default) holds the next one
// back; a request nobody answered is given up after a minute, so a lost or refused one
// cannot stall the client for good.

const TIMEOUT_MS = 60_000;
const DEFAULT_RETRY_AFTER_S = 30;
const MAX_N = 64; // the protocol's ceiling for request.n

// Enough for one task running and one waiting per core, within the server's limit. Asked
// for once the buffer is down to half, not after every task: a many-core client then sends
// one request per `cores` tasks, and each lease the server makes is a batch.
export function tasksWanted(cores, maxInFlight, held) {
  const target = Math.min(2 * cores, maxInFlight);
  if (held > Math.floor(target / 2)) return 0;
  return Math.min(MAX_N, target - held);
}

export class RequestPacer {
  constructor() {
    this.reset();
  }

  reset() {
    this.pending = false;
    this.sentAt = 0;
    this.notBefore = 0;
  }

  due(now) {
    if (this.pending && now - this.sentAt < TIMEOUT_MS) return false;
    return now >= this.notBefore;
  }

  sent(now) {
    this.pending = true;
    this.sentAt = now;
    this.notBefore = 0;
  }

  answered(now, nTasks, retryAfter) {
    const wait = retryAfter ?? (nTasks ? 0 : DEFAULT_RETRY_AFTER_S);
    this.pending = false;
    this.notBefore = now + wait * 1000;
  }

  // The server refused a message for now (rate_limited, server_error): wait a little.
  backOff(now, ms) {
    this.pending = false;
    this.notBefore = now + ms;
  }
}
