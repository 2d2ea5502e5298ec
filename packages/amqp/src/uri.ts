import { AmqpUriError } from './errors';

export interface AmqpServer {
  readonly host: string;
  readonly port: number;
  readonly ssl: boolean;
  /**
   * The virtual host of the URI's path (`amqp://h/prod` -> `prod`, percent-decoded), undefined when the path is
   * absent, empty or `/` (the broker's default). Sent as the AMQP open `hostname` `vhost:NAME`, which RabbitMQ
   * 3.10 takes as the virtual host.
   */
  readonly vhost: string | undefined;
  /** The URI this server came from, for messages. */
  readonly uri: string;
}

/** What a broker URI says: where to connect, and the failover settings (the names and defaults of the STOMP module). */
export interface AmqpUri {
  readonly servers: readonly AmqpServer[];
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
  /** True for a `failover:` URI. */
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

const SERVER = /^([a-z][a-z0-9+.-]*):\/\/(?:([^@/?#]*)@)?(\[[0-9a-f:.]+\]|[^:/?#@\s[\]]+)(?::(\d+))?(\/[^?#]*)?([?#].*)?$/i;
// python-amqpclt parses tcp:// as well (its regular expression accepts any scheme); ssl:// as in stompclt.
const SCHEMES: Readonly<Record<string, { ssl: boolean; port: number }>> = {
  amqp: { ssl: false, port: 5672 },
  tcp: { ssl: false, port: 5672 },
  amqps: { ssl: true, port: 5671 },
  ssl: { ssl: true, port: 5671 },
};

function parseServer(uri: string, where: string): AmqpServer {
  const text = uri.trim();
  const m = SERVER.exec(text);
  if (m === null) {
    throw new AmqpUriError(`invalid broker URI ${JSON.stringify(uri)}${where}: expected amqp://host[:port][/vhost]`);
  }
  const scheme = (m[1] as string).toLowerCase();
  const kind = SCHEMES[scheme];
  if (kind === undefined) {
    throw new AmqpUriError(
      `unsupported scheme ${JSON.stringify(scheme)} in broker URI ${JSON.stringify(uri)}${where}: expected amqp, amqps, tcp or ssl`,
    );
  }
  if (m[2] !== undefined) {
    throw new AmqpUriError(
      `broker URI ${JSON.stringify(uri)}${where} holds credentials: give them as auth (plain name=... pass=...)`,
    );
  }
  if (m[6] !== undefined) {
    throw new AmqpUriError(`broker URI ${JSON.stringify(uri)}${where} has a query or fragment: only failover: URIs take options`);
  }
  let host = m[3] as string;
  if (host.startsWith('[')) host = host.slice(1, -1);
  const port = m[4] === undefined ? kind.port : Number(m[4]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new AmqpUriError(`invalid port ${m[4]} in broker URI ${JSON.stringify(uri)}${where}`);
  }
  return { host, port, ssl: kind.ssl, vhost: parseVhost(m[5] ?? '', uri, where), uri: text };
}

function parseVhost(path: string, uri: string, where: string): string | undefined {
  const raw = path.slice(1);
  if (raw.includes('/')) {
    throw new AmqpUriError(`invalid virtual host in broker URI ${JSON.stringify(uri)}${where}: write a / inside it as %2F`);
  }
  let vhost: string;
  try {
    vhost = decodeURIComponent(raw);
  } catch {
    throw new AmqpUriError(`invalid percent-encoding in the virtual host of broker URI ${JSON.stringify(uri)}${where}`);
  }
  return vhost === '' || vhost === '/' ? undefined : vhost;
}

function parseNumberOption(name: string, value: string, min: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min) {
    throw new AmqpUriError(`invalid failover option ${name}=${value}: expected a number >= ${min}`);
  }
  return n;
}

function parseBoolean(name: string, value: string): boolean {
  if (/^(true|1|yes)$/i.test(value)) return true;
  if (/^(false|0|no)$/i.test(value)) return false;
  throw new AmqpUriError(`invalid failover option ${name}=${value}: expected true or false`);
}

function parseFailover(uri: string): AmqpUri {
  const m = /^failover:(?:\(([^()]*)\)|([^()?]+))(?:\?(.*))?$/i.exec(uri);
  if (m === null)
    throw new AmqpUriError(`invalid failover URI ${JSON.stringify(uri)}: expected failover:(uri1,uri2,...)?options`);
  const list = (m[1] ?? m[2] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (list.length === 0) throw new AmqpUriError(`failover URI ${JSON.stringify(uri)} lists no broker`);
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
        // As the STOMP module (and Net::STOMP::Client): unknown options are ignored.
        break;
    }
  }
  return { servers, ...opts, failover: true };
}

/**
 * Parses an AMQP broker URI: `amqp://host[:port][/vhost]` (default port 5672), `amqps://...` (TLS, 5671),
 * `tcp://` as amqp and `ssl://` as amqps, or `failover:(uri1,uri2,...)?options` with the STOMP module's
 * failover options and defaults. A plain URI gets a single attempt; a failover URI unlimited attempts unless
 * `maxReconnectAttempts` says otherwise.
 */
export function parseAmqpUri(uri: string): AmqpUri {
  if (typeof uri !== 'string' || uri.trim() === '') throw new AmqpUriError('empty broker URI');
  const u = uri.trim();
  if (/^failover:/i.test(u)) return parseFailover(u);
  return { servers: [parseServer(u, '')], ...DEFAULTS, randomize: false, maxReconnectAttempts: 0, failover: false };
}

/** The AMQP open `hostname` for a server: `vhost:NAME` when its URI names a virtual host. */
export function openHostname(server: AmqpServer): string | undefined {
  return server.vhost === undefined ? undefined : `vhost:${server.vhost}`;
}
