import { InvalidNameError } from './errors';

export const DIR_RE = /^[0-9a-f]{8}$/;
export const ELT_RE = /^[0-9a-f]{14}$/;
export const NAME_RE = /^[0-9a-f]{8}\/[0-9a-f]{14}$/;

/** Throws InvalidNameError unless `name` is `XXXXXXXX/XXXXXXXXXXXXXX`: no path can escape the queue. */
export function checkName(name: unknown): string {
  if (typeof name !== 'string' || !NAME_RE.test(name)) throw new InvalidNameError(name);
  return name;
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
    const ms = Date.now();
    let sec = Math.floor(ms / 1000);
    // Date.now() has millisecond resolution; the high-resolution clock fills the microseconds.
    let usec = (ms % 1000) * 1000 + (Math.floor(performance.now() * 1000) % 1000);
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
