/**
 * What the broker modules (@msgbricks/stomp, @msgbricks/amqp) share about failover and reconnection, whatever
 * their protocol: the broker-list forms of a URI with ActiveMQ's failover options (stompclt's names and
 * defaults), and the jittered exponential backoff between connection attempts. Each module keeps its own
 * per-server syntax and error class, and passes them in.
 */
import { readFileSync } from 'node:fs';
import { decodePercent } from './percent';

/** The failover settings of a broker URI (ActiveMQ's failover transport options, as stompclt). */
export interface FailoverSettings {
  /** Shuffle the servers before each round (failover default true; a single server: false). */
  readonly randomize: boolean;
  /** Milliseconds before the second attempt (default 10). */
  readonly initialReconnectDelay: number;
  /** Longest wait between attempts in milliseconds (default 30000). */
  readonly maxReconnectDelay: number;
  readonly backOffMultiplier: number;
  readonly useExponentialBackOff: boolean;
  /** Attempts after the first one; -1: unlimited (failover default), 0: a single attempt (plain URI). */
  readonly maxReconnectAttempts: number;
  /** True for a `failover:` URI (or a file listing several URIs). */
  readonly failover: boolean;
}

/** A parsed broker URI: the servers, in the module's own form, and the failover settings. */
export interface BrokerList<S> extends FailoverSettings {
  readonly servers: readonly S[];
}

/** The settings of a list of brokers (a `failover:` URI with no options, a file of several URIs). */
export const FAILOVER_DEFAULTS: FailoverSettings = {
  randomize: true,
  initialReconnectDelay: 10,
  maxReconnectDelay: 30_000,
  backOffMultiplier: 2,
  useExponentialBackOff: true,
  maxReconnectAttempts: -1,
  failover: true,
};

/** The settings of a plain URI (one server): a single attempt, as stompclt. */
const SINGLE: FailoverSettings = { ...FAILOVER_DEFAULTS, randomize: false, maxReconnectAttempts: 0, failover: false };

/**
 * Parses one server of a list. `where` is empty for a plain URI, ` in <failover URI or file>` otherwise: the
 * module's error messages append it to say where the bad URI came from.
 */
export type ServerParser<S> = (uri: string, where: string) => S;

/** Makes the module's own error (its class, its code) from a message. */
export type FailoverErrorMaker = (message: string) => Error;

function parseNumberOption(name: string, value: string, min: number, fail: FailoverErrorMaker): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min) {
    throw fail(`invalid failover option ${name}=${value}: expected a number >= ${min}`);
  }
  return n;
}

function parseBoolean(name: string, value: string, fail: FailoverErrorMaker): boolean {
  if (/^(true|1|yes)$/i.test(value)) return true;
  if (/^(false|0|no)$/i.test(value)) return false;
  throw fail(`invalid failover option ${name}=${value}: expected true or false`);
}

