/**
 * The AMQP 1.0 side of the transfer commands: a broker URI that speaks AMQP (see protocol.ts) becomes an
 * AmqpIncoming or AmqpOutgoing of @msgbricks/amqp, configured from the same `*-broker-*` options as a STOMP broker.
 */
import type { AgentOptions, Incoming, Outgoing } from '@msgbricks/agent';
import {
  AmqpConnection,
  type AmqpConnectionOptions,
  AmqpIncoming,
  AmqpOutgoing,
  type AmqpTlsOptions,
  type AmqpUri,
  parseAmqpUri,
} from '@msgbricks/amqp';
import { CliError } from './errors';
import type { Logger } from './logger';
import type { BrokerMetrics } from './metrics';

type Side = 'incoming' | 'outgoing';

/** IO::Socket::SSL names of `*-broker-sockopts`, as for STOMP. */
const SOCKOPT_TLS: Readonly<Record<string, keyof AmqpTlsOptions>> = {
  SSL_ca_file: 'caFile',
  SSL_cert_file: 'certFile',
  SSL_key_file: 'keyFile',
  SSL_passwd: 'passphrase',
  SSL_hostname: 'servername',
};

/** Options that mean something for STOMP only: given for an AMQP broker, they are ignored with a warning. */
const STOMP_ONLY = ['connect', 'stomp-debug', 'type'] as const;

const ms = (seconds: number | undefined): number | undefined => (seconds === undefined ? undefined : seconds * 1000);

function optionError(key: string, err: unknown): CliError {
  return new CliError('ERR_TRANSFER_OPTIONS', `${key}: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
  });
}

/**
 * The AMQP connection of one side: URI (failover), credentials (plain: SASL PLAIN; x509: TLS client certificate
 * and SASL EXTERNAL; none: ANONYMOUS), TLS socket options, heart-beats (--heart-beat: an idle time-out of
 * --timeout-server seconds asked of the broker), --timeout-connect/-disconnect and the reconnection settings.
 */
export function makeAmqpConnectionOptions(
  options: AgentOptions,
  side: Side,
  logger?: Logger,
  metrics?: BrokerMetrics,
): AmqpConnectionOptions {
  const p = `${side}-broker` as const;
  const text = options[`${p}-uri`];
  if (text === undefined) throw new CliError('ERR_TRANSFER_OPTIONS', `no ${side} broker URI`);
  let uri: AmqpUri;
  try {
    uri = parseAmqpUri(text);
  } catch (err) {
    throw optionError(`${p}-uri`, err);
  }
  const r = options[`${p}-reconnect`];
  if (r?.['max-attempts'] !== undefined) uri = { ...uri, maxReconnectAttempts: r['max-attempts'] };
  if (r?.['initial-delay'] !== undefined) uri = { ...uri, initialReconnectDelay: r['initial-delay'] * 1000 };
  if (r?.['max-delay'] !== undefined) uri = { ...uri, maxReconnectDelay: r['max-delay'] * 1000 };
  const tls: Record<string, string | boolean> = {};
  for (const [k, v] of Object.entries(options[`${p}-sockopts`] ?? {})) {
    const key = SOCKOPT_TLS[k];
    if (key !== undefined) tls[key] = v;
    else if (k === 'SSL_verify_mode') tls.rejectUnauthorized = v !== '0' && !/^SSL_VERIFY_NONE$/i.test(v);
    else logger?.warn({ option: `${p}-sockopts`, key: k }, 'socket option ignored');
  }
  for (const o of STOMP_ONLY) {
    if (options[`${p}-${o}`] !== undefined) logger?.warn({ option: `${p}-${o}` }, 'a STOMP option, ignored for an AMQP broker');
  }
  if (side === 'incoming' && options.unsubscribe !== undefined) {
    logger?.warn({ option: 'unsubscribe' }, 'a STOMP option, ignored for an AMQP broker');
  }
  return {
    uri,
    auth: options[`${p}-auth`],
    tls: Object.keys(tls).length > 0 ? (tls as AmqpTlsOptions) : undefined,
    idleTimeout: options['heart-beat'] ? options['timeout-server'] * 1000 : undefined,
    connectTimeout: ms(options['timeout-connect']),
    disconnectTimeout: ms(options['timeout-disconnect']),
    reconnect: {
      initialDelay: ms(r?.['initial-delay']),
      maxDelay: ms(r?.['max-delay']),
      multiplier: r?.multiplier,
      maxAttempts: r?.['max-attempts'],
    },
    onEvent: (e) => {
      if (e.type === 'reconnected') metrics?.reconnected(side);
      if (logger === undefined) return;
      // The same lines as for STOMP: operators (and tests) read one vocabulary.
      switch (e.type) {
        case 'connected':
          logger.info(
            { side, server: e.server, type: e.brokerType, version: e.version, sasl: e.mechanism },
            'connected to the broker',
          );
          break;
        case 'connect-failed':
          logger.warn({ side, server: e.server, err: e.error.message }, 'cannot connect to the broker');
          break;
        case 'lost':
          logger.warn({ side, err: e.error.message }, 'broker connection lost: reconnecting');
          break;
        case 'reconnected':
          logger.info({ side, server: e.server }, 'broker connection back');
          break;
        case 'link-error':
          logger.warn({ side, address: e.address, err: e.error.message }, 'broker refused or dropped a link');
          break;
      }
    },
  };
}

function makeAmqpConnection(options: AgentOptions, side: Side, logger?: Logger, metrics?: BrokerMetrics): AmqpConnection {
  try {
    return new AmqpConnection(makeAmqpConnectionOptions(options, side, logger, metrics));
  } catch (err) {
    if (err instanceof CliError) throw err;
    // Unreadable certificate files, an x509 credential without TLS.
    throw optionError(`${side}-broker`, err);
  }
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
