/**
 * stompclt's options (cern-mig/stompclt `%Schema`, POD OPTIONS and `option::parse`), plus the
 * msgbricks additions, and `loadOptions`: configuration file (Config::General, JSON or YAML) and
 * command line in, validated options out. It runs parse, then normalise, then validate, and reports
 * every problem at once in one ConfigError, each as `FILE:LINE: key: problem` or
 * `command line: --key: problem`.
 */
import * as fs from 'node:fs';
import { errnoOf } from '@msgbricks/errors';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { type ConfigBlock, parseConfigGeneralFile } from './configgeneral';
import { BROKER_TYPES, type BrokerType } from './core/connection';
import { type Credential, credentialOf, formatCredential } from './core/credential';
import { ConfigError, type ConfigProblem, formatLocation } from './errors';

// ---------------------------------------------------------------------------------------------
// schema

/** How an option's value is read and normalised. */
export type OptionType =
  | 'string' // any non-empty string
  | 'uri' // a broker URI (scheme://host[:port], failover:, file:), checked by LoadOptionsInput.checkUri
  | 'int' // integer >= 0
  | 'port' // integer 0..65535
  | 'seconds' // number >= 0, may be fractional
  | 'bool' // 0/1, true/false, yes/no, on/off; --no-x on the command line
  | 'counter' // integer >= 0; on the command line each -d adds one
  | 'kv' // "k=v k=v" or a block/object, into Record<string, string>
  | 'kv-list' // repeatable kv
  | 'auth-list' // repeatable Authen::Credential string or <auth> block, into Credential
  | 'queue' // kv with type DQS|DQN|NULL (default DQS) and path, into QueueSpec
  | 'reconnect' // kv of reconnection settings, into ReconnectOptions
  | 'enum' // one of `values`
  | 'words'; // blank-separated words, each one of `values`

export interface OptionSpec {
  readonly type: OptionType;
  /** Allowed values of an enum, or allowed words. */
  readonly values?: readonly string[];
  /** The value when the option is not given (lists default to []). */
  readonly default?: unknown;
  /** Single-letter command-line alias. */
  readonly short?: string;
  /** Informational or action options that a configuration file may not hold. */
  readonly commandLineOnly?: boolean;
  /** Not in stompclt: added by msgbricks. */
  readonly msgbricks?: boolean;
  /** Only this command has the option (amqpclt's own names); the others reject it as unknown. */
  readonly only?: 'amqpclt';
  readonly description: string;
}

const STOMP_DEBUG_WORDS = ['all', 'api', 'body', 'command', 'connection', 'header', 'io'] as const;
const QUEUE_TYPES = ['DQS', 'DQN', 'NULL'] as const;
/** Queue keys known to @msgbricks/message's parseQueueSpec, plus the purge settings maxlock and maxtemp. */
const QUEUE_KEYS = [
  'type',
  'path',
  'granularity',
  'maxelts',
  'rndhex',
  'umask',
  'fsync',
  'io',
  'compression',
  'maxlock',
  'maxtemp',
];
const RECONNECT_KEYS = ['initial-delay', 'max-delay', 'multiplier', 'max-attempts'] as const;

function brokerOptions(side: 'incoming' | 'outgoing'): Record<string, OptionSpec> {
  const p = `${side}-broker`;
  return {
    [`${p}-uri`]: { type: 'uri', description: `${side} broker URI (STOMP or AMQP 1.0)` },
    [`${p}-auth`]: { type: 'auth-list', description: `${side} broker credential(s), e.g. "plain name=X pass=Y"` },
    [`${p}-connect`]: { type: 'kv', description: `extra CONNECT frame headers for the ${side} broker` },
    [`${p}-sockopts`]: { type: 'kv', description: `socket options for the ${side} broker` },
    [`${p}-stomp-debug`]: { type: 'words', values: STOMP_DEBUG_WORDS, description: `STOMP debug words for the ${side} broker` },
    [`${p}-type`]: { type: 'enum', values: BROKER_TYPES, description: `${side} broker type (auto-detected when not given)` },
    [`${p}-module`]: {
      type: 'enum',
      values: ['pika', 'kombu', 'rhea'],
      only: 'amqpclt',
      description: `${side} AMQP driver of python-amqpclt (accepted; msgbricks always uses rhea)`,
    },
    [`${p}-reconnect`]: {
      type: 'reconnect',
      msgbricks: true,
      description: `reconnection of the ${side} broker: initial-delay, max-delay (seconds), multiplier, max-attempts`,
    },
  };
}

