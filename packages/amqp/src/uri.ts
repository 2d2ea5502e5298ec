import { type BrokerList, parseBrokerList } from '@msgbricks/agent';
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

/** What a broker URI says: where to connect, and the failover settings (stompclt's names and defaults, as the STOMP module). */
export interface AmqpUri extends BrokerList<AmqpServer> {}

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

/**
 * Parses an AMQP broker URI: `amqp://host[:port][/vhost]` (default port 5672), `amqps://...` (TLS, 5671),
 * `tcp://` as amqp and `ssl://` as amqps, `failover:(uri1,uri2,...)?options` with the STOMP module's failover
 * options and defaults, or `file:PATH` (one URI per line, `#` comments; a single line may itself be a failover
 * URI). A plain URI gets a single attempt; a failover URI unlimited attempts unless `maxReconnectAttempts` says
 * otherwise.
 */
export function parseAmqpUri(uri: string): AmqpUri {
  return parseBrokerList(uri, parseServer, (message) => new AmqpUriError(message));
}

/** The AMQP open `hostname` for a server: `vhost:NAME` when its URI names a virtual host. */
export function openHostname(server: AmqpServer): string | undefined {
  return server.vhost === undefined ? undefined : `vhost:${server.vhost}`;
}
