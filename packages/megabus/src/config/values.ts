/**
 * The values of configuration keys: what each kind of key accepts, and the problem when a value is not one. Shared
 * by the top-level schema (load.ts) and the blocks parsed on their own (the filter keys, plugins).
 */
import type { ConfigProblem, Tree } from '@msgbricks/config-general';

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

/** A key's value once coerced, and where it was given. */
export interface Value {
  readonly value: unknown;
  readonly where: string;
}

/**
 * The scalar keys of `block` by `schema`, coerced (`values`), and where each key was given, valid or not (`given`);
 * every problem (unknown key, a block where a value goes, a repeated single key, a bad value) added to `problems`
 * with `prefix` + key. Sub-blocks named in `blocks` are returned apart (`subs`).
 */
export function readBlock(
  block: Tree & { kind: 'block' },
  schema: Readonly<Record<string, Kind>>,
  prefix: string,
  problems: ConfigProblem[],
  blocks: ReadonlySet<string> = new Set(),
): { values: Map<string, Value>; given: Map<string, string>; subs: [string, Tree][] } {
  const given = new Map<string, { raw: unknown[]; where: string }>();
  const subs: [string, Tree][] = [];
  for (const [key, node] of block.entries) {
    const name = `${prefix}${key}`;
    if (blocks.has(key)) {
      subs.push([key, node]);
      continue;
    }
    if (!Object.hasOwn(schema, key)) {
      problems.push({ where: node.where, key: name, message: 'unknown key' });
      continue;
    }
    if (node.kind === 'block') {
      problems.push({ where: node.where, key: name, message: 'expected a value, not a block' });
      continue;
    }
    const g = given.get(key);
    if (g === undefined) given.set(key, { raw: [node.value], where: node.where });
    else if (schema[key] === 'list') g.raw.push(node.value);
    else problems.push({ where: node.where, key: name, message: `given more than once (first at ${g.where})` });
  }
  const values = new Map<string, Value>();
  for (const [key, g] of given) {
    const kind = schema[key] as Kind;
    // A list may also be one line, blank- or comma-separated (Apache style).
    const raw =
      kind === 'list' ? g.raw.flatMap((v) => (typeof v === 'string' ? v.split(/[\s,]+/).filter((s) => s !== '') : [v])) : g.raw;
    const out: unknown[] = [];
    for (const v of raw) {
      const r = coerce(kind, v);
      if ('problem' in r) problems.push({ where: g.where, key: `${prefix}${key}`, message: r.problem });
      else out.push(r.value);
    }
    if (out.length === raw.length && out.length > 0) values.set(key, { value: kind === 'list' ? out : out[0], where: g.where });
  }
  return { values, given: new Map([...given].map(([k, g]) => [k, g.where])), subs };
}