function parseFailover<S>(uri: string, parseServer: ServerParser<S>, fail: FailoverErrorMaker): BrokerList<S> {
  const m = /^failover:(?:\(([^()]*)\)|([^()?]+))(?:\?(.*))?$/i.exec(uri);
  if (m === null) throw fail(`invalid failover URI ${JSON.stringify(uri)}: expected failover:(uri1,uri2,...)?options`);
  const list = (m[1] ?? m[2] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (list.length === 0) throw fail(`failover URI ${JSON.stringify(uri)} lists no broker`);
  const servers = list.map((s) => parseServer(s, ` in ${uri}`));
  const opts = { ...FAILOVER_DEFAULTS };
  for (const pair of (m[3] ?? '').split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const bad = (why: string) => fail(`invalid failover option ${JSON.stringify(pair)}: ${why}`);
    const key = decodePercent(eq < 0 ? pair : pair.slice(0, eq), bad);
    const value = decodePercent(eq < 0 ? '' : pair.slice(eq + 1), bad);
    switch (key) {
      case 'randomize':
        opts.randomize = parseBoolean(key, value, fail);
        break;
      case 'useExponentialBackOff':
        opts.useExponentialBackOff = parseBoolean(key, value, fail);
        break;
      case 'initialReconnectDelay':
        opts.initialReconnectDelay = parseNumberOption(key, value, 0, fail);
        break;
      case 'maxReconnectDelay':
        opts.maxReconnectDelay = parseNumberOption(key, value, 0, fail);
        break;
      case 'backOffMultiplier':
        opts.backOffMultiplier = parseNumberOption(key, value, 1, fail);
        break;
      case 'maxReconnectAttempts':
        opts.maxReconnectAttempts = parseNumberOption(key, value, -1, fail);
        break;
      default:
        // As Net::STOMP::Client: unknown options are ignored.
        break;
    }
  }
  return { servers, ...opts };
}

/**
 * Parses the broker-list forms of a URI, as stompclt: a plain URI (one server, a single attempt), a
 * `failover:(u1,u2,...)?options` list with ActiveMQ's failover options (unlimited attempts unless
 * `maxReconnectAttempts` says otherwise; unknown options ignored), or `file:PATH` (one URI per line, `#`
 * comments; a single line may itself be a failover URI, several lines are a failover list with the defaults).
 * `parseServer` parses one server's URI, `fail` makes the module's error for a message.
 */
export function parseBrokerList<S>(uri: string, parseServer: ServerParser<S>, fail: FailoverErrorMaker): BrokerList<S> {
  if (typeof uri !== 'string' || uri.trim() === '') throw fail('empty broker URI');
  const u = uri.trim();
  if (/^file:/i.test(u)) {
    const path = u.slice(5);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw fail(`cannot read broker URI file ${path}: ${(err as Error).message}`);
    }
    const lines = text
      .split(/\r?\n/)
      .map((l) => l.replace(/#.*/, '').trim())
      .filter((l) => l !== '');
    if (lines.length === 0) throw fail(`broker URI file ${path} lists no broker`);
    // A file naming a file could name itself: one level only.
    if (lines.some((l) => /^file:/i.test(l))) throw fail(`broker URI file ${path}: a file: URI cannot list another file:`);
    if (lines.length === 1) return parseBrokerList(lines[0] as string, parseServer, fail);
    if (lines.some((l) => /^failover:/i.test(l))) throw fail(`broker URI file ${path}: a failover URI must be alone in the file`);
    return { servers: lines.map((l) => parseServer(l, ` in ${path}`)), ...FAILOVER_DEFAULTS };
  }
  if (/^failover:/i.test(u)) return parseFailover(u, parseServer, fail);
  return { servers: [parseServer(u, '')], ...SINGLE };
}

/** The reconnection settings of a broker module's options, which override the URI's (milliseconds). */
export interface BrokerReconnectOptions {
  /** Milliseconds before the first attempt after a loss (default: the URI's initialReconnectDelay). */
  initialDelay?: number;
  maxDelay?: number;
  multiplier?: number;
  /** Attempts before giving up; -1 (default) never gives up. */
  maxAttempts?: number;
}

/**
 * The wait between connection attempts: starts at `initial`, multiplied by `multiplier` after each failed
 * attempt (grow()), never above `max`. A wait (nextWait()) is jittered between half and one and a half times
 * the delay, so that many agents cut off together do not all come back together.
 */
export class Backoff {
  private delay: number;

  constructor(
    initial: number,
    readonly max: number,
    readonly multiplier: number,
  ) {
    this.delay = initial;
  }

  /**
   * The backoff of a connection loop: `maxDelay` and `multiplier` from the module's reconnection options, else
   * from the URI; no growth at all when the URI says useExponentialBackOff=false.
   */
  static of(initial: number, uri: FailoverSettings, reconnect: BrokerReconnectOptions | false | undefined): Backoff {
    const r = reconnect === false ? {} : (reconnect ?? {});
    const multiplier = uri.useExponentialBackOff ? (r.multiplier ?? uri.backOffMultiplier) : 1;
    return new Backoff(initial, r.maxDelay ?? uri.maxReconnectDelay, multiplier);
  }

  /** The delay now, before jitter. */
  get current(): number {
    return this.delay;
  }

  /** Milliseconds to wait before the next attempt: the delay times a random 0.5 to 1.5, at most `max`. */
  nextWait(): number {
    return Math.min(this.max, this.delay * (0.5 + Math.random()));
  }

  /** After a failed attempt: the delay times the multiplier, at most `max`. */
  grow(): void {
    this.delay = Math.min(this.max, this.delay * this.multiplier);
  }
}

/** Resolves after `ms` milliseconds, or at once when `signal` aborts (never rejects: the caller checks why it woke). */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** A shuffled copy of `list` (Fisher-Yates): the order in which to try the servers of a randomized failover list. */
export function shuffle<T>(list: readonly T[]): T[] {
  const a = [...list];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}
