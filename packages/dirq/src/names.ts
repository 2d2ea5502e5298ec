import { InvalidNameError } from './errors';

export const DIR_RE = /^[0-9a-f]{8}$/;
export const ELT_RE = /^[0-9a-f]{14}$/;
export const NAME_RE = /^[0-9a-f]{8}\/[0-9a-f]{14}$/;

/** Throws InvalidNameError unless `name` is `XXXXXXXX/XXXXXXXXXXXXXX`: no path can escape the queue. */
export function checkName(name: unknown): string {
  if (typeof name !== 'string' || !NAME_RE.test(name)) throw new InvalidNameError(name);
  return name;
}

/** Wall-clock offset of the monotonic high-resolution clock, re-anchored whenever Date.now() disagrees. */
let hrOffset = performance.timeOrigin;

/**
 * The wall-clock time in whole microseconds, as python's int(time.time()*1e6). The sub-millisecond
 * part must be the wall clock's own phase (timeOrigin + performance.now()), not performance.now()'s
 * unrelated fraction: otherwise names are off by up to 1 ms and an element added after another
 * process's can sort before it. The result always stays within Date.now()'s millisecond, so a
 * clock step or drift between the two clocks is absorbed.
 */
export function wallClockMicros(): number {
  const ms = Date.now();
  let t = hrOffset + performance.now();
  if (t < ms || t >= ms + 1) {
    const fixed = t < ms ? ms : ms + 0.999;
    hrOffset += fixed - t;
    t = fixed;
  }
  return Math.floor(t * 1000);
}

/**
 * Generates element names `SSSSSSSSMMMMMR` (seconds, microseconds, rndhex) as
 * python-dirq does. Unlike python-dirq, two names made by one generator are
 * never equal: within one process, a name not greater than the previous one
 * is bumped by a microsecond, so lexical order stays time order and the
 * same-microsecond collision python-dirq resolves by retrying cannot occur.
 */
export class NameGenerator {
  private lastSec = 0;
  private lastUsec = -1;
  private readonly hex: string;

  constructor(readonly rndhex: number) {
    this.hex = rndhex.toString(16);
  }

  next(): string {
    const us = wallClockMicros();
    let sec = Math.floor(us / 1e6);
    let usec = us % 1e6;
    if (sec < this.lastSec || (sec === this.lastSec && usec <= this.lastUsec)) {
      sec = this.lastSec;
      usec = this.lastUsec + 1;
      if (usec > 999999) {
        sec += 1;
        usec = 0;
      }
    }
    this.lastSec = sec;
    this.lastUsec = usec;
    return sec.toString(16).padStart(8, '0') + usec.toString(16).padStart(5, '0') + this.hex;
  }
}

/** A 14-hex element name as a 56-bit integer: a million names fit in 8 MB and sort numerically in lexical order. */
export function eltToBig(name: string): bigint {
  return BigInt(`0x${name}`);
}

export function bigToElt(v: bigint): string {
  return v.toString(16).padStart(14, '0');
}
