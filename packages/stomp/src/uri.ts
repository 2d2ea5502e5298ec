import { type BrokerList, type BrokerServer, parseBrokerUri, type SchemeTable, type UriSyntax } from '@msgbricks/agent';

/**
 * The STOMP schemes: stompclt's (`tcp`, `ssl`, `stomp`, `stomp+ssl`), ActiveMQ's transport names (`stomp+nio`,
 * `stomp+nio+ssl`...) and `tls` as a synonym of `ssl`. 61613 is STOMP's port, 61614 STOMP over TLS's.
 */
export const STOMP_SCHEMES: SchemeTable = {
  tcp: { tls: false, port: 61613 },
  stomp: { tls: false, port: 61613 },
  'stomp+tcp': { tls: false, port: 61613 },
  nio: { tls: false, port: 61613 },
  'stomp+nio': { tls: false, port: 61613 },
  ssl: { tls: true, port: 61614 },
  tls: { tls: true, port: 61614 },
  'stomp+ssl': { tls: true, port: 61614 },
  'stomp+tls': { tls: true, port: 61614 },
  'nio+ssl': { tls: true, port: 61614 },
  'stomp+nio+ssl': { tls: true, port: 61614 },
};

/** How STOMP broker URIs are written: no path (the virtual host is the CONNECT frame's `host` header). */
export const STOMP_URI: UriSyntax<BrokerServer> = { schemes: STOMP_SCHEMES, form: 'stomp://host[:port]' };

/** What a STOMP broker URI says: where to connect, and the failover settings (stompclt's names and defaults). */
export interface StompUri extends BrokerList<BrokerServer> {}

/**
 * Parses a STOMP broker URI as stompclt does: `tcp://h:p` or `stomp://h:p` (plain), `ssl://`, `stomp+ssl://` (TLS;
 * see STOMP_SCHEMES), `failover:(u1,u2)?options` with ActiveMQ's failover options, or `file:PATH` (one URI per
 * line, `#` comments; a single line may itself be a failover URI). A plain URI gets a single attempt; a failover URI
 * unlimited attempts unless `maxReconnectAttempts` says otherwise. Errors are the agent's BrokerUriError.
 */
export function parseStompUri(uri: string): StompUri {
  return parseBrokerUri(uri, STOMP_URI);
}
