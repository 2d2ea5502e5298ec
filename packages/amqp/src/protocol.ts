/**
 * AMQP 1.0 as the commands see it (the agent's BrokerProtocol): its schemes and its modules made from the
 * normalised broker settings. Heart-beats: the idle time-out asked of the broker is the interval we want
 * something at least every.
 */
import type { BrokerProtocol, BrokerSettings } from '@msgbricks/agent';
import type { AmqpConnectionEvent, AmqpConnectionOptions } from './connection';
import { AmqpIncoming } from './incoming';
import { AmqpOutgoing } from './outgoing';
import { AMQP_SCHEMES, parseAmqpUri } from './uri';

function connectionOptions(s: BrokerSettings): AmqpConnectionOptions {
  return {
    uri: s.uri,
    auth: s.auth,
    tls: s.tls,
    reconnect: s.reconnect,
    idleTimeout: s.heartBeat?.[1],
    connectTimeout: s.connectTimeout,
    disconnectTimeout: s.disconnectTimeout,
    onEvent: s.onEvent,
  };
}

export const AMQP_PROTOCOL: BrokerProtocol = {
  name: 'AMQP 1.0',
  schemes: AMQP_SCHEMES,
  parseUri: parseAmqpUri,
  // STOMP's: the CONNECT frame's headers, the broker type's prefetch header, its debug words, UNSUBSCRIBE.
  ignores: ['connectHeaders', 'type', 'debug', 'unsubscribe'],
  incoming: (settings, incoming) =>
    new AmqpIncoming(connectionOptions(settings), {
      subscribe: incoming.subscribe,
      prefetch: incoming.prefetch,
      ack: incoming.ack,
    }),
  outgoing: (settings) => new AmqpOutgoing(connectionOptions(settings)),
  logLine: (event) => {
    const e = event as AmqpConnectionEvent;
    if (e.type !== 'link-error') return undefined;
    return { level: 'warn', fields: { address: e.address, err: e.error.message }, message: 'broker refused or dropped a link' };
  },
};
