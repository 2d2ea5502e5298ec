/**
 * The time a Scheduler sees. Injected, so that tests move a schedule of minutes through in milliseconds: every
 * delay the Scheduler waits for (a step's due time, a retry's backoff, a step's time-out, the retention sweep) goes
 * through `setTimer`, and every "now" through `now()`.
 */

/** A timer handle, to cancel it. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Wall-clock milliseconds since the epoch (event times are wall-clock: they travel in messages). */
  now(): number;
  /** Calls `fn` once `ms` milliseconds have passed. */
  setTimer(fn: () => void, ms: number): Timer;
  /**
   * A controllable clock learns here how to wait for a user's bookkeeping (a Scheduler's record writes) before it
   * moves time on; `busy` resolves true when it had something to wait for. Real clocks need not implement it.
   */
  settleWith?(busy: () => Promise<boolean>): void;
}

/** Node's clock. Timers are unref'd: a pending step does not keep a process alive that has nothing else to do. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    // setTimeout takes at most 2^31-1 ms (24.8 days); a longer wait is taken in hops.
    const MAX = 2 ** 31 - 1;
    let handle: NodeJS.Timeout;
    const arm = (left: number): void => {
      handle = setTimeout(() => (left > MAX ? arm(left - MAX) : fn()), Math.min(Math.max(0, left), MAX));
      handle.unref();
    };
    arm(ms);
    return { cancel: () => clearTimeout(handle) };
  },
};

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that moves only when told: `advance(ms)` fires every timer that falls due on the way, in time order, and
 * lets the promises they start settle before moving on (so a step's action, its record write and the next timer it
 * arms all happen "at" the right time).
 */
export class ManualClock implements Clock {
  private time: number;
  private seq = 0;
  private timers: Pending[] = [];
  private readonly users: (() => Promise<boolean>)[] = [];

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimer(fn: () => void, ms: number): Timer {
    const t: Pending = { at: this.time + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(t);
    return {
      cancel: () => {
        t.cancelled = true;
      },
    };
  }

  settleWith(busy: () => Promise<boolean>): void {
    this.users.push(busy);
  }

  /** Timers armed and not fired nor cancelled. */
  get pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /** Moves time forward by `ms`, firing what falls due in order; resolves once the work they started settled. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      await this.settle();
      this.timers = this.timers.filter((t) => !t.cancelled);
      const next = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (next === undefined) break;
      this.time = Math.max(this.time, next.at);
      next.cancelled = true;
      next.fn();
    }
    this.time = end;
    await this.settle();
  }

  /**
   * Lets the work the fired timers started finish: promise chains (a few turns of the event loop) and the users'
   * bookkeeping (file writes), until a round finds nothing more to wait for.
   */
  async settle(): Promise<void> {
    for (;;) {
      for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
      const busy = await Promise.all(this.users.map((u) => u()));
      if (!busy.includes(true)) return;
    }
  }
}
