/**
 * megabusclt's keys of the configuration: `state_dir`, `metrics` and `plugins`. Called once by parseConfig (load.ts),
 * which hands over the whole tree and its list of problems: the keys read here are taken out of the tree it goes on
 * with, and every problem found here joins the others (FILE:LINE: key: problem), so one pass still reports them all.
 *
 * A plugin is a named block. YAML/JSON: `plugins: {roger: {...}}`. Apache style: `<plugin roger>` ... `</plugin>`
 * (or `<plugins>` holding `<roger>` blocks); its actions are repeated `<action>` (or `<actions>`) blocks, as YAML's
 * `actions:` list.
 */
import { resolve } from 'node:path';
import type { ConfigProblem, Tree } from '@msgbricks/config-general';
import { FILTER_KEYS, parseFilterKeys } from '../filter';
import type { ActionConfig } from '../plugins/types';
import type { MetricsAddress, OnChangeConfig, PluginConfig } from './types';
import { type Kind, readBlock, type Value } from './values';

/** Where the plugins keep their state unless state_dir says. */
export const DEFAULT_STATE_DIR = '/var/lib/megabusclt';

/** A plugin's name: a directory name under state_dir, a metric label, a log field. */
export const PLUGIN_NAME = /^[A-Za-z0-9_.-]+$/;

/** The keys of each action type (besides `type`); `required` must be given. */
export interface ActionSchema {
  readonly keys: Readonly<Record<string, Kind>>;
  readonly required: readonly string[];
}

/**
 * The action types and their keys. The timed schedules' predefined actions (std_log, std_email, std_shutdown) are
 * added here by the schedule block's parser when it lands; the runtime's action factories (plugins/actions.ts)
 * follow the same names.
 */
export const ACTION_SCHEMAS: Readonly<Record<string, ActionSchema>> = {
  command: { keys: { command: 'string', timeout: 'seconds' }, required: ['command'] },
  http: { keys: { url: 'string', timeout: 'seconds' }, required: ['url'] },
  spool: { keys: { path: 'string', timeout: 'seconds' }, required: ['path'] },
  log: {
    keys: { headers: 'list', body: 'bool', level: ['debug', 'info', 'warning', 'error'], text: 'string', timeout: 'seconds' },
    required: [],
  },
};

const PLUGIN_KEYS: Readonly<Record<string, Kind>> = {
  destination: 'string',
  max_attempts: 'count',
  dead_letter: 'string',
  retry_delay: 'seconds',
  retry_delay_max: 'seconds',
  timeout: 'seconds',
  concurrency: 'count',
};

/** A plugin's sub-blocks (besides its PLUGIN_KEYS), and the filter keys, which parseFilterKeys reads. */
const PLUGIN_BLOCKS = new Set(['on_change', 'action', 'actions', 'schedule', ...Object.keys(FILTER_KEYS)]);

export interface PluginKeys {
  readonly stateDir: string;
  readonly metrics?: MetricsAddress;
  readonly plugins: readonly PluginConfig[];
}

type Block = Tree & { kind: 'block' };
type Problems = ConfigProblem[];

/** `[host:]port` (`[v6]:port`): where /metrics and /healthz are served, loopback unless a host is given; or undefined. */
export function parseMetricsAddress(text: string): MetricsAddress | undefined {
  const m = /^(?:\[([^\]]+)\]:|([^:[\]]+):)?(\d+)$/.exec(text.trim());
  const port = Number(m?.[3]);
  if (m === null || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port };
}

function parseMetrics(v: Value, problems: Problems): MetricsAddress | undefined {
  const text = String(v.value).trim();
  const address = parseMetricsAddress(text);
  if (address === undefined)
    problems.push({
      where: v.where,
      key: 'metrics',
      message: `expected [host:]port (port 1 to 65535), got ${JSON.stringify(text)}`,
    });
  return address;
}

/** A header name, or `body.PATH` (dot-separated, each part a property name or an array index) into a JSON body. */
const FIELD = /^(?:body(?:\.[^.\s]+)+|(?!body$)[^\s]+)$/;

function parseOnChange(node: Tree, prefix: string, problems: Problems): OnChangeConfig | undefined {
  if (node.kind !== 'block') {
    problems.push({ where: node.where, key: prefix, message: 'expected a block with key and field' });
    return undefined;
  }
  const { values } = readBlock(node, { key: 'string', field: 'string' }, `${prefix}.`, problems);
  let ok = true;
  for (const k of ['key', 'field']) {
    const v = values.get(k);
    if (v === undefined) {
      problems.push({ where: node.where, key: `${prefix}.${k}`, message: 'missing: a header name or body.PATH' });
      ok = false;
    } else if (!FIELD.test(v.value as string)) {
      problems.push({
        where: v.where,
        key: `${prefix}.${k}`,
        message: `expected a header name or body.PATH, got ${JSON.stringify(v.value)}`,
      });
      ok = false;
    }
  }
  return ok ? { key: values.get('key')?.value as string, field: values.get('field')?.value as string } : undefined;
}

