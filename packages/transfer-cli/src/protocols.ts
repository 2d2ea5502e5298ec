/**
 * The broker protocols the transfer commands speak, and the one place a broker URI picks its protocol. Each
 * protocol is its broker package's descriptor (the agent's BrokerProtocol); adding one is adding it to PROTOCOLS.
 */
import { type BrokerProtocol, serverSchemes, uriScheme } from '@msgbricks/agent';
import { AMQP_PROTOCOL } from '@msgbricks/amqp';
import { STOMP_PROTOCOL } from '@msgbricks/stomp';

/** Every protocol the commands speak. */
export const PROTOCOLS: readonly BrokerProtocol[] = [STOMP_PROTOCOL, AMQP_PROTOCOL];

/** The protocol a scheme means: the one protocol whose table has it, else (tcp://, ssl://, none) the fallback. */
function schemeProtocol(scheme: string | undefined, fallback: BrokerProtocol): BrokerProtocol {
  const claiming = PROTOCOLS.filter((p) => scheme !== undefined && Object.hasOwn(p.schemes, scheme));
  return claiming.length === 1 ? (claiming[0] as BrokerProtocol) : fallback;
}

/**
 * The protocol a broker URI speaks, from its scheme: a scheme only one protocol has (stomp://, stomp+ssl://,
 * amqp://, amqps://...) names it; tcp://, ssl:// and file: lists mean the command's own protocol (STOMP for
 * stompclt, AMQP for amqpclt, as the tools they replace). A failover: list takes the protocol of its members,
 * which must agree (one connection cannot alternate between two protocols): an Error saying so otherwise.
 */
export function brokerProtocol(uri: string, fallback: BrokerProtocol): BrokerProtocol {
  const schemes = uriScheme(uri) === 'failover' ? serverSchemes(uri) : [uriScheme(uri)];
  const found = new Set(schemes.map((s) => schemeProtocol(s, fallback)));
  if (found.size > 1) {
    throw new Error(`a failover list mixes ${[...found].map((p) => p.name).join(' and ')} brokers (${uri})`);
  }
  return found.values().next().value ?? fallback;
}

/** Checks a broker URI as the module of its protocol will parse it (the option check's). */
export function checkBrokerUri(uri: string, fallback: BrokerProtocol): void {
  brokerProtocol(uri, fallback).parseUri(uri);
}