/** Every option (and configuration key) with its type and default; see docs/configuration.md. */
export const OPTION_SCHEMA: Readonly<Record<string, OptionSpec>> = {
  ...brokerOptions('incoming'),
  'incoming-queue': { type: 'queue', description: 'incoming on-disk queue: path=... [type=DQS|DQN|NULL] [queue options]' },
  ...brokerOptions('outgoing'),
  'outgoing-queue': { type: 'queue', description: 'outgoing on-disk queue: path=... [type=DQS|DQN|NULL] [queue options]' },
  subscribe: { type: 'kv-list', description: 'SUBSCRIBE headers, one per subscription (required with an incoming broker)' },
  unsubscribe: { type: 'kv-list', description: 'UNSUBSCRIBE at exit; the n-th entry pairs with the n-th subscription' },
  reliable: { type: 'bool', default: false, description: 'client acks, SEND receipts and a DISCONNECT receipt' },
  window: { type: 'int', description: 'maximum number of un-acked messages in memory when reliable' },
  prefetch: { type: 'int', description: 'broker prefetch (default min(count, 100) when reliable and count are set)' },
  count: { type: 'int', short: 'c', description: 'stop after this many messages' },
  duration: { type: 'seconds', description: 'stop after this wall time' },
  'timeout-inactivity': { type: 'seconds', description: 'stop when nothing has arrived for this long' },
  loop: { type: 'bool', default: false, description: 'at the end of the incoming queue, start over' },
  remove: { type: 'bool', default: false, description: 'remove processed elements from the incoming queue' },
  lazy: { type: 'bool', default: false, description: 'open the outgoing module only when the first message arrives' },
  'heart-beat': { type: 'bool', default: false, description: 'STOMP heart-beats' },
  'timeout-client': { type: 'seconds', default: 40, description: 'heart-beat interval the client offers' },
  'timeout-server': { type: 'seconds', default: 10, description: 'heart-beat interval the client asks of the server' },
  'timeout-connect': { type: 'seconds', description: 'TCP connect timeout, also used while waiting for CONNECTED' },
  'timeout-broker': { type: 'seconds', description: 'how long to wait for RECEIPTs' },
  'timeout-flush': { type: 'seconds', default: 60, description: 'how long to flush the output buffer before disconnecting' },
  'timeout-disconnect': { type: 'seconds', default: 60, description: 'how long to wait for the DISCONNECT receipt' },
  'timeout-linger': { type: 'seconds', description: 'after the main loop, how long to wait for pending acks' },
  'timeout-status': { type: 'seconds', description: 'retry --status until success or this timeout' },
  'callback-code': { type: 'string', description: 'inline callback code' },
  'callback-path': { type: 'string', description: 'file holding the callback code' },
  'callback-data': { type: 'kv', description: 'data passed to the callback start()' },
  statistics: { type: 'bool', default: false, short: 's', description: 'print throughput at the end' },
  daemon: { type: 'bool', default: false, description: 'detach and log to syslog' },
  pidfile: { type: 'string', description: 'pid file, also a liveness and control channel' },
  quit: { type: 'bool', default: false, commandLineOnly: true, description: 'tell the instance of --pidfile to quit' },
  status: {
    type: 'bool',
    default: false,
    commandLineOnly: true,
    description: 'report the liveness of the instance of --pidfile',
  },
  debug: { type: 'counter', default: 0, short: 'd', description: 'debug level (repeatable)' },
  config: { type: 'string', commandLineOnly: true, description: 'configuration file (also --conf, --cfg)' },
  'config-general': { type: 'kv', description: 'Config::General parser options (accepted, not applied: see the docs)' },
  list: { type: 'bool', default: false, short: 'l', commandLineOnly: true, description: 'list the options' },
  help: { type: 'bool', default: false, short: 'h', commandLineOnly: true, description: 'short help' },
  manual: { type: 'bool', default: false, short: 'm', commandLineOnly: true, description: 'the manual' },
  version: { type: 'bool', default: false, commandLineOnly: true, description: 'the version' },
  'metrics-port': { type: 'port', msgbricks: true, description: 'serve Prometheus metrics on this port' },
  'metrics-address': {
    type: 'string',
    default: '127.0.0.1',
    msgbricks: true,
    description: 'address the metrics server listens on (0.0.0.0 or :: for every interface)',
  },
  'dead-letter-queue': {
    type: 'queue',
    msgbricks: true,
    description: 'queue receiving the messages that the callback or the outgoing module rejects',
  },
  'log-format': { type: 'enum', values: ['json', 'text'], default: 'text', msgbricks: true, description: 'log line format' },
  log: {
    type: 'enum',
    values: ['stdout', 'stderr', 'file', 'null', 'syslog'],
    only: 'amqpclt',
    description: 'where log lines go (default stderr; file needs logfile)',
  },
  logfile: { type: 'string', only: 'amqpclt', description: 'the log file of --log file (appended to)' },
  loglevel: {
    type: 'enum',
    values: ['debug', 'info', 'warning', 'error', 'critical'],
    only: 'amqpclt',
    description: 'lowest level logged (default info; --debug overrides)',
  },
  pod: { type: 'bool', default: false, only: 'amqpclt', commandLineOnly: true, description: 'the manual (as --manual)' },
  rst: { type: 'bool', default: false, only: 'amqpclt', commandLineOnly: true, description: 'the manual (as --manual)' },
};

