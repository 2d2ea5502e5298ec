/**
 * Megabus filtering: the keys `selector`, `hostgroup_selector`, `host_selector` and `use_broker_filtering`, read
 * from any block of a configuration (the top level, a plugin), validated with @msgbricks/selector while the
 * configuration loads, and turned into one selector: the parts joined with AND. With broker filtering the broker
 * gets that selector (STOMP `selector` header, AMQP `jms-selector` source filter); the client evaluates it either
 * way, so that the same configuration gets the same messages from ActiveMQ, which filters, and from RabbitMQ, which
 * ignores selectors.
 */
import type { ConfigProblem, Tree } from '@msgbricks/config-general';
import { parseSelector, type Selector, SelectorError } from '@msgbricks/selector';
import { coerce, type Kind } from './config/values';

/** The header `hostgroup_selector` matches: the publisher's host group (Puppet's, `eos/disk/...`). */
export const HOSTGROUP_HEADER = 'hostgroup';
/** The header `host_selector` matches: the short or full host name the message is about. */
export const HOST_HEADER = 'host';
/**
 * The LIKE escape character of the expanded shortcuts: a `_` (and a `\`) of a pattern is escaped with it, so that
 * only `%` is a wildcard in a shortcut.
 */
export const LIKE_ESCAPE = '\\';

/** The filter keys, with their kinds: a block parser skips them and lets parseFilterKeys read them. */
export const FILTER_KEYS: Readonly<Record<string, Kind>> = {
  selector: 'string',
  hostgroup_selector: 'string',
  host_selector: 'string',
  use_broker_filtering: 'bool',
};

/** The filter keys of one block, normalised (each selector as given, each shortcut as its pattern). */
export interface FilterConfig {
  /** A JMS selector (ActiveMQ's rules over STOMP, docs/selector.md). */
  readonly selector?: string;
  /** A pattern of the `hostgroup` header, `%` the only wildcard. */
  readonly hostgroupSelector?: string;
  /** A pattern of the `host` header, `%` the only wildcard. */
  readonly hostSelector?: string;
  /** Send the selector to the broker too (ActiveMQ); the client still checks every message. */
  readonly useBrokerFiltering: boolean;
}

/** No filter: every message. */
export const NO_FILTER: FilterConfig = { useBrokerFiltering: false };

/** A filter as the consumer applies it. */
export interface Filter {
  /** The whole filter as one selector (undefined: no filter). */
  readonly selector?: Selector;
  /** What goes on the subscription: the selector's text with use_broker_filtering, else undefined. */
  readonly brokerSelector?: string;
  /** True when the message (its headers) is selected. */
  matches(message: { readonly header: Readonly<Record<string, string>> }): boolean;
}

/**
 * A `%` pattern as a LIKE selector on `header`: `%` any sequence, every other character itself (`_` and `\` are
 * escaped, `'` doubled), compared case-sensitively as ActiveMQ does.
 */
export function expandPattern(header: string, pattern: string): string {
  const quoted = pattern.replaceAll("'", "''");
  if (!/[_\\]/.test(pattern)) return `${header} LIKE '${quoted}'`;
  const escaped = quoted.replace(/[_\\]/g, (c) => `${LIKE_ESCAPE}${c}`);
  return `${header} LIKE '${escaped}' ESCAPE '${LIKE_ESCAPE}'`;
}

/** The filter's selector text: its parts joined with AND (a single part as given), undefined without any. */
export function filterSelector(filter: FilterConfig): string | undefined {
  const parts: string[] = [];
  if (filter.selector !== undefined) parts.push(filter.selector);
  if (filter.hostgroupSelector !== undefined) parts.push(expandPattern(HOSTGROUP_HEADER, filter.hostgroupSelector));
  if (filter.hostSelector !== undefined) parts.push(expandPattern(HOST_HEADER, filter.hostSelector));
  if (parts.length <= 1) return parts[0];
  // N.B. Parenthesised: NOT binds tighter than comparisons and a trailing `--` reads as two minus signs, so a part
  // must not mix with its neighbour.
  return parts.map((p) => `(${p})`).join(' AND ');
}

const KEY_FIELDS: Readonly<Record<string, keyof FilterConfig>> = {
  selector: 'selector',
  hostgroup_selector: 'hostgroupSelector',
  host_selector: 'hostSelector',
  use_broker_filtering: 'useBrokerFiltering',
};

/**
 * Reads the filter keys of `node` (a block; other keys are the caller's), adding every problem to `problems` as
 * `WHERE: PREFIXkey: problem` (a bad selector names its column). `prefix` names the block (`''` at the top level,
 * `plugins.roger.` in a plugin).
 */
export function parseFilterKeys(node: Tree, prefix: string, problems: ConfigProblem[]): FilterConfig {
  if (node.kind !== 'block') return NO_FILTER;
  const out: Record<string, unknown> = {};
  const firstAt = new Map<string, string>();
  const before = problems.length;
  for (const [key, value] of node.entries) {
    if (!Object.hasOwn(FILTER_KEYS, key)) continue;
    const kind = FILTER_KEYS[key] as Kind;
    const name = `${prefix}${key}`;
    const first = firstAt.get(key);
    if (first !== undefined) {
      problems.push({ where: value.where, key: name, message: `given more than once (first at ${first})` });
      continue;
    }
    firstAt.set(key, value.where);
    if (value.kind === 'block') {
      problems.push({ where: value.where, key: name, message: 'expected a value, not a block' });
      continue;
    }
    const r = coerce(kind, value.value);
    if ('problem' in r) {
      problems.push({ where: value.where, key: name, message: r.problem });
      continue;
    }
    if (key !== 'use_broker_filtering') {
      const text =
        key === 'selector'
          ? (r.value as string)
          : expandPattern(key === 'host_selector' ? HOST_HEADER : HOSTGROUP_HEADER, r.value as string);
      try {
        parseSelector(text);
      } catch (err) {
        if (!(err instanceof SelectorError)) throw err;
        problems.push({ where: value.where, key: name, message: err.message });
        continue;
      }
    }
    out[KEY_FIELDS[key] as string] = r.value;
  }
  const filter = { ...out, useBrokerFiltering: out.useBrokerFiltering === true } as FilterConfig;
  if (filter.useBrokerFiltering && filterSelector(filter) === undefined && problems.length === before) {
    problems.push({
      where: firstAt.get('use_broker_filtering') ?? node.where,
      key: `${prefix}use_broker_filtering`,
      message: 'needs selector, hostgroup_selector or host_selector',
    });
  }
  return filter;
}

/** The filter of a FilterConfig (its selectors were validated when it was read: parsing cannot fail here). */
export function buildFilter(config: FilterConfig): Filter {
  const text = filterSelector(config);
  if (text === undefined) return { matches: () => true };
  const selector = parseSelector(text);
  return {
    selector,
    brokerSelector: config.useBrokerFiltering ? text : undefined,
    matches: (message) => selector.matches(message.header),
  };
}
