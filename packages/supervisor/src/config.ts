/**
 * simplevisor's configuration (cern-mig/python-simplevisor `docs/configuration.rst`, `supervisor.py`, `service.py`)
 * read into a validated tree: parse (Config::General, JSON or YAML through @msgbricks/config-general), then
 * normalise (variables, defaults, inherited `expected`), then validate, reporting every problem at once as
 * `FILE:LINE: key: problem`.
 *
 *     <simplevisor>                      global keys: store pidfile interval log logfile loglevel logname, and
 *       interval = 60                      msgbricks' control (socket), http (host:port), hold_down, log_dir
 *     </simplevisor>
 *     <entry>
 *       type = supervisor                 name strategy window adjustments expected, or OTP's max_restarts/max_time
 *       <children>
 *         <entry>
 *           type = service                simplevisor's start stop status control restart pattern daemon path timeout,
 *           name = sender                   or msgbricks' command (a foreground program, a child of the supervisor)
 *           command = stompclt --conf /etc/msgbricks/sender.conf
 *         </entry>
 *       </children>
 *     </entry>
 */
import * as fs from 'node:fs';
import {
  ConfigError,
  type ConfigProblem,
  fromConfigGeneral,
  parseConfigGeneralFile,
  parseYamlLike,
  readConfigFile,
  type Tree,
} from '@msgbricks/config-general';

export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one';
export const STRATEGIES: readonly Strategy[] = ['one_for_one', 'one_for_all', 'rest_for_one'];

/** How a supervisor decides it has failed. */
export type Intensity =
  /** simplevisor: more than `adjustments` of the last `window` supervision cycles (of `interval` s) needed a restart. */
  | { kind: 'window'; window: number; adjustments: number }
  /** Erlang/OTP: more than `maxRestarts` restarts within `maxTime` seconds. */
  | { kind: 'otp'; maxRestarts: number; maxTime: number };

export interface SupervisorSpec {
  readonly type: 'supervisor';
  readonly name: string;
  /** `a/b/c`, the name of each supervisor from the root down (simplevisor's addressing). */
  readonly path: string;
  readonly strategy: Strategy;
  readonly intensity: Intensity;
  /** none: each child keeps its own. */
  readonly expected: 'none' | 'running' | 'stopped';
  readonly children: readonly EntrySpec[];
  readonly where: string;
}

export type Output = 'log' | 'inherit' | 'null' | 'syslog';
export type Readiness = { kind: 'none' } | { kind: 'fd'; fd: number } | { kind: 'url'; url: string };

interface ServiceCommon {
  readonly type: 'service';
  readonly name: string;
  readonly path: string;
  readonly expected: 'running' | 'stopped';
  /** Seconds any command may run (simplevisor's `timeout`); also the limit to become ready. */
  readonly timeout: number;
  /** PATH for the commands (simplevisor's `path`). */
  readonly searchPath: string | undefined;
  readonly where: string;
}

/** A program run in the foreground as a child of the supervisor: its exit is seen at once. */
export interface ProcessServiceSpec extends ServiceCommon {
  readonly kind: 'process';
  readonly argv: readonly string[];
  readonly cwd: string | undefined;
  readonly env: Readonly<Record<string, string>>;
  readonly readiness: Readiness;
  readonly stopSignal: NodeJS.Signals;
  /** Seconds between TERM and KILL of the process group. */
  readonly stopTimeout: number;
  readonly output: Output;
  /** A file receiving the child's pid while it runs (simplevisor's `daemon`). */
  readonly pidfile: string | undefined;
  readonly backoffMin: number;
  readonly backoffMax: number;
  /** Exit codes meaning "do not restart" (systemd's RestartPreventExitStatus). */
  readonly noRestartExit: readonly number[];
}

/** simplevisor's non-intrusive service: start/stop/status commands with LSB status codes, polled. */
export interface LsbServiceSpec extends ServiceCommon {
  readonly kind: 'lsb';
  readonly start: readonly string[];
  /** undefined: kill the processes that `pattern` finds. */
  readonly stop: readonly string[] | undefined;
  /** undefined: look for `pattern` in the process table. */
  readonly status: readonly string[] | undefined;
  /** undefined: stop then start. */
  readonly restart: readonly string[] | undefined;
  readonly pattern: string | undefined;
}

export type ServiceSpec = ProcessServiceSpec | LsbServiceSpec;
export type EntrySpec = SupervisorSpec | ServiceSpec;

