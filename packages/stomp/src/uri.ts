import { readFileSync } from 'node:fs';
import { MsgbricksError } from '@msgbricks/errors';

/** A broker URI that cannot be used. */
export class BrokerUriError extends MsgbricksError {
  constructor(message: string) {
    super('ERR_STOMP_URI', message);
  }
}

export interface BrokerServer {
  readonly host: string;
  readonly port: number;
  readonly ssl: boolean;
  /** The URI this server came from, for messages. */
  readonly uri: string;
}

/** What a broker URI says: where to connect, and the failover settings (stompclt's names and defaults). */
export interface BrokerUri {
  readonly servers: readonly BrokerServer[];
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

const DEFAULTS = {
  randomize: true,
  initialReconnectDelay: 10,
  maxReconnectDelay: 30_000,
  backOffMultiplier: 2,
  useExponentialBackOff: true,
  maxReconnectAttempts: -1,
};

const SERVER = /^([a-z][a-z0-9+.-]*):\/\/(\[[0-9a-f:.]+\]|[^:/?#\s[\]]+)(?::(\d+))?\/?$/i;
const PLAIN_SCHEMES = new Set(['tcp', 'stomp', 'nio', 'stomp+nio', 'stomp+tcp']);

function parseServer(uri: string, where: string): BrokerServer {
  const m = SERVER.exec(uri.trim());
  if (m === null) throw new BrokerUriError(`invalid broker URI ${JSON.stringify(uri)}${where}: expected scheme://host:port`);
  const scheme = (m[1] as string).toLowerCase();
  // stompclt: SSL whenever the scheme contains "ssl"; tls is accepted as a synonym.
  const ssl = /ssl|tls/.test(scheme);
  if (!ssl && !PLAIN_SCHEMES.has(scheme)) {
    throw new BrokerUriError(`unsupported scheme ${JSON.stringify(scheme)} in broker URI ${JSON.stringify(uri)}${where}`);
  }
  let host = m[2] as string;
  if (host.startsWith('[')) host = host.slice(1, -1);
  const port = m[3] === undefined ? (ssl ? 61614 : 61613) : Number(m[3]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new BrokerUriError(`invalid port ${m[3]} in broker URI ${JSON.stringify(uri)}${where}`);
  }
  return { host, port, ssl, uri: uri.trim() };
}

function parseNumberOption(name: string, value: string, min: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min) {
    throw new BrokerUriError(`invalid failover option ${name}=${value}: expected a number >= ${min}`);
  }
  return n;
}

function parseBoolean(name: string, value: string): boolean {
  if (/^(true|1|yes)$/i.test(value)) return true;
  if (/^(false|0|no)$/i.test(value)) return false;
  throw new BrokerUriError(`invalid failover option ${name}=${value}: expected true or false`);
}

function parseFailover(uri: string): BrokerUri {
  const m = /^failover:(?:\(([^()]*)\)|([^()?]+))(?:\?(.*))?$/i.exec(uri);
  if (m === null)
    throw new BrokerUriError(`invalid failover URI ${JSON.stringify(uri)}: expected failover:(uri1,uri2,...)?options`);
  const list = (m[1] ?? m[2] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (list.length === 0) throw new BrokerUriError(`failover URI ${JSON.stringify(uri)} lists no broker`);
  const servers = list.map((s) => parseServer(s, ` in ${uri}`));
  const opts = { ...DEFAULTS };
  for (const pair of (m[3] ?? '').split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq));
    const value = decodeURIComponent(eq < 0 ? '' : pair.slice(eq + 1));
    switch (key) {
      case 'randomize':
        opts.randomize = parseBoolean(key, value);
        break;
      case 'useExponentialBackOff':
        opts.useExponentialBackOff = parseBoolean(key, value);
        break;
      case 'initialReconnectDelay':
        opts.initialReconnectDelay = parseNumberOption(key, value, 0);
        break;
      case 'maxReconnectDelay':
        opts.maxReconnectDelay = parseNumberOption(key, value, 0);
        break;
      case 'backOffMultiplier':
        opts.backOffMultiplier = parseNumberOption(key, value, 1);
        break;
      case 'maxReconnectAttempts':
        opts.maxReconnectAttempts = parseNumberOption(key, value, -1);
        break;
      default:
        // As Net::STOMP::Client: unknown options are ignored.
        break;
    }
  }
  return { servers, ...opts, failover: true };
}

/**
 * Parses a broker URI as stompclt does: `tcp://h:p` or `stomp://h:p` (plain), any scheme containing `ssl`
 * (`ssl://`, `stomp+ssl://`) for TLS, `failover:(u1,u2)?options` with ActiveMQ's failover options, or
 * `file:PATH` (one URI per line, `#` comments; a single line may itself be a failover URI). A plain URI gets a
 * single attempt; a failover URI unlimited attempts unless `maxReconnectAttempts` says otherwise.
 */
export function parseBrokerUri(uri: string): BrokerUri {
  if (typeof uri !== 'string' || uri.trim() === '') throw new BrokerUriError('empty broker URI');
  const u = uri.trim();
  if (/^file:/i.test(u)) {
    const path = u.slice(5);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new BrokerUriError(`cannot read broker URI file ${path}: ${(err as Error).message}`);
    }
    const lines = text
      .split(/\r?\n/)
      .map((l) => l.replace(/#.*/, '').trim())
      .filter((l) => l !== '');
    if (lines.length === 0) throw new BrokerUriError(`broker URI file ${path} lists no broker`);
    if (lines.length === 1) return parseBrokerUri(lines[0] as string);
    if (lines.some((l) => /^failover:/i.test(l))) {
      throw new BrokerUriError(`broker URI file ${path}: a failover URI must be alone in the file`);
    }
    return { servers: lines.map((l) => parseServer(l, ` in ${path}`)), ...DEFAULTS, failover: true };
  }
  if (/^failover:/i.test(u)) return parseFailover(u);
  return { servers: [parseServer(u, '')], ...DEFAULTS, randomize: false, maxReconnectAttempts: 0, failover: false };
}