const ALIASES: Readonly<Record<string, string>> = {
  c: 'count',
  s: 'statistics',
  d: 'debug',
  l: 'list',
  h: 'help',
  '?': 'help',
  m: 'manual',
  conf: 'config',
  cfg: 'config',
};

// ---------------------------------------------------------------------------------------------
// normalised options

/** An on-disk queue: its type, its path (not for NULL) and queue options, as strings for parseQueueSpec. */
export interface QueueSpec {
  readonly type: 'DQS' | 'DQN' | 'NULL';
  readonly path?: string;
  readonly [option: string]: string | undefined;
}

/** msgbricks reconnection settings of a broker (stompclt never reconnects). */
export interface ReconnectOptions {
  readonly 'initial-delay'?: number;
  readonly 'max-delay'?: number;
  readonly multiplier?: number;
  readonly 'max-attempts'?: number;
}

export type StringMap = Readonly<Record<string, string>>;

/** The validated options; keys are the option names. Absent optional keys mean "not given". */
export interface AgentOptions {
  readonly 'incoming-broker-uri'?: string;
  readonly 'incoming-broker-auth': readonly Credential[];
  readonly 'incoming-broker-connect'?: StringMap;
  readonly 'incoming-broker-sockopts'?: StringMap;
  readonly 'incoming-broker-stomp-debug'?: string;
  readonly 'incoming-broker-type'?: BrokerType;
  readonly 'incoming-broker-reconnect'?: ReconnectOptions;
  readonly 'incoming-queue'?: QueueSpec;
  readonly 'outgoing-broker-uri'?: string;
  readonly 'outgoing-broker-auth': readonly Credential[];
  readonly 'outgoing-broker-connect'?: StringMap;
  readonly 'outgoing-broker-sockopts'?: StringMap;
  readonly 'outgoing-broker-stomp-debug'?: string;
  readonly 'outgoing-broker-type'?: BrokerType;
  readonly 'outgoing-broker-reconnect'?: ReconnectOptions;
  readonly 'outgoing-queue'?: QueueSpec;
  readonly subscribe: readonly StringMap[];
  /** Undefined: do not unsubscribe; otherwise one entry per subscription (maybe empty). */
  readonly unsubscribe?: readonly StringMap[];
  readonly reliable: boolean;
  readonly window?: number;
  readonly prefetch?: number;
  readonly count?: number;
  readonly duration?: number;
  readonly 'timeout-inactivity'?: number;
  readonly loop: boolean;
  readonly remove: boolean;
  readonly lazy: boolean;
  readonly 'heart-beat': boolean;
  readonly 'timeout-client': number;
  readonly 'timeout-server': number;
  readonly 'timeout-connect'?: number;
  readonly 'timeout-broker'?: number;
  readonly 'timeout-flush': number;
  readonly 'timeout-disconnect': number;
  readonly 'timeout-linger'?: number;
  readonly 'timeout-status'?: number;
  readonly 'callback-code'?: string;
  readonly 'callback-path'?: string;
  readonly 'callback-data'?: StringMap;
  readonly statistics: boolean;
  readonly daemon: boolean;
  readonly pidfile?: string;
  readonly quit: boolean;
  readonly status: boolean;
  readonly debug: number;
  readonly config?: string;
  readonly 'config-general'?: StringMap;
  readonly list: boolean;
  readonly help: boolean;
  readonly manual: boolean;
  readonly version: boolean;
  readonly 'metrics-port'?: number;
  readonly 'metrics-address': string;
  readonly 'dead-letter-queue'?: QueueSpec;
  readonly 'log-format': 'json' | 'text';
  readonly 'incoming-broker-module'?: 'pika' | 'kombu' | 'rhea';
  readonly 'outgoing-broker-module'?: 'pika' | 'kombu' | 'rhea';
  readonly log?: 'stdout' | 'stderr' | 'file' | 'null' | 'syslog';
  readonly logfile?: string;
  readonly loglevel?: 'debug' | 'info' | 'warning' | 'error' | 'critical';
  readonly pod?: boolean;
  readonly rst?: boolean;
}