export interface GlobalSpec {
  readonly store: string | undefined;
  readonly pidfile: string | undefined;
  /** Seconds of a supervision cycle: the poll period of LSB services and simplevisor's intensity unit. */
  readonly interval: number;
  readonly log: 'null' | 'stdout' | 'file' | 'syslog';
  readonly logfile: string | undefined;
  readonly loglevel: 'debug' | 'info' | 'warning' | 'error' | 'critical';
  readonly logname: string;
  readonly control: string | undefined;
  readonly http: string | undefined;
  /** Seconds the root waits after giving up before it starts the tree again; 0: exit instead, as simplevisor. */
  readonly holdDown: number;
  readonly logDir: string | undefined;
  readonly logMaxSize: number;
  readonly logKeep: number;
  /** The socket `output = syslog` writes to (through `logger -u`); the system's (/dev/log) when undefined. */
  readonly syslogSocket: string | undefined;
}

export interface SupervisionConfig {
  readonly file: string;
  readonly global: GlobalSpec;
  readonly root: EntrySpec;
}

export type ConfType = 'apache' | 'json' | 'yaml';

const GLOBAL_KEYS = [
  'store',
  'pidfile',
  'interval',
  'log',
  'logfile',
  'loglevel',
  'logname',
  'control',
  'http',
  'hold_down',
  'log_dir',
  'log_max_size',
  'log_keep',
  'syslog_socket',
] as const;
const SUPERVISOR_KEYS = ['type', 'name', 'strategy', 'window', 'adjustments', 'max_restarts', 'max_time', 'expected', 'children'];
/** msgbricks keys meaningful only for a service run as a child of the supervisor. */
const PROCESS_ONLY_KEYS = [
  'cwd',
  'env',
  'ready',
  'ready_fd',
  'ready_url',
  'stop_signal',
  'stop_timeout',
  'output',
  'backoff_min',
  'backoff_max',
  'no_restart_exit',
];
const SERVICE_KEYS = [
  'type',
  'name',
  'expected',
  'control',
  'start',
  'stop',
  'status',
  'restart',
  'pattern',
  'daemon',
  'path',
  'timeout',
  // msgbricks
  'command',
  ...PROCESS_ONLY_KEYS,
];

export const DEFAULTS = {
  interval: 60,
  window: 12,
  adjustments: 3,
  timeout: 60,
  holdDown: 60,
  stopTimeout: 10,
  readyFd: 3,
  backoffMin: 0.1,
  backoffMax: 30,
  logMaxSize: 10 * 1024 * 1024,
  logKeep: 5,
} as const;

/** Global keys given on the command line; they win over the file's. */
export type GlobalOverrides = Partial<Record<(typeof GLOBAL_KEYS)[number], string>>;

type Block = Tree & { kind: 'block' };
type Vars = ReadonlyMap<string, string>;

class Reader {
  readonly problems: ConfigProblem[] = [];

  problem(where: string, key: string | undefined, message: string): void {
    this.problems.push(key === undefined ? { where, message } : { where, key, message });
  }

  /** The block's scalars by key (the last of a repeated key, as Config::General's hash), its sub-blocks, and its variables. */
  scalars(block: Block, allowed: readonly string[], what: string, inherited: Vars): { values: Map<string, Tree>; vars: Vars } {
    const values = new Map<string, Tree>();
    const vars = new Map(inherited);
    for (const [key, node] of block.entries) {
      if (key.startsWith('var_')) {
        if (node.kind === 'scalar') vars.set(key, this.expand(String(node.value ?? ''), node.where, key, vars));
        continue;
      }
      if (!allowed.includes(key)) {
        this.problem(node.where, key, `unknown key in ${what}${hint(key, allowed)}`);
        continue;
      }
      if (values.has(key) && node.kind === 'scalar') {
        this.problem(node.where, key, 'given more than once');
        continue;
      }
      values.set(key, node);
    }
    return { values, vars };
  }

  /** `${var_x}` replaced by the variable in scope; an unknown one is a problem. */
  expand(value: string, where: string, key: string, vars: Vars): string {
    return value.replace(/\$\{(var_[A-Za-z0-9_]+)\}/g, (whole, name: string) => {
      const v = vars.get(name);
      if (v === undefined) {
        this.problem(where, key, `unknown variable ${whole}`);
        return whole;
      }
      return v;
    });
  }

