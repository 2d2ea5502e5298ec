/**
 * The AMQP 1.0 side of the transfer commands: a broker URI that speaks AMQP (see protocol.ts) becomes an
 * AmqpIncoming or AmqpOutgoing of @msgbricks/amqp, configured from the same `*-broker-*` options as a STOMP broker.
 */
import type { AgentOptions, Incoming, Outgoing } from '@msgbricks/agent';
import {
  AmqpConnection,
  type AmqpConnectionEvent,
  type AmqpConnectionOptions,
  AmqpIncoming,
  AmqpOutgoing,
  parseAmqpUri,
} from '@msgbricks/amqp';
import {
  brokerEvents,
  brokerReconnect,
  brokerTls,
  brokerUri,
  ms,
  newBrokerConnection,
  optionError,
  type Side,
} from './brokeroptions';
import type { Logger } from './logger';
import type { BrokerMetrics } from './metrics';

/** Options that mean something for STOMP only: given for an AMQP broker, they are ignored with a warning. */
const STOMP_ONLY = ['connect', 'stomp-debug', 'type'] as const;

/**
 * The AMQP connection of one side: URI (failover, file:), credentials (plain: SASL PLAIN; x509: TLS client
 * certificate and SASL EXTERNAL; none: ANONYMOUS), TLS socket options, heart-beats (--heart-beat: an idle time-out
 * of --timeout-server seconds asked of the broker), --timeout-connect/-disconnect and the reconnection settings.
 */
export function makeAmqpConnectionOptions(
  options: AgentOptions,
  side: Side,
  logger?: Logger,
  metrics?: BrokerMetrics,
): AmqpConnectionOptions {
  const p = `${side}-broker` as const;
  const uri = brokerUri(options, side, parseAmqpUri);
  const tls = brokerTls(options, side, logger);
  for (const o of STOMP_ONLY) {
    if (options[`${p}-${o}`] !== undefined) logger?.warn({ option: `${p}-${o}` }, 'a STOMP option, ignored for an AMQP broker');
  }
  if (side === 'incoming' && options.unsubscribe !== undefined) {
    logger?.warn({ option: 'unsubscribe' }, 'a STOMP option, ignored for an AMQP broker');
  }
  return {
    uri,
    auth: options[`${p}-auth`],
    tls,
    idleTimeout: options['heart-beat'] ? options['timeout-server'] * 1000 : undefined,
    connectTimeout: ms(options['timeout-connect']),
    disconnectTimeout: ms(options['timeout-disconnect']),
    reconnect: brokerReconnect(options, side),
    onEvent: brokerEvents<AmqpConnectionEvent>(side, logger, metrics, (e, log) => {
      if (e.type === 'link-error')
        log.warn({ side, address: e.address, err: e.error.message }, 'broker refused or dropped a link');
    }),
  };
}

function makeAmqpConnection(options: AgentOptions, side: Side, logger?: Logger, metrics?: BrokerMetrics): AmqpConnection {
  // Unreadable certificate files, an x509 credential without TLS: option errors.
  return newBrokerConnection(side, () => new AmqpConnection(makeAmqpConnectionOptions(options, side, logger, metrics)));
}

/** AMQP receivers for the `--subscribe` entries: accepted once safe with --reliable, on arrival without. */
export function makeAmqpIncoming(options: AgentOptions, logger?: Logger, metrics?: BrokerMetrics): Incoming {
  const connection = makeAmqpConnection(options, 'incoming', logger, metrics);
  try {
    return new AmqpIncoming(connection, {
      subscribe: options.subscribe,
      prefetch: options.prefetch,
      ack: options.reliable ? 'client' : 'auto',
    });
  } catch (err) {
    throw optionError('subscribe', err);
  }
}

/** An AMQP sender per destination: a message is safe once the broker accepted it. */
export function makeAmqpOutgoing(options: AgentOptions, logger?: Logger, metrics?: BrokerMetrics): Outgoing {
  return new AmqpOutgoing(makeAmqpConnection(options, 'outgoing', logger, metrics));
}
