import { type BrokerList, parseBrokerList } from '@msgbricks/agent';
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
export interface BrokerUri extends BrokerList<BrokerServer> {}

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

/**
 * Parses a broker URI as stompclt does: `tcp://h:p` or `stomp://h:p` (plain), any scheme containing `ssl`
 * (`ssl://`, `stomp+ssl://`) for TLS, `failover:(u1,u2)?options` with ActiveMQ's failover options, or
 * `file:PATH` (one URI per line, `#` comments; a single line may itself be a failover URI). A plain URI gets a
 * single attempt; a failover URI unlimited attempts unless `maxReconnectAttempts` says otherwise.
 */
export function parseBrokerUri(uri: string): BrokerUri {
  return parseBrokerList(uri, parseServer, (message) => new BrokerUriError(message));
}