  str(values: Map<string, Tree>, key: string, vars: Vars): string | undefined {
    const node = values.get(key);
    if (node === undefined) return undefined;
    if (node.kind === 'block') {
      this.problem(node.where, key, 'expected a value, not a block');
      return undefined;
    }
    return this.expand(node.value === null ? '' : String(node.value), node.where, key, vars);
  }

  num(values: Map<string, Tree>, key: string, vars: Vars, dflt: number, opts: { integer?: boolean; min?: number } = {}): number {
    const s = this.str(values, key, vars);
    if (s === undefined) return dflt;
    const n = Number(s.trim());
    const min = opts.min ?? 0;
    if (s.trim() === '' || !Number.isFinite(n) || (opts.integer === true && !Number.isInteger(n)) || n < min) {
      this.problem(
        whereOf(values, key),
        key,
        `not a${opts.integer === true ? 'n integer' : ' number'} >= ${min}: ${JSON.stringify(s)}`,
      );
      return dflt;
    }
    return n;
  }

  oneOf<T extends string>(values: Map<string, Tree>, key: string, vars: Vars, choices: readonly T[], dflt: T): T {
    const s = this.str(values, key, vars);
    if (s === undefined) return dflt;
    const v = s.trim().toLowerCase();
    if (!(choices as readonly string[]).includes(v)) {
      this.problem(whereOf(values, key), key, `must be one of ${choices.join(', ')}, not ${JSON.stringify(s)}`);
      return dflt;
    }
    return v as T;
  }
}

function whereOf(values: Map<string, Tree>, key: string): string {
  return values.get(key)?.where ?? '';
}

function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        (prev[j] as number) + 1,
        (cur[j - 1] as number) + 1,
        (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = cur;
  }
  return prev[b.length] as number;
}

function hint(key: string, known: readonly string[]): string {
  const best = known.map((k) => [k, levenshtein(key, k)] as const).sort((x, y) => x[1] - y[1])[0];
  return best !== undefined && best[1] <= Math.max(2, Math.floor(key.length / 4)) ? ` (did you mean ${best[0]}?)` : '';
}

/**
 * A command line as simplevisor splits it: on blanks, with `%20` (and any `%XX`) decoded inside each word, so an
 * argument can hold a space.
 */
export function splitCommand(command: string): string[] {
  return command
    .trim()
    .split(/\s+/)
    .filter((w) => w !== '')
    .map((w) => {
      try {
        return decodeURIComponent(w);
      } catch {
        return w;
      }
    });
}

function readGlobal(
  r: Reader,
  block: Block | undefined,
  overrides: GlobalOverrides,
  where: string,
): { global: GlobalSpec; vars: Vars } {
  const { values, vars } =
    block === undefined
      ? { values: new Map<string, Tree>(), vars: new Map<string, string>() }
      : r.scalars(block, GLOBAL_KEYS, '<simplevisor>', new Map());
  for (const [k, v] of Object.entries(overrides)) {
    if (v !== undefined) values.set(k, { kind: 'scalar', value: v, where: 'command line' });
  }
  const log = r.oneOf(values, 'log', vars, ['null', 'stdout', 'file', 'syslog'] as const, 'stdout');
  const logfile = r.str(values, 'logfile', vars);
  if (log === 'file' && logfile === undefined)
    r.problem(whereOf(values, 'log') || where, 'logfile', 'log = file needs a logfile');
  const global: GlobalSpec = {
    store: r.str(values, 'store', vars),
    pidfile: r.str(values, 'pidfile', vars),
    interval: r.num(values, 'interval', vars, DEFAULTS.interval, { min: 0.01 }),
    log,
    logfile,
    loglevel: r.oneOf(values, 'loglevel', vars, ['debug', 'info', 'warning', 'error', 'critical'] as const, 'warning'),
    logname: r.str(values, 'logname', vars) ?? 'simplevisor',
    control: r.str(values, 'control', vars),
    http: r.str(values, 'http', vars),
    holdDown: r.num(values, 'hold_down', vars, DEFAULTS.holdDown),
    logDir: r.str(values, 'log_dir', vars),
    logMaxSize: r.num(values, 'log_max_size', vars, DEFAULTS.logMaxSize, { integer: true, min: 1024 }),
    logKeep: r.num(values, 'log_keep', vars, DEFAULTS.logKeep, { integer: true, min: 1 }),
    syslogSocket: r.str(values, 'syslog_socket', vars),
  };
  const http = global.http;
  if (http !== undefined && !/^(?:[^:]+:)?\d+$/.test(http))
    r.problem(whereOf(values, 'http'), 'http', `not [host:]port: ${JSON.stringify(http)}`);
  return { global, vars };
}

