import type { Intensity } from './config';

/**
 * When a supervisor gives up. simplevisor's model counts supervision *cycles* (of `interval` seconds) in which at
 * least one adjustment was needed: more than `adjustments` of the last `window` cycles means failure. Restarts here
 * happen at once, not at the next cycle, but are counted in the same cycles, so a configuration means what it meant
 * under simplevisor (12 cycles of 60 s, more than 3 of them with a restart). OTP's model counts restarts: more than
 * `maxRestarts` within the last `maxTime` seconds.
 */
export class IntensityTracker {
  private events: number[] = [];

  constructor(
    private spec: Intensity,
    private intervalMs: number,
  ) {}

  /** A reload's new intensity: the restarts already counted stay counted (they happened). */
  configure(spec: Intensity, intervalMs: number): void {
    this.spec = spec;
    this.intervalMs = intervalMs;
  }

  /** Records a restart at `now` (ms); true when the supervisor must now give up. */
  record(now: number): boolean {
    this.events.push(now);
    return this.exceeded(now);
  }

  exceeded(now: number): boolean {
    if (this.spec.kind === 'otp') {
      const from = now - this.spec.maxTime * 1000;
      this.events = this.events.filter((t) => t > from);
      return this.events.length > this.spec.maxRestarts;
    }
    const current = Math.floor(now / this.intervalMs);
    const first = current - this.spec.window + 1;
    const cycles = new Set(this.events.map((t) => Math.floor(t / this.intervalMs)).filter((c) => c >= first));
    this.events = this.events.filter((t) => Math.floor(t / this.intervalMs) >= first);
    return cycles.size > this.spec.adjustments;
  }

  reset(): void {
    this.events = [];
  }
}

/** A child that stayed up this long starts its next restart from no delay again. */
export const STABLE_MS = 10_000;

/**
 * Exponential backoff with jitter for a child's restarts: the first restart after a stable run is immediate; each
 * further quick failure doubles the delay from `minS` up to `maxS`, and the actual wait is drawn in [d/2, d]
 * (the upper half, so that a storm of children failing together spreads out but still waits).
 */
export class Backoff {
  private failures = 0;

  constructor(
    private readonly minS: number,
    private readonly maxS: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay (ms) before the next start, given how long the last run lasted. */
  next(ranMs: number): number {
    if (ranMs >= STABLE_MS) this.failures = 0;
    this.failures++;
    if (this.failures === 1) return 0;
    const d = Math.min(this.maxS, this.minS * 2 ** (this.failures - 2)) * 1000;
    return d / 2 + (this.random() * d) / 2;
  }

  reset(): void {
    this.failures = 0;
  }
}
