/**
 * The values of configuration keys: what each kind of key accepts, and the problem when a value is not one. Shared
 * by the top-level schema (load.ts) and the blocks parsed on their own (the filter keys, plugins).
 */

/** A key's kind: a scalar type, or the list of the words it accepts. */
export type Kind = 'string' | 'bool' | 'count' | 'seconds' | 'port' | 'list' | readonly string[];

const TRUE = ['1', 'true', 'yes', 'on'];
const FALSE = ['0', 'false', 'no', 'off'];

export function shown(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/** A raw value as its kind (seconds become milliseconds), or the problem with it. */
export function coerce(kind: Kind, v: unknown): { value: unknown } | { problem: string } {
  if (typeof kind !== 'string') {
    const s = String(v).trim().toLowerCase();
    return kind.includes(s) ? { value: s } : { problem: `expected ${kind.join(' or ')}, got ${shown(v)}` };
  }
  switch (kind) {
    case 'string':
    case 'list': {
      const s = typeof v === 'number' ? String(v) : v;
      return typeof s === 'string' && s.trim() !== '' ? { value: s.trim() } : { problem: `expected a string, got ${shown(v)}` };
    }
    case 'bool': {
      if (typeof v === 'boolean') return { value: v };
      const s = String(v).trim().toLowerCase();
      if (TRUE.includes(s)) return { value: true };
      if (FALSE.includes(s)) return { value: false };
      return { problem: `expected a boolean (true/false, yes/no, on/off, 1/0), got ${shown(v)}` };
    }
    default: {
      const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
      if (kind === 'seconds') {
        return Number.isFinite(n) && n >= 0
          ? { value: Math.round(n * 1000) }
          : { problem: `expected seconds >= 0, got ${shown(v)}` };
      }
      const [min, max] = kind === 'port' ? [1, 65535] : [1, 1_000_000];
      return Number.isInteger(n) && n >= min && n <= max
        ? { value: n }
        : { problem: `expected an integer from ${min} to ${max}, got ${shown(v)}` };
    }
  }
}