function readEntry(
  r: Reader,
  node: Tree,
  parentPath: string,
  inherited: Vars,
  inheritedExpected: SupervisorSpec['expected'],
): EntrySpec | undefined {
  if (node.kind !== 'block') {
    r.problem(node.where, 'entry', 'expected an <entry> block');
    return undefined;
  }
  const typeNode = node.entries.find(([k]) => k === 'type')?.[1];
  const type = typeNode?.kind === 'scalar' ? String(typeNode.value).trim() : undefined;
  if (type !== 'supervisor' && type !== 'service') {
    r.problem(
      typeNode?.where ?? node.where,
      'type',
      type === undefined
        ? 'entry without type (supervisor or service)'
        : `must be supervisor or service, not ${JSON.stringify(type)}`,
    );
    return undefined;
  }
  const allowed = type === 'supervisor' ? SUPERVISOR_KEYS : SERVICE_KEYS;
  const { values, vars } = r.scalars(node, allowed, `a ${type} entry`, inherited);
  const name = r.str(values, 'name', vars)?.trim() ?? (type === 'supervisor' ? 'supervisor' : undefined);
  if (name === undefined || name === '') {
    r.problem(node.where, 'name', `${type} entry without name`);
    return undefined;
  }
  if (name.includes('/')) r.problem(whereOf(values, 'name'), 'name', `a name cannot contain "/": ${JSON.stringify(name)}`);
  const path = parentPath === '' ? name : `${parentPath}/${name}`;
  const input = { node, values, vars, name, path, inheritedExpected };
  return type === 'supervisor' ? readSupervisor(r, input) : readService(r, input);
}

/** An entry block read so far: its keys, the variables in scope, its name and path, what its parent expects. */
interface EntryInput {
  readonly node: Block;
  readonly values: Map<string, Tree>;
  readonly vars: Vars;
  readonly name: string;
  readonly path: string;
  readonly inheritedExpected: SupervisorSpec['expected'];
}

function readSupervisor(r: Reader, e: EntryInput): SupervisorSpec {
  const { node, values, vars, name, path, inheritedExpected } = e;
  const strategy = r.oneOf(values, 'strategy', vars, STRATEGIES, 'one_for_one');
  const ownExpected = r.oneOf(values, 'expected', vars, ['none', 'running', 'stopped'] as const, 'none');
  const expected = ownExpected === 'none' ? inheritedExpected : ownExpected;
  let intensity: Intensity;
  if (values.has('max_restarts') || values.has('max_time')) {
    if (values.has('window') || values.has('adjustments')) {
      r.problem(
        whereOf(values, 'max_restarts') || whereOf(values, 'max_time'),
        'max_restarts',
        'give either window/adjustments (simplevisor) or max_restarts/max_time (OTP), not both',
      );
    }
    intensity = {
      kind: 'otp',
      maxRestarts: r.num(values, 'max_restarts', vars, 3, { integer: true }),
      maxTime: r.num(values, 'max_time', vars, 5, { min: 0.001 }),
    };
  } else {
    intensity = {
      kind: 'window',
      window: r.num(values, 'window', vars, DEFAULTS.window, { integer: true, min: 1 }),
      adjustments: r.num(values, 'adjustments', vars, DEFAULTS.adjustments, { integer: true }),
    };
  }
  const children: EntrySpec[] = [];
  const childrenNode = values.get('children');
  if (childrenNode === undefined || childrenNode.kind !== 'block') {
    r.problem(
      childrenNode?.where ?? node.where,
      'children',
      `supervisor ${path} has no <children> block (a supervisor needs at least one child)`,
    );
  } else {
    const seen = new Map<string, string>();
    for (const [k, child] of childrenNode.entries) {
      if (k !== 'entry') {
        r.problem(child.where, k, `unknown key in <children>${hint(k, ['entry'])}: only <entry> blocks`);
        continue;
      }
      const spec = readEntry(r, child, path, vars, expected);
      if (spec === undefined) continue;
      const first = seen.get(spec.name);
      if (first !== undefined) r.problem(spec.where, 'name', `two entries named ${spec.name} in ${path} (the first at ${first})`);
      seen.set(spec.name, spec.where);
      children.push(spec);
    }
    if (children.length === 0 && !r.problems.some((p) => p.where.startsWith(childrenNode.where.split(':')[0] as string))) {
      r.problem(childrenNode.where, 'children', `supervisor ${path} has no child entry`);
    }
  }
  return { type: 'supervisor', name, path, strategy, intensity, expected, children, where: node.where };
}