export interface LoadOptionsInput {
  /** The command line, already parsed: option names (or aliases) to values; `no-x: true` means `x: false`. */
  argv?: Record<string, unknown>;
  /** A configuration file: Config::General, or JSON (*.json), or YAML (*.yaml, *.yml). Defaults to argv.config. */
  configFile?: string;
  /** Reads a file; defaults to fs.readFileSync(file, 'utf8'). */
  readFile?: (file: string) => string;
  /** The command reading the options (default stompclt): options `only` for another command are unknown. */
  program?: string;
  /**
   * Checks a broker URI against the protocols' schemes (throws an error whose message is the problem); by
   * default only its form is checked.
   */
  checkUri?: (uri: string) => void;
}

export interface LoadedOptions {
  readonly options: AgentOptions;
  /** Where each given option came from: `FILE:LINE`, `command line`, or `default` (for computed defaults). */
  readonly sources: Readonly<Record<string, string>>;
}

// ---------------------------------------------------------------------------------------------
// parse: files and command line into entries

/** A configuration tree independent of the file format. */
type Tree = { kind: 'scalar'; value: unknown; where: string } | { kind: 'block'; entries: [string, Tree][]; where: string };

/** One option occurrence: a flat key, its raw value and where it was given. */
interface Entry {
  readonly key: string;
  readonly value: unknown;
  readonly where: string;
  readonly cli: boolean;
}

const COMMAND_LINE = 'command line';

function fromConfigGeneral(block: ConfigBlock): Tree {
  const entries: [string, Tree][] = [];
  for (const [key, nodes] of block.entries) {
    for (const n of nodes) {
      entries.push([
        key,
        n.kind === 'scalar' ? { kind: 'scalar', value: n.value, where: formatLocation(n.source) } : fromConfigGeneral(n),
      ]);
    }
  }
  return { kind: 'block', entries, where: formatLocation(block.source) };
}

function fromYaml(node: YamlNode | null | undefined, where: string, file: string, lc: LineCounter): Tree {
  const at = (n: { range?: unknown } | null | undefined, fallback: string): string => {
    const range = n?.range;
    return Array.isArray(range) && typeof range[0] === 'number' ? `${file}:${lc.linePos(range[0]).line}` : fallback;
  };
  if (isMap(node)) {
    const entries: [string, Tree][] = [];
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const kwhere = at(pair.key as { range?: unknown }, where);
      const value = pair.value as YamlNode | null;
      if (isSeq(value)) {
        for (const item of value.items) entries.push([key, fromYaml(item as YamlNode, at(item as YamlNode, kwhere), file, lc)]);
      } else {
        entries.push([key, fromYaml(value, kwhere, file, lc)]);
      }
    }
    return { kind: 'block', entries, where };
  }
  if (isScalar(node)) return { kind: 'scalar', value: node.value, where };
  return { kind: 'scalar', value: node === null || node === undefined ? null : node.toJSON(), where };
}

