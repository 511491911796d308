// The duty cycle that holds a task to the volunteer's CPU share.
//
// A kernel awaits progress() every few hundred milliseconds. If it ran t ms since the last
// pause, sleeping t * (1 - s) / s ms makes the stretch busy for the share s of its length:
// t / (t + t(1 - s)/s) = s. The busy time summed over the run is the task's CPU time, so
// sleeping never inflates the credit a result claims.

const MIN_SHARE = 0.01;

export function clampShare(share) {
  const value = Number(share);
  if (!Number.isFinite(value)) return 1;
  return Math.min(1, Math.max(MIN_SHARE, value));
}

export function sleepAfter(ranMs, share) {
  const s = clampShare(share);
  return (ranMs * (1 - s)) / s;
}

export class DutyCycle {
  constructor(share, startedAt) {
    this.share = clampShare(share);
    this.busyMs = 0;
    this.since = startedAt;
  }

  setShare(share) {
    this.share = clampShare(share);
  }

  // The kernel paused at `now`: count the stretch it ran and say how long to sleep.
  pause(now) {
    const ran = Math.max(0, now - this.since);
    this.busyMs += ran;
    this.since = now;
    return sleepAfter(ran, this.share);
  }

  // The kernel runs again from `now` (the sleep may have overrun; that time is not busy).
  resume(now) {
    this.since = now;
  }

  // The run ended at `now`: the busy milliseconds, sleeps left out.
  stop(now) {
    this.busyMs += Math.max(0, now - this.since);
    this.since = now;
    return this.busyMs;
  }
}
