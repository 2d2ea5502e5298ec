/**
 * `loadOptions`: configuration file (Config::General, JSON or YAML) and command line in, validated options out. It
 * reads (readers.ts), normalises (coerce.ts), then validates stompclt's cross-option rules, and reports every
 * problem at once in one ConfigError, each as `FILE:LINE: key: problem` or `command line: --key: problem`.
 */
import * as fs from 'node:fs';
import { AMQP_PROTOCOL } from '@msgbricks/amqp';
import { ConfigError, type ConfigProblem } from '@msgbricks/config-general';
import { parseSelector, SelectorError } from '@msgbricks/selector';
import { STOMP_PROTOCOL } from '@msgbricks/stomp';
import { checkBrokerUri } from '../protocols';
import { normalise } from './coerce';
import { argvEntries, COMMAND_LINE, type Entry, fileEntries, unknown } from './readers';
import { type AgentOptions, KNOWN_OPTIONS as KNOWN, OPTION_SCHEMA, type OptionSpec } from './schema';

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
   * Checks a broker URI (throws an error whose message is the problem); by default it is parsed by the protocol
   * its scheme picks (protocols.ts), a shared scheme meaning the program's (amqpclt: AMQP, else STOMP).
   */
  checkUri?: (uri: string) => void;
}

export interface LoadedOptions {
  readonly options: AgentOptions;
  /** Where each given option came from: `FILE:LINE`, `command line`, or `default` (for computed defaults). */
  readonly sources: Readonly<Record<string, string>>;
}

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
  const fallback = program === 'amqpclt' ? AMQP_PROTOCOL : STOMP_PROTOCOL;
  const checkUri = input.checkUri ?? ((uri: string) => checkBrokerUri(uri, fallback));
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
      const r = normalise(spec, e.value, e.cli, checkUri);
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

  if (given('filter')) {
    try {
      parseSelector(values.filter as string);
    } catch (err) {
      if (!(err instanceof SelectorError)) throw err;
      cross('filter', err.message);
    }
  }
  if (on('filter-on-broker')) {
    if (!given('filter')) cross('filter-on-broker', 'needs filter');
    if (!incomingBroker) cross('filter-on-broker', 'needs an incoming broker (incoming-broker-uri)');
    const subscriptions = (values.subscribe ?? []) as Record<string, string>[];
    if (subscriptions.some((s) => s.selector !== undefined)) {
      cross('filter-on-broker', `cannot be combined with a subscription's own selector (${where('subscribe')})`);
    }
  }

  if (problems.length > 0) throw new ConfigError(problems);

  // --filter-on-broker: the broker gets the filter as every subscription's selector (STOMP header, AMQP source filter).
  if (on('filter-on-broker')) {
    values.subscribe = (values.subscribe as Record<string, string>[]).map((s) => ({ ...s, selector: values.filter as string }));
  }

  // stompclt's "intelligent? tuning": a reliable, counted run prefetches no more than it will consume.
  const count = values.count as number | undefined;
  if (incomingBroker && on('reliable') && count !== undefined && count > 0 && values.prefetch === undefined) {
    values.prefetch = Math.min(count, 100);
    sources.prefetch = 'default';
  }
  return { options: values as unknown as AgentOptions, sources };
}