function parseYamlLike(file: string, text: string, json: boolean): Tree {
  if (json) {
    try {
      JSON.parse(text);
    } catch (err) {
      throw new ConfigError([{ where: file, message: `invalid JSON: ${(err as Error).message}` }], { cause: err });
    }
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        where: `${file}:${lc.linePos(e.pos[0]).line}`,
        message: `invalid ${json ? 'JSON' : 'YAML'}: ${(e.message.split('\n')[0] as string).replace(/ at line \d+, column \d+:?$/, '')}`,
      })),
    );
  }
  const contents = doc.contents as YamlNode | null;
  if (contents === null || (isScalar(contents) && contents.value === null)) return { kind: 'block', entries: [], where: file };
  if (!isMap(contents)) throw new ConfigError([{ where: file, message: 'the top level must be a mapping of options' }]);
  return fromYaml(contents, `${file}:1`, file, lc);
}

function readTree(file: string, readFile: (file: string) => string): Tree {
  if (/\.(json|ya?ml)$/i.test(file)) {
    let text: string;
    try {
      text = readFile(file);
    } catch (err) {
      throw new ConfigError([{ where: file, message: `cannot read configuration file: ${errnoOf(err) ?? String(err)}` }], {
        cause: err,
      });
    }
    return parseYamlLike(file, text, /\.json$/i.test(file));
  }
  return fromConfigGeneral(parseConfigGeneralFile(file, { readFile }));
}

