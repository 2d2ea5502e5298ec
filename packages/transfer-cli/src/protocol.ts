import { CliError } from './errors';

export type Protocol = 'stomp' | 'amqp';

const STOMP_SCHEMES = new Set(['stomp', 'stomp+ssl', 'stomp+tcp', 'stomp+nio', 'nio', 'udp']);
const AMQP_SCHEMES = new Set(['amqp', 'amqps']);

function schemeProtocol(uri: string, fallback: Protocol): Protocol {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri.trim())?.[1]?.toLowerCase();
  if (scheme !== undefined && STOMP_SCHEMES.has(scheme)) return 'stomp';
  if (scheme !== undefined && AMQP_SCHEMES.has(scheme)) return 'amqp';
  return fallback;
}

/**
 * The protocol a broker URI speaks, from its scheme: stomp://, stomp+ssl:// (and the other stomp+ forms, udp://)
 * are STOMP; amqp:// and amqps:// are AMQP 1.0; tcp://, ssl:// and file: lists mean the command's own protocol
 * (STOMP for stompclt, AMQP for amqpclt, as the tools they replace). A failover: list takes the protocol of its
 * members, which must agree: one connection cannot alternate between two protocols.
 */
export function brokerProtocol(uri: string, fallback: Protocol, key = 'broker-uri'): Protocol {
  const failover = /^failover:\(?([^)?]*)\)?/i.exec(uri.trim());
  if (failover === null) return schemeProtocol(uri, fallback);
  const members = (failover[1] ?? '').split(',').filter((m) => m.trim() !== '');
  const found = new Set(members.map((m) => schemeProtocol(m, fallback)));
  if (found.size > 1) {
    throw new CliError('ERR_TRANSFER_OPTIONS', `${key}: a failover list mixes STOMP and AMQP brokers (${uri})`);
  }
  return found.values().next().value ?? fallback;
}