function parseAction(node: Tree, prefix: string, base: string, problems: Problems): ActionConfig | undefined {
  if (node.kind !== 'block') {
    problems.push({ where: node.where, key: prefix, message: 'expected a block with a type (command, http, spool, log)' });
    return undefined;
  }
  const typeNode = node.entries.find(([k]) => k === 'type')?.[1];
  const type = typeNode?.kind === 'scalar' ? String(typeNode.value).trim() : undefined;
  const schema = type === undefined ? undefined : ACTION_SCHEMAS[type];
  if (schema === undefined) {
    problems.push({
      where: typeNode?.where ?? node.where,
      key: `${prefix}.type`,
      message:
        type === undefined
          ? `missing: one of ${Object.keys(ACTION_SCHEMAS).join(', ')}`
          : `expected one of ${Object.keys(ACTION_SCHEMAS).join(', ')}, got ${JSON.stringify(type)}`,
    });
    return undefined;
  }
  const before = problems.length;
  const { values } = readBlock(node, { type: 'string', ...schema.keys }, `${prefix}.`, problems);
  for (const k of schema.required) {
    if (!values.has(k) && !node.entries.some(([e]) => e === k))
      problems.push({ where: node.where, key: `${prefix}.${k}`, message: `missing: a ${type} action needs ${k}` });
  }
  const out: Record<string, unknown> = { type };
  for (const [k, v] of values) {
    if (k === 'type') continue;
    // ActionConfig keeps seconds (its contract); the plugin's timeout is the default.
    out[k] = schema.keys[k] === 'seconds' ? (v.value as number) / 1000 : v.value;
  }
  if (type === 'http' && typeof out.url === 'string') {
    let url: URL | undefined;
    try {
      url = new URL(out.url);
    } catch {
      url = undefined;
    }
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:'))
      problems.push({
        where: values.get('url')?.where ?? node.where,
        key: `${prefix}.url`,
        message: `expected an http:// or https:// URL, got ${JSON.stringify(out.url)}`,
      });
  }
  if (type === 'spool' && typeof out.path === 'string') out.path = resolve(base, out.path);
  if (typeof out.timeout === 'number' && out.timeout <= 0)
    problems.push({
      where: values.get('timeout')?.where ?? node.where,
      key: `${prefix}.timeout`,
      message: 'expected seconds > 0',
    });
  return problems.length === before ? (out as ActionConfig) : undefined;
}

