import {
  type BrokerList,
  type BrokerServer,
  BrokerUriError,
  parseBrokerUri,
  type SchemeTable,
  type UriSyntax,
} from '@msgbricks/agent';

export interface AmqpServer extends BrokerServer {
  /**
   * The virtual host of the URI's path (`amqp://h/prod` -> `prod`, percent-decoded), undefined when the path is
   * absent, empty or `/` (the broker's default). Sent as the AMQP open `hostname` `vhost:NAME`, which RabbitMQ
   * 3.10 takes as the virtual host.
   */
  readonly vhost: string | undefined;
}

/** What a broker URI says: where to connect, and the failover settings (stompclt's names and defaults, as the STOMP module). */
export interface AmqpUri extends BrokerList<AmqpServer> {}

/** The AMQP schemes; python-amqpclt parses tcp:// as well (its regular expression accepts any scheme), ssl:// as in stompclt. */
export const AMQP_SCHEMES: SchemeTable = {
  amqp: { tls: false, port: 5672 },
  amqps: { tls: true, port: 5671 },
  tcp: { tls: false, port: 5672 },
  ssl: { tls: true, port: 5671 },
};

/** How AMQP broker URIs are written: the path is the virtual host. */
export const AMQP_URI: UriSyntax<AmqpServer> = {
  schemes: AMQP_SCHEMES,
  form: 'amqp://host[:port][/vhost]',
  server: (base, path, where) => {
    if (path.length > 1) {
      throw new BrokerUriError(
        `invalid virtual host in broker URI ${JSON.stringify(base.uri)}${where}: write a / inside it as %2F`,
      );
    }
    const vhost = path[0] ?? '';
    return { ...base, vhost: vhost === '' || vhost === '/' ? undefined : vhost };
  },
};

/**
 * Parses an AMQP broker URI: `amqp://host[:port][/vhost]` (default port 5672), `amqps://...` (TLS, 5671),
 * `tcp://` as amqp and `ssl://` as amqps, `failover:(uri1,uri2,...)?options` with the STOMP module's failover
 * options and defaults, or `file:PATH` (one URI per line, `#` comments; a single line may itself be a failover
 * URI). A plain URI gets a single attempt; a failover URI unlimited attempts unless `maxReconnectAttempts` says
 * otherwise. Errors are the agent's BrokerUriError.
 */
export function parseAmqpUri(uri: string): AmqpUri {
  return parseBrokerUri(uri, AMQP_URI);
}

/** The AMQP open `hostname` for a server: `vhost:NAME` when its URI names a virtual host. */
export function openHostname(server: AmqpServer): string | undefined {
  return server.vhost === undefined ? undefined : `vhost:${server.vhost}`;
}
