/**
 * The configuration's sources read into option entries, each with where it was given: a Config::General, JSON or YAML
 * file (through @msgbricks/config-general) and the command line. Nested blocks are flattened into option names.
 */
import { formatCredential } from '@msgbricks/agent';
import { type ConfigProblem, readTree, type Tree } from '@msgbricks/config-general';
import { ALIASES, KNOWN_OPTIONS as KNOWN, OPTION_SCHEMA, type OptionType } from './schema';

/** One option occurrence: a flat key, its raw value and where it was given. */
export interface Entry {
  readonly key: string;
  readonly value: unknown;
  readonly where: string;
  readonly cli: boolean;
}

export const COMMAND_LINE = 'command line';

function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
    }
    prev = cur;
  }
  return prev[b.length] as number;
}

/** "unknown option", with the closest known name when it is close enough. */
export function unknown(key: string, what = 'option'): string {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const k of KNOWN) {
    const d = levenshtein(key, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  const hint = best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 4)) ? ` (did you mean ${best}?)` : '';
  return `unknown ${what}${hint}`;
}

const KV_BLOCK_TYPES: ReadonlySet<OptionType> = new Set(['kv', 'kv-list', 'queue', 'reconnect']);

/**
 * Flattens nested forms into option entries: `<outgoing><broker> uri X` and `<outgoing-broker> uri X` into
 * `outgoing-broker-uri`; kv blocks (`<subscribe>`, `<incoming-queue>`, ...) into objects; `<auth>` blocks
 * into credential strings.
 */
function flatten(tree: Tree & { kind: 'block' }, prefix: string, out: Entry[], problems: ConfigProblem[]): void {
  for (const [key, node] of tree.entries) {
    const flat = prefix === '' ? key : `${prefix}-${key}`;
    const spec = OPTION_SCHEMA[flat];
    if (node.kind === 'scalar') {
      out.push({ key: flat, value: node.value, where: node.where, cli: false });
      continue;
    }
    if (spec !== undefined && (KV_BLOCK_TYPES.has(spec.type) || spec.type === 'auth-list')) {
      const map: Record<string, unknown> = {};
      let ok = true;
      for (const [k, v] of node.entries) {
        if (v.kind === 'block') {
          problems.push({ where: v.where, key: flat, message: `unexpected block <${k}> inside <${key}>` });
          ok = false;
        } else if (Object.hasOwn(map, k)) {
          problems.push({ where: v.where, key: flat, message: `${k} given more than once` });
          ok = false;
        } else {
          map[k] = v.value === null ? '' : v.value;
        }
      }
      if (!ok) continue;
      if (spec.type === 'auth-list') {
        const fields = Object.fromEntries(Object.entries(map).map(([k, v]) => [k, String(v)]));
        if (fields.scheme === undefined) {
          problems.push({ where: node.where, key: flat, message: 'credential block without scheme (none, plain or x509)' });
          continue;
        }
        out.push({ key: flat, value: formatCredential(fields), where: node.where, cli: false });
      } else {
        out.push({ key: flat, value: map, where: node.where, cli: false });
      }
    } else if (spec !== undefined) {
      problems.push({ where: node.where, key: flat, message: `expected a value, not a block` });
    } else if (KNOWN.some((k) => k.startsWith(`${flat}-`))) {
      flatten(node, flat, out, problems);
    } else {
      problems.push({ where: node.where, key: flat, message: unknown(flat, 'block') });
    }
  }
}

export function fileEntries(file: string, readFile: (file: string) => string, problems: ConfigProblem[]): Entry[] {
  let tree = readTree(file, readFile);
  if (tree.kind !== 'block') return [];
  // A top-level <stompclt> (or <amqpclt>) block is unwrapped; other top-level keys stay (stompclt would drop them).
  const isWrapper = (k: string, n: Tree) => (k === 'stompclt' || k === 'amqpclt') && n.kind === 'block';
  const wrapped = tree.entries.filter(([k, n]) => isWrapper(k, n));
  if (wrapped.length > 0) {
    const rest = tree.entries.filter(([k, n]) => !isWrapper(k, n));
    const inner = wrapped.flatMap(([, n]) => (n.kind === 'block' ? n.entries : []));
    tree = { kind: 'block', entries: [...rest, ...inner], where: tree.where };
  }
  const out: Entry[] = [];
  flatten(tree, '', out, problems);
  return out;
}

export function argvEntries(argv: Record<string, unknown>, problems: ConfigProblem[]): Entry[] {
  const out: Entry[] = [];
  for (const [rawKey, value] of Object.entries(argv)) {
    if (value === undefined || rawKey === '_' || rawKey === '$0') continue;
    let key = ALIASES[rawKey] ?? rawKey;
    let v = value;
    if (OPTION_SCHEMA[key] === undefined && key.startsWith('no-') && OPTION_SCHEMA[key.slice(3)]?.type === 'bool') {
      key = key.slice(3);
      v = v === true ? false : v === false ? true : v;
    }
    const spec = OPTION_SCHEMA[key];
    if (spec === undefined) {
      problems.push({ where: COMMAND_LINE, key: rawKey, message: unknown(rawKey) });
      continue;
    }
    const list = spec.type === 'kv-list' || spec.type === 'auth-list';
    if (Array.isArray(v) && spec.type === 'counter') v = v.length;
    // Getopt::Long semantics: a single-valued option given several times keeps its last value.
    const values = Array.isArray(v) ? (list ? v : v.slice(-1)) : [v];
    for (const item of values) out.push({ key, value: item, where: COMMAND_LINE, cli: true });
  }
  return out;
}