function parsePlugin(
  name: string,
  node: Tree,
  stateDir: string,
  base: string,
  hasDefaultDestination: boolean,
  problems: Problems,
): PluginConfig | undefined {
  const prefix = `plugins.${name}`;
  if (!PLUGIN_NAME.test(name) || name === '.' || name === '..') {
    problems.push({ where: node.where, key: prefix, message: 'a plugin name is letters, digits, _, . and - only' });
    return undefined;
  }
  if (node.kind !== 'block') {
    problems.push({ where: node.where, key: prefix, message: 'expected a block of settings' });
    return undefined;
  }
  const before = problems.length;
  const { values, subs } = readBlock(node, PLUGIN_KEYS, `${prefix}.`, problems, PLUGIN_BLOCKS);
  // Its own filter keys replace the top-level ones (read by mb-filter's parser, as at the top level).
  const filter = node.entries.some(([k]) => Object.hasOwn(FILTER_KEYS, k))
    ? parseFilterKeys(node, `${prefix}.`, problems)
    : undefined;
  let onChange: OnChangeConfig | undefined;
  let onChangeAt: string | undefined;
  const actions: ActionConfig[] = [];
  let n = 0;
  for (const [key, sub] of subs) {
    if (Object.hasOwn(FILTER_KEYS, key)) continue;
    if (key === 'on_change') {
      if (onChangeAt !== undefined)
        problems.push({ where: sub.where, key: `${prefix}.on_change`, message: `given more than once (first at ${onChangeAt})` });
      else {
        onChangeAt = sub.where;
        onChange = parseOnChange(sub, `${prefix}.on_change`, problems);
      }
    } else if (key === 'schedule') {
      // The timed schedules' hook: their parser reads this block here (into a PluginConfig field of theirs), and
      // PluginRunnerOptions.extraSteps runs what it registers, after the actions, in the same attempt. Until then:
      problems.push({ where: sub.where, key: `${prefix}.schedule`, message: 'not supported yet (timed schedules come next)' });
    } else {
      const a = parseAction(sub, `${prefix}.actions[${n++}]`, base, problems);
      if (a !== undefined) actions.push(a);
    }
  }
  if (n === 0) problems.push({ where: node.where, key: `${prefix}.actions`, message: 'missing: at least one action' });
  const get = <T>(k: string): T | undefined => values.get(k)?.value as T | undefined;
  if (get('destination') === undefined && !hasDefaultDestination && !node.entries.some(([k]) => k === 'destination'))
    problems.push({
      where: node.where,
      key: `${prefix}.destination`,
      message: 'missing: no destination here, in consumer.destination or in destination',
    });
  const retryDelay = get<number>('retry_delay') ?? 1000;
  const retryDelayMax = get<number>('retry_delay_max') ?? 30_000;
  if (retryDelayMax < retryDelay)
    problems.push({
      where: values.get('retry_delay_max')?.where ?? node.where,
      key: `${prefix}.retry_delay_max`,
      message: `must be at least retry_delay (${retryDelay / 1000})`,
    });
  const timeout = get<number>('timeout') ?? 60_000;
  if (timeout <= 0)
    problems.push({
      where: values.get('timeout')?.where ?? node.where,
      key: `${prefix}.timeout`,
      message: 'expected seconds > 0',
    });
  if (problems.length > before) return undefined;
  const deadLetter = get<string>('dead_letter');
  return {
    name,
    where: node.where,
    destination: get<string>('destination'),
    maxAttempts: get<number>('max_attempts') ?? 5,
    deadLetter: deadLetter === undefined ? resolve(stateDir, name, 'dead-letter') : resolve(base, deadLetter),
    retryDelay,
    retryDelayMax,
    timeout,
    concurrency: get<number>('concurrency') ?? 1,
    ...(onChange === undefined ? {} : { onChange }),
    ...(filter === undefined ? {} : { filter }),
    actions,
  };
}

const OWN = new Set(['state_dir', 'metrics', 'plugins', 'plugin']);

/**
 * Reads state_dir, metrics and plugins from the top of `tree` (paths relative to `base`, the file's directory), adding
 * every problem to `problems`; `rest` is the tree without them, for the other keys' reader.
 */
export function parsePluginKeys(tree: Tree, base: string, problems: Problems): PluginKeys & { rest: Tree } {
  if (tree.kind !== 'block') return { rest: tree, stateDir: DEFAULT_STATE_DIR, plugins: [] };
  const own = tree.entries.filter(([k]) => OWN.has(k));
  const rest: Tree = { ...tree, entries: tree.entries.filter(([k]) => !OWN.has(k)) };
  const scalars: Block = { kind: 'block', where: tree.where, entries: own.filter(([k]) => k !== 'plugins' && k !== 'plugin') };
  const { values } = readBlock(scalars, { state_dir: 'string', metrics: 'string' }, '', problems);
  const sd = values.get('state_dir')?.value as string | undefined;
  const stateDir = sd === undefined ? DEFAULT_STATE_DIR : resolve(base, sd);
  const metricsValue = values.get('metrics');
  const metrics = metricsValue === undefined ? undefined : parseMetrics(metricsValue, problems);
  // A plugin's default destination: consumer.destination, then destination.
  const consumerBlock = tree.entries.find(([k, n]) => k === 'consumer' && n.kind === 'block')?.[1] as Block | undefined;
  const hasDefaultDestination =
    tree.entries.some(([k]) => k === 'destination') || (consumerBlock?.entries.some(([k]) => k === 'destination') ?? false);
  const plugins: PluginConfig[] = [];
  const seen = new Map<string, string>();
  for (const [key, node] of own) {
    if (key !== 'plugins' && key !== 'plugin') continue;
    if (node.kind !== 'block') {
      problems.push({ where: node.where, key, message: 'expected named blocks, one per plugin' });
      continue;
    }
    for (const [name, p] of node.entries) {
      const first = seen.get(name);
      if (first !== undefined) {
        problems.push({ where: p.where, key: `plugins.${name}`, message: `given more than once (first at ${first})` });
        continue;
      }
      seen.set(name, p.where);
      const plugin = parsePlugin(name, p, stateDir, base, hasDefaultDestination, problems);
      if (plugin !== undefined) plugins.push(plugin);
    }
  }
  return { rest, stateDir, ...(metrics === undefined ? {} : { metrics }), plugins };
}
