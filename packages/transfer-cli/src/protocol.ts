import { type SchemeTable, serverSchemes, uriScheme } from '@msgbricks/agent';
import { AMQP_SCHEMES, parseAmqpUri } from '@msgbricks/amqp';
import { parseStompUri, STOMP_SCHEMES } from '@msgbricks/stomp';
import { CliError } from './errors';

export type Protocol = 'stomp' | 'amqp';

const SCHEMES: Readonly<Record<Protocol, SchemeTable>> = { stomp: STOMP_SCHEMES, amqp: AMQP_SCHEMES };

/** The protocol a scheme means: the one protocol whose table has it, else (tcp://, ssl://, none) the fallback. */
function schemeProtocol(scheme: string | undefined, fallback: Protocol): Protocol {
  const claiming = (Object.keys(SCHEMES) as Protocol[]).filter((p) => scheme !== undefined && Object.hasOwn(SCHEMES[p], scheme));
  return claiming.length === 1 ? (claiming[0] as Protocol) : fallback;
}

/**
 * The protocol a broker URI speaks, from its scheme: a scheme only one protocol has (stomp://, stomp+ssl://,
 * amqp://, amqps://...) names it; tcp://, ssl:// and file: lists mean the command's own protocol (STOMP for
 * stompclt, AMQP for amqpclt, as the tools they replace). A failover: list takes the protocol of its members,
 * which must agree: one connection cannot alternate between two protocols.
 */
export function brokerProtocol(uri: string, fallback: Protocol, key = 'broker-uri'): Protocol {
  const found = protocols(uri, fallback);
  if (found.size > 1) {
    throw new CliError('ERR_TRANSFER_OPTIONS', `${key}: a failover list mixes STOMP and AMQP brokers (${uri})`);
  }
  return found.values().next().value ?? fallback;
}

function protocols(uri: string, fallback: Protocol): Set<Protocol> {
  if (uriScheme(uri) !== 'failover') return new Set([schemeProtocol(uriScheme(uri), fallback)]);
  return new Set(serverSchemes(uri).map((s) => schemeProtocol(s, fallback)));
}

/** Checks a broker URI as the module of its protocol will parse it (the option check's checkUri). */
export function checkBrokerUri(uri: string, fallback: Protocol): void {
  const found = protocols(uri, fallback);
  if (found.size > 1) throw new Error('a failover list mixes STOMP and AMQP brokers');
  if (found.has('amqp')) parseAmqpUri(uri);
  else parseStompUri(uri);
}