const KNOWN = Object.keys(OPTION_SCHEMA);

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
function unknown(key: string, what = 'option'): string {
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

function fileEntries(file: string, readFile: (file: string) => string, problems: ConfigProblem[]): Entry[] {
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

function argvEntries(argv: Record<string, unknown>, problems: ConfigProblem[]): Entry[] {
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

// ---------------------------------------------------------------------------------------------
// normalise: raw values into typed values

type Result<T> = { value: T } | { problem: string };

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

const URI_FORM = /^(?:[a-z][a-z0-9+.-]*:\/\/\S+|failover:\S+|file:\S+)$/i;

/** Without a checkUri: the forms of a broker URI, the schemes left to the modules. */
function checkUriForm(uri: string): void {
  if (!URI_FORM.test(uri)) throw new Error('expected a broker URI (scheme://host[:port], failover:(...), file:PATH)');
}

function normalise(spec: OptionSpec, v: unknown, cli: boolean, checkUri: (uri: string) => void): Result<unknown> {
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

// ---------------------------------------------------------------------------------------------
// load: parse, normalise, validate

/**
 * Reads the configuration file (if any), merges the command line over it, normalises and validates.
 * Throws one ConfigError listing every problem, or a ConfigError for the file's syntax error.
 */
export function loadOptions(input: LoadOptionsInput = {}): LoadedOptions {
  const argv = input.argv ?? {};
  const readFile = input.readFile ?? ((file: string) => fs.readFileSync(file, 'utf8'));
  const problems: ConfigProblem[] = [];
  const cliEntries = argvEntries(argv, problems);
  const program = input.program ?? 'stompclt';
  const foreign = (e: Entry): boolean => {
    const only = OPTION_SCHEMA[e.key]?.only;
    if (only === undefined || only === program) return false;
    problems.push({ where: e.where, key: e.key, message: `an option of ${only}, not of ${program}` });
    return true;
  };
  const cliConfig = cliEntries.find((e) => e.key === 'config')?.value;
  const configFile = input.configFile ?? (typeof cliConfig === 'string' ? cliConfig : undefined);
  const file = configFile === undefined ? [] : fileEntries(configFile, readFile, problems);
  const general = configFile ?? COMMAND_LINE;

  // parse: group the entries by key, the command line replacing the file
  const byKey = new Map<string, Entry[]>();
  for (const e of file) {
    const spec = OPTION_SCHEMA[e.key];
    if (spec === undefined) {
      problems.push({ where: e.where, key: e.key, message: unknown(e.key) });
      continue;
    }
    if (spec.commandLineOnly) {
      problems.push({ where: e.where, key: e.key, message: 'only valid on the command line' });
      continue;
    }
    if (foreign(e)) continue;
    byKey.set(e.key, [...(byKey.get(e.key) ?? []), e]);
  }
  const cliKeys = new Set<string>();
  for (const e of cliEntries) {
    if (foreign(e)) continue;
    if (!cliKeys.has(e.key)) byKey.set(e.key, []);
    cliKeys.add(e.key);
    (byKey.get(e.key) as Entry[]).push(e);
  }

  // normalise
  const values: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  for (const [key, entries] of byKey) {
    const spec = OPTION_SCHEMA[key] as OptionSpec;
    const first = entries[0] as Entry;
    sources[key] = first.where;
    const list = spec.type === 'kv-list' || spec.type === 'auth-list';
    if (!list && entries.length > 1) {
      for (const e of entries.slice(1))
        problems.push({ where: e.where, key, message: `given more than once (first at ${first.where})` });
      continue;
    }
    const results: unknown[] = [];
    for (const e of entries) {
      const r = normalise(spec, e.value, e.cli, input.checkUri ?? checkUriForm);
      if ('problem' in r) problems.push({ where: e.where, key, message: r.problem });
      else results.push(r.value);
    }
    if (results.length === entries.length) values[key] = list ? results : results[0];
  }
  for (const [key, spec] of Object.entries(OPTION_SCHEMA)) {
    if (values[key] !== undefined || byKey.has(key)) continue;
    if (spec.only !== undefined && spec.only !== program) continue;
    if (spec.default !== undefined) values[key] = spec.default;
    else if (spec.type === 'auth-list' || (spec.type === 'kv-list' && key === 'subscribe')) values[key] = [];
  }

  // validate: stompclt's cross-option rules (option::parse)
  const where = (key: string): string => sources[key] ?? general;
  const given = (key: string): boolean => byKey.has(key) && values[key] !== undefined;
  const on = (key: string): boolean => values[key] === true;
  const cross = (key: string, message: string): void => {
    problems.push({ where: where(key), key, message });
  };
  for (const side of ['incoming', 'outgoing'] as const) {
    const brokerKeys = KNOWN.filter((k) => k.startsWith(`${side}-broker-`) && byKey.has(k));
    const uri = `${side}-broker-uri`;
    const queue = `${side}-queue`;
    if (!byKey.has(uri) && brokerKeys.length > 0) cross(brokerKeys[0] as string, `needs ${uri}`);
    if (byKey.has(uri) && byKey.has(queue))
      cross(queue, `cannot be combined with ${uri} (${where(uri)}): give exactly one ${side} module`);
    if (!byKey.has(uri) && !byKey.has(queue) && brokerKeys.length === 0) {
      problems.push({ where: general, message: `no ${side} module: give ${uri} or ${queue}` });
    }
  }
  const incomingBroker = byKey.has('incoming-broker-uri');
  for (const key of ['loop', 'remove'])
    if (on(key) && !byKey.has('incoming-queue')) cross(key, 'needs an incoming queue (incoming-queue)');
  for (const key of ['prefetch', 'subscribe', 'unsubscribe']) {
    if (given(key) && !incomingBroker) cross(key, 'needs an incoming broker (incoming-broker-uri)');
  }
  if (incomingBroker && !byKey.has('subscribe')) {
    cross('incoming-broker-uri', 'an incoming broker needs at least one subscribe');
  }
  if (given('callback-code') && given('callback-path')) {
    cross('callback-path', `cannot be combined with callback-code (${where('callback-code')})`);
  }
  if (given('callback-data') && !given('callback-code') && !given('callback-path'))
    cross('callback-data', 'needs callback-code or callback-path');
  if (on('daemon') && on('statistics')) cross('statistics', `cannot be combined with daemon (${where('daemon')})`);
  for (const key of ['quit', 'status']) if (on(key) && !given('pidfile')) cross(key, 'needs pidfile');
  if (on('quit') && on('status')) cross('status', 'cannot be combined with quit');
  if (given('metrics-address') && !given('metrics-port')) cross('metrics-address', 'needs metrics-port');
  if (values.log === 'file' && !given('logfile')) cross('log', 'file needs logfile');
  if (given('logfile') && values.log !== 'file') cross('logfile', 'needs log file');
  if (on('heart-beat') && !incomingBroker && !byKey.has('outgoing-broker-uri'))
    cross('heart-beat', 'needs an incoming or outgoing broker');

  if (problems.length > 0) throw new ConfigError(problems);

  // stompclt's "intelligent? tuning": a reliable, counted run prefetches no more than it will consume.
  const count = values.count as number | undefined;
  if (incomingBroker && on('reliable') && count !== undefined && count > 0 && values.prefetch === undefined) {
    values.prefetch = Math.min(count, 100);
    sources.prefetch = 'default';
  }
  return { options: values as unknown as AgentOptions, sources };
}
