/**
 * Value coercion: a raw value of the configuration (a string from a file or the command line, a YAML scalar, a
 * block) into the typed value of its option, or the problem with it.
 */
import { type Credential, credentialOf } from '@msgbricks/agent';
import { type OptionSpec, QUEUE_KEYS, QUEUE_TYPES, type QueueSpec, RECONNECT_KEYS, type ReconnectOptions } from './schema';

export type Result<T> = { value: T } | { problem: string };

function show(v: unknown): string {
  return typeof v === 'string'
    ? JSON.stringify(v)
    : Array.isArray(v) || (v !== null && typeof v === 'object')
      ? JSON.stringify(v)
      : String(v);
}

function asString(v: unknown): Result<string> {
  if (typeof v === 'number' && Number.isFinite(v)) return { value: String(v) };
  if (typeof v !== 'string') return { problem: `expected a string, got ${show(v)}` };
  if (v === '') return { problem: 'missing value' };
  return { value: v };
}

const BOOLEANS: Record<string, boolean> = {
  '0': false,
  '1': true,
  false: false,
  true: true,
  no: false,
  yes: true,
  off: false,
  on: true,
};

function asBool(v: unknown): Result<boolean> {
  if (typeof v === 'boolean') return { value: v };
  const b = typeof v === 'string' || typeof v === 'number' ? BOOLEANS[String(v).trim().toLowerCase()] : undefined;
  return b === undefined ? { problem: `expected a boolean (0/1, true/false, yes/no, on/off), got ${show(v)}` } : { value: b };
}

function asNumber(v: unknown, integer: boolean, max = Number.MAX_SAFE_INTEGER): Result<number> {
  const what = integer ? 'an integer' : 'a number of seconds';
  let n = Number.NaN;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && (integer ? /^\s*[+-]?\d+\s*$/ : /^\s*[+-]?(\d+\.?\d*|\.\d+)\s*$/).test(v)) n = Number(v);
  if (Number.isNaN(n) || (integer && !Number.isSafeInteger(n)) || !Number.isFinite(n))
    return { problem: `expected ${what} >= 0, got ${show(v)}` };
  if (n < 0) return { problem: `must be >= 0, got ${show(v)}` };
  if (n > max) return { problem: `must be <= ${max}, got ${show(v)}` };
  return { value: n };
}

/** stompclt's string2hash: blank-separated `k=v` words; also accepts an object with scalar values. */
function asMap(v: unknown): Result<Record<string, string>> {
  const out: Record<string, string> = {};
  if (typeof v === 'string' || v === null) {
    const problems: string[] = [];
    for (const word of (v ?? '').split(/\s+/)) {
      if (word === '') continue;
      const eq = word.indexOf('=');
      if (eq <= 0) problems.push(`expected key=value, got ${show(word)}`);
      else if (Object.hasOwn(out, word.slice(0, eq))) problems.push(`${word.slice(0, eq)} given more than once`);
      else out[word.slice(0, eq)] = word.slice(eq + 1);
    }
    return problems.length > 0 ? { problem: problems.join('; ') } : { value: out };
  }
  if (typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean') out[k] = String(x);
      else if (x === null) out[k] = '';
      else return { problem: `${k}: expected a scalar value, got ${show(x)}` };
    }
    return { value: out };
  }
  return { problem: `expected key=value pairs, got ${show(v)}` };
}

/** An Authen::Credential string (`plain name=X pass=Y`) or object, checked by the agent core's rules. */
function asCredential(v: unknown): Result<Credential> {
  let given: string | Record<string, string>;
  if (typeof v === 'string') given = v;
  else {
    const kv = asMap(v);
    if ('problem' in kv) return kv;
    given = kv.value;
  }
  try {
    return { value: credentialOf(given as Credential | string) };
  } catch (err) {
    return { problem: (err as Error).message };
  }
}

function asQueue(v: unknown): Result<QueueSpec> {
  const kv = asMap(v);
  if ('problem' in kv) return kv;
  const q: Record<string, string> = { ...kv.value };
  const problems: string[] = [];
  const type = (q.type ?? 'DQS').toUpperCase();
  if ((QUEUE_TYPES as readonly string[]).includes(type)) q.type = type;
  else problems.push(`type must be DQS, DQN or NULL, got ${show(q.type)}`);
  if (type !== 'NULL' && (q.path === undefined || q.path === '')) problems.push('path is required');
  const extra = Object.keys(q).filter((k) => !QUEUE_KEYS.includes(k));
  if (extra.length > 0) problems.push(`unknown queue option(s): ${extra.join(', ')}`);
  return problems.length > 0 ? { problem: problems.join('; ') } : { value: { type: type as QueueSpec['type'], ...q } };
}

function asReconnect(v: unknown): Result<ReconnectOptions> {
  const kv = asMap(v);
  if ('problem' in kv) return kv;
  const out: Record<string, number> = {};
  const problems: string[] = [];
  for (const [k, x] of Object.entries(kv.value)) {
    if (!(RECONNECT_KEYS as readonly string[]).includes(k)) {
      problems.push(`unknown reconnect setting ${k} (${RECONNECT_KEYS.join(', ')})`);
      continue;
    }
    const n = asNumber(x, k === 'max-attempts');
    if ('problem' in n) problems.push(`${k}: ${n.problem}`);
    else out[k] = n.value;
  }
  return problems.length > 0 ? { problem: problems.join('; ') } : { value: out };
}

/** The value of an option as its type says; `checkUri` checks a broker URI (its message is the problem). */
export function normalise(spec: OptionSpec, v: unknown, cli: boolean, checkUri: (uri: string) => void): Result<unknown> {
  switch (spec.type) {
    case 'string':
      return asString(v);
    case 'uri': {
      const s = asString(v);
      if ('problem' in s) return s;
      try {
        checkUri(s.value);
        return s;
      } catch (err) {
        return { problem: (err as Error).message };
      }
    }
    case 'int':
      return asNumber(v, true);
    case 'port':
      return asNumber(v, true, 65535);
    case 'seconds':
      return asNumber(v, false);
    case 'bool':
      return asBool(v);
    case 'counter':
      return cli && typeof v === 'boolean' ? { value: v ? 1 : 0 } : asNumber(v, true);
    case 'kv':
    case 'kv-list':
      return asMap(v);
    case 'auth-list':
      return asCredential(v);
    case 'queue':
      return asQueue(v);
    case 'reconnect':
      return asReconnect(v);
    case 'enum': {
      const s = asString(v);
      if ('problem' in s) return s;
      const found = spec.values?.find((x) => x.toLowerCase() === s.value.toLowerCase());
      return found !== undefined ? { value: found } : { problem: `expected one of ${spec.values?.join(', ')}, got ${show(v)}` };
    }
    case 'words': {
      const s = asString(v);
      if ('problem' in s) return s;
      const bad = s.value.split(/[\s,]+/).filter((w) => w !== '' && !spec.values?.includes(w));
      return bad.length > 0 ? { problem: `unknown word(s) ${bad.join(', ')} (${spec.values?.join(' ')})` } : s;
    }
  }
}