function readService(r: Reader, e: EntryInput): ServiceSpec | undefined {
  const { node, values, vars, name, path, inheritedExpected } = e;
  const has = (k: string) => values.has(k);
  const s = (k: string) => r.str(values, k, vars);
  const own = r.oneOf(values, 'expected', vars, ['running', 'stopped'] as const, 'running');
  const expected = inheritedExpected === 'none' || has('expected') ? own : inheritedExpected;
  const common = {
    type: 'service' as const,
    name,
    path,
    expected,
    timeout: r.num(values, 'timeout', vars, DEFAULTS.timeout, { min: 0.01 }),
    searchPath: s('path'),
    where: node.where,
  };
  const command = s('command');
  const start = s('start');
  const daemon = s('daemon');
  const control = s('control');
  if (has('pattern') && (has('status') || has('stop') || has('control'))) {
    r.problem(whereOf(values, 'pattern'), 'pattern', 'cannot be combined with status, stop or control');
  }
  if (command !== undefined || daemon !== undefined) {
    // simplevisor's `daemon = PIDFILE` runs `start` in the foreground under simplevisor-loop: here, as a child.
    const line = command ?? start;
    if (command !== undefined && start !== undefined)
      r.problem(whereOf(values, 'start'), 'start', 'give command or start, not both');
    for (const k of ['control', 'stop', 'status', 'restart', 'pattern']) {
      if (has(k))
        r.problem(
          whereOf(values, k),
          k,
          `not for a service run as a child (${command !== undefined ? 'command' : 'daemon'}): the supervisor sees its exit`,
        );
    }
    if (line === undefined || splitCommand(line).length === 0) {
      r.problem(node.where, 'command', `service ${path}: daemon needs a start command`);
      return undefined;
    }
    const ready = r.oneOf(
      values,
      'ready',
      vars,
      ['none', 'fd', 'url'] as const,
      values.has('ready_url') ? 'url' : values.has('ready_fd') ? 'fd' : 'none',
    );
    let readiness: Readiness = { kind: 'none' };
    if (ready === 'fd')
      readiness = { kind: 'fd', fd: r.num(values, 'ready_fd', vars, DEFAULTS.readyFd, { integer: true, min: 3 }) };
    if (ready === 'url') {
      const url = s('ready_url');
      if (url === undefined || !/^https?:\/\//.test(url))
        r.problem(whereOf(values, 'ready_url') || node.where, 'ready_url', 'ready = url needs an http:// or https:// ready_url');
      readiness = { kind: 'url', url: url ?? '' };
    }
    const sig = (s('stop_signal') ?? 'TERM')
      .trim()
      .toUpperCase()
      .replace(/^(?!SIG)/, 'SIG');
    if (!/^SIG(TERM|INT|QUIT|HUP|USR1|USR2|KILL)$/.test(sig))
      r.problem(whereOf(values, 'stop_signal'), 'stop_signal', `not a stop signal: ${sig}`);
    const env: Record<string, string> = {};
    const envNode = values.get('env');
    if (envNode !== undefined) {
      if (envNode.kind !== 'block') r.problem(envNode.where, 'env', 'expected an <env> block of NAME value lines');
      else
        for (const [k, v] of envNode.entries)
          if (v.kind === 'scalar') env[k] = r.expand(String(v.value ?? ''), v.where, `env ${k}`, vars);
    }
    const codes = (s('no_restart_exit') ?? '').split(/[\s,]+/).filter((c) => c !== '');
    const noRestartExit = codes.map(Number).filter((n) => Number.isInteger(n) && n >= 0 && n <= 255);
    if (noRestartExit.length !== codes.length)
      r.problem(
        whereOf(values, 'no_restart_exit'),
        'no_restart_exit',
        `not exit codes 0-255: ${JSON.stringify(codes.join(' '))}`,
      );
    const backoffMin = r.num(values, 'backoff_min', vars, DEFAULTS.backoffMin);
    const backoffMax = r.num(values, 'backoff_max', vars, DEFAULTS.backoffMax);
    if (backoffMax < backoffMin) r.problem(whereOf(values, 'backoff_max'), 'backoff_max', 'smaller than backoff_min');
    return {
      ...common,
      kind: 'process',
      argv: splitCommand(line),
      cwd: s('cwd'),
      env,
      readiness,
      stopSignal: sig as NodeJS.Signals,
      stopTimeout: r.num(values, 'stop_timeout', vars, DEFAULTS.stopTimeout, { min: 0.01 }),
      output: r.oneOf(values, 'output', vars, ['log', 'inherit', 'null', 'syslog'] as const, 'log'),
      pidfile: daemon,
      backoffMin,
      backoffMax,
      noRestartExit,
    };
  }
  for (const k of PROCESS_ONLY_KEYS) {
    if (has(k)) r.problem(whereOf(values, k), k, 'only for a service run as a child (command or daemon)');
  }
  if (start === undefined && control === undefined) {
    r.problem(node.where, 'start', `service ${path} needs command, start or control`);
    return undefined;
  }
  const cmd = (v: string | undefined) => (v === undefined ? undefined : splitCommand(v));
  const viaControl = (verb: string) => (control === undefined ? undefined : [...splitCommand(control), verb]);
  const restartValue = s('restart');
  const startArgv = cmd(start) ?? (viaControl('start') as string[]);
  const stop = cmd(s('stop')) ?? viaControl('stop');
  const status = cmd(s('status')) ?? viaControl('status');
  const restart = restartValue === 'stop+start' ? undefined : (cmd(restartValue) ?? viaControl('restart'));
  const pattern = stop === undefined || status === undefined ? (s('pattern') ?? start) : undefined;
  if (pattern !== undefined) {
    try {
      new RegExp(pattern);
    } catch (err) {
      r.problem(whereOf(values, 'pattern') || node.where, 'pattern', `not a regular expression: ${(err as Error).message}`);
    }
  }
  return { ...common, kind: 'lsb', start: startArgv, stop, status, restart, pattern };
}

function readRootTree(file: string, conftype: ConfType | undefined, readFile: (file: string) => string): Tree {
  const type = conftype ?? (/\.json$/i.test(file) ? 'json' : /\.ya?ml$/i.test(file) ? 'yaml' : 'apache');
  if (type === 'apache') return fromConfigGeneral(parseConfigGeneralFile(file, { readFile }));
  return parseYamlLike(file, readConfigFile(file, readFile), type === 'json');
}

export interface LoadConfigOptions {
  conftype?: ConfType;
  overrides?: GlobalOverrides;
  readFile?: (file: string) => string;
}

/** Parses, normalises and validates a configuration file; a ConfigError (from config-general) lists every problem. */
export function loadConfig(file: string, options: LoadConfigOptions = {}): SupervisionConfig {
  const readFile = options.readFile ?? ((f: string) => fs.readFileSync(f, 'utf8'));
  const tree = readRootTree(file, options.conftype, readFile) as Block;
  const r = new Reader();
  let globalBlock: Block | undefined;
  const roots: Tree[] = [];
  for (const [key, node] of tree.entries) {
    if (key === 'simplevisor' && node.kind === 'block') {
      if (globalBlock !== undefined) r.problem(node.where, 'simplevisor', 'more than one <simplevisor> block');
      globalBlock = node;
    } else if (key === 'entry') {
      roots.push(node);
    } else {
      r.problem(
        node.where,
        key,
        `unknown top-level key${hint(key, ['simplevisor', 'entry'])}: only <simplevisor> and one <entry>`,
      );
    }
  }
  const { global, vars } = readGlobal(r, globalBlock, options.overrides ?? {}, `${file}:1`);
  if (roots.length !== 1)
    r.problem(roots[1]?.where ?? file, 'entry', roots.length === 0 ? 'no root <entry>' : 'more than one root <entry>');
  const root = roots[0] === undefined ? undefined : readEntry(r, roots[0], '', vars, 'none');
  if (r.problems.length > 0 || root === undefined) {
    throw new ConfigError(r.problems.length > 0 ? r.problems : [{ where: file, message: 'no valid root entry' }]);
  }
  return { file, global, root };
}

/** Every entry of the tree, depth first in start order. */
export function entries(root: EntrySpec): EntrySpec[] {
  return root.type === 'supervisor' ? [root, ...root.children.flatMap(entries)] : [root];
}
