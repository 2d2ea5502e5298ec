/**
 * What the STOMP (modules.ts) and AMQP (amqp.ts) connections make alike of the `*-broker-*` options: the URI with
 * the `*-broker-reconnect` overrides, the TLS socket options, the reconnection settings, the log lines of the
 * connection events, and how a bad option is reported. Operators (and tests) read one vocabulary whatever the
 * protocol.
 */
import type { AgentOptions, BrokerReconnectOptions, FailoverSettings, TlsSettings } from '@msgbricks/agent';
import { CliError } from './errors';
import type { Logger } from './logger';
import type { BrokerMetrics } from './metrics';

export type Side = 'incoming' | 'outgoing';

/** Seconds (the options' unit) as milliseconds (the connections'). */
export const ms = (seconds: number | undefined): number | undefined => (seconds === undefined ? undefined : seconds * 1000);

/** A bad `key` option, with why. */
export function optionError(key: string, err: unknown): CliError {
  return new CliError('ERR_TRANSFER_OPTIONS', `${key}: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
  });
}

/**
 * The broker URI of a side, parsed by the protocol's parser, with the `*-broker-reconnect` settings in it:
 * `max-attempts` also bounds the first connection (a plain URI otherwise gets one attempt, as stompclt).
 */
export function brokerUri<U extends FailoverSettings>(options: AgentOptions, side: Side, parse: (text: string) => U): U {
  const p = `${side}-broker` as const;
  const text = options[`${p}-uri`];
  if (text === undefined) throw new CliError('ERR_TRANSFER_OPTIONS', `no ${side} broker URI`);
  let uri: U;
  try {
    uri = parse(text);
  } catch (err) {
    throw optionError(`${p}-uri`, err);
  }
  const r = options[`${p}-reconnect`];
  if (r?.['max-attempts'] !== undefined) uri = { ...uri, maxReconnectAttempts: r['max-attempts'] };
  if (r?.['initial-delay'] !== undefined) uri = { ...uri, initialReconnectDelay: r['initial-delay'] * 1000 };
  if (r?.['max-delay'] !== undefined) uri = { ...uri, maxReconnectDelay: r['max-delay'] * 1000 };
  return uri;
}

/** The `*-broker-reconnect` settings of a side, for the connection (milliseconds). */
export function brokerReconnect(options: AgentOptions, side: Side): BrokerReconnectOptions {
  const r = options[`${side}-broker-reconnect`];
  return {
    initialDelay: ms(r?.['initial-delay']),
    maxDelay: ms(r?.['max-delay']),
    multiplier: r?.multiplier,
    maxAttempts: r?.['max-attempts'],
  };
}

/** Socket options of Net::STOMP::Client (IO::Socket::SSL names) that have a TLS setting of the agent core. */
const SOCKOPT_TLS: Readonly<Record<string, 'ca' | 'cert' | 'key' | 'passphrase' | 'servername'>> = {
  SSL_ca_file: 'ca',
  SSL_ca_path: 'ca',
  SSL_cert_file: 'cert',
  SSL_key_file: 'key',
  SSL_passwd: 'passphrase',
  SSL_hostname: 'servername',
};

/** The TLS settings of a side's `*-broker-sockopts` (undefined: none); the other socket options are ignored with a warning. */
export function brokerTls(options: AgentOptions, side: Side, logger?: Logger): TlsSettings | undefined {
  const p = `${side}-broker` as const;
  const tls: Record<string, string | boolean | string[]> = {};
  for (const [k, v] of Object.entries(options[`${p}-sockopts`] ?? {})) {
    const key = SOCKOPT_TLS[k];
    if (key === 'ca') tls.ca = [...((tls.ca as string[] | undefined) ?? []), v];
    else if (key !== undefined) tls[key] = v;
    else if (k === 'SSL_verify_mode') tls.verify = v !== '0' && !/^SSL_VERIFY_NONE$/i.test(v);
    else logger?.warn({ option: `${p}-sockopts`, key: k }, 'socket option ignored');
  }
  return Object.keys(tls).length > 0 ? (tls as TlsSettings) : undefined;
}

/** The connection events both broker modules report (StompConnectionEvent and AmqpConnectionEvent). */
export type BrokerConnectionEvent =
  | {
      readonly type: 'connected';
      readonly server: string;
      readonly brokerType: string;
      readonly version: string;
      readonly mechanism?: string;
    }
  | { readonly type: 'connect-failed'; readonly server: string; readonly error: Error }
  | { readonly type: 'lost'; readonly error: Error }
  | { readonly type: 'reconnected'; readonly server: string };

type ConnectionEventType = BrokerConnectionEvent['type'];
const CONNECTION_EVENTS: ReadonlySet<string> = new Set<ConnectionEventType>([
  'connected',
  'connect-failed',
  'lost',
  'reconnected',
]);

function isConnectionEvent(e: { readonly type: string }): e is BrokerConnectionEvent {
  return CONNECTION_EVENTS.has(e.type);
}

function logConnectionEvent(logger: Logger, side: Side, e: BrokerConnectionEvent): void {
  switch (e.type) {
    case 'connected': {
      const fields = { side, server: e.server, type: e.brokerType, version: e.version };
      // The SASL mechanism, for AMQP only (STOMP has none).
      logger.info(e.mechanism === undefined ? fields : { ...fields, sasl: e.mechanism }, 'connected to the broker');
      break;
    }
    case 'connect-failed':
      logger.warn({ side, server: e.server, err: e.error.message }, 'cannot connect to the broker');
      break;
    case 'lost':
      logger.warn({ side, err: e.error.message }, 'broker connection lost: reconnecting');
      break;
    case 'reconnected':
      logger.info({ side, server: e.server }, 'broker connection back');
      break;
  }
}

/**
 * The onEvent of a side's connection: reconnections counted in `metrics`, the connection events logged; the
 * protocol's other events (STOMP debug, AMQP link errors) go to `other` when there is a logger.
 */
export function brokerEvents<E extends { readonly type: string }>(
  side: Side,
  logger: Logger | undefined,
  metrics: BrokerMetrics | undefined,
  other?: (e: Exclude<E, { readonly type: ConnectionEventType }>, logger: Logger) => void,
): (e: E) => void {
  return (e) => {
    if (e.type === 'reconnected') metrics?.reconnected(side);
    if (logger === undefined) return;
    if (isConnectionEvent(e)) logConnectionEvent(logger, side, e);
    // N.B. what is not a connection event is, by its type, one of the others: TypeScript cannot narrow a
    // generic by a type guard's false branch.
    else other?.(e as Exclude<E, { readonly type: ConnectionEventType }>, logger);
  };
}

/** Makes a side's connection; what its constructor refuses (unreadable certificate files, bad credentials) is an option error. */
export function newBrokerConnection<C>(side: Side, make: () => C): C {
  try {
    return make();
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw optionError(`${side}-broker`, err);
  }
}
