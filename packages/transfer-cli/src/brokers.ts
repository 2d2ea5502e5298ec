/**
 * The broker sides of a transfer: the `*-broker-*` options made into the agent's protocol-neutral BrokerSettings,
 * the protocol picked by the URI's scheme (protocols.ts), and its incoming or outgoing module made by its
 * descriptor. The log lines of the connection events and the metrics are the same whatever the protocol; a
 * protocol's own events become the lines it asks for.
 */
import {
  type BrokerIncomingSettings,
  type BrokerProtocol,
  type BrokerSettings,
  BrokerUriError,
  CredentialError,
  type Incoming,
  type Outgoing,
  type TlsSettings,
} from '@msgbricks/agent';
import type { AgentOptions } from './config/schema';
import { CliError } from './errors';
import type { Logger } from './logger';
import type { BrokerMetrics } from './metrics';
import { program } from './program';
import { brokerProtocol } from './protocols';

export type Side = 'incoming' | 'outgoing';

/** Seconds (the options' unit) as milliseconds (the connections'). */
export const ms = (seconds: number | undefined): number | undefined => (seconds === undefined ? undefined : seconds * 1000);

/** A bad `key` option, with why. */
export function optionError(key: string, err: unknown): CliError {
  return new CliError('ERR_TRANSFER_OPTIONS', `${key}: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
  });
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

/** The connection events every broker connection reports (BrokerConnectionEvent, and `connected`). */
type ConnectionEvent =
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

const CONNECTION_EVENTS: ReadonlySet<string> = new Set(['connected', 'connect-failed', 'lost', 'reconnected']);

function logConnectionEvent(logger: Logger, side: Side, e: ConnectionEvent): void {
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
 * The logger of a protocol's own lines for a side: with the side on every line and, when the side's debug words
 * are given (stompclt's --*-broker-stomp-debug), at least at debug level, so that they show without --debug.
 */
export function protocolLogger(logger: Logger, side: Side, debug: boolean): Logger {
  if (!debug) return logger.child({ side });
  const level = logger.levelVal <= logger.levels.values.debug ? logger.level : 'debug';
  return logger.child({ side }, { level });
}

/**
 * The onEvent of a side's connection: reconnections counted in `metrics`, the connection events logged, the
 * protocol's other events logged as it asks.
 */
export function brokerEvents(
  side: Side,
  protocol: BrokerProtocol,
  logger: Logger | undefined,
  metrics: BrokerMetrics | undefined,
  debug: boolean,
): (e: { readonly type: string }) => void {
  const own = logger === undefined ? undefined : protocolLogger(logger, side, debug);
  return (e) => {
    if (e.type === 'reconnected') metrics?.reconnected(side);
    if (logger === undefined || own === undefined) return;
    if (CONNECTION_EVENTS.has(e.type)) {
      logConnectionEvent(logger, side, e as ConnectionEvent);
      return;
    }
    const line = protocol.logLine(e);
    if (line !== undefined) own[line.level](line.fields, line.message);
  };
}

/**
 * The settings of a side from its `*-broker-*` options: URI, credentials, TLS socket options, reconnection
 * (`max-attempts` also bounds the first connection: a plain URI otherwise gets one attempt, as stompclt, except in a
 * `--loop` daemon, which waits for its broker as it does after a lost connection instead of dying at start-up),
 * heart-beats (--heart-beat: --timeout-client and --timeout-server), --timeout-connect/-broker/-flush/-disconnect,
 * CONNECT headers, broker type and debug words.
 */
export function brokerSettings(
  options: AgentOptions,
  side: Side,
  protocol: BrokerProtocol,
  logger?: Logger,
  metrics?: BrokerMetrics,
): BrokerSettings {
  const p = `${side}-broker` as const;
  const uri = options[`${p}-uri`];
  if (uri === undefined) throw new CliError('ERR_TRANSFER_OPTIONS', `no ${side} broker URI`);
  const r = options[`${p}-reconnect`];
  const debug = options[`${p}-stomp-debug`];
  return {
    uri,
    auth: options[`${p}-auth`],
    tls: brokerTls(options, side, logger),
    reconnect: {
      initialDelay: ms(r?.['initial-delay']),
      maxDelay: ms(r?.['max-delay']),
      multiplier: r?.multiplier,
      maxAttempts: r?.['max-attempts'] ?? (options.loop ? -1 : undefined),
    },
    heartBeat: options['heart-beat'] ? [options['timeout-client'] * 1000, options['timeout-server'] * 1000] : undefined,
    connectTimeout: ms(options['timeout-connect']),
    receiptTimeout: ms(options['timeout-broker']),
    flushTimeout: ms(options['timeout-flush']),
    disconnectTimeout: ms(options['timeout-disconnect']),
    maxHeaderLength: options['max-header-length'],
    maxHeaders: options['max-headers'],
    connectHeaders: options[`${p}-connect`],
    type: options[`${p}-type`],
    debug,
    onEvent: brokerEvents(side, protocol, logger, metrics, debug !== undefined),
    onConfirmed: metrics === undefined ? undefined : (seconds) => metrics.receipt(seconds),
  };
}

/** The option behind each setting a protocol may not use. */
const OPTION_OF: Readonly<Record<string, (side: Side) => string>> = {
  connectHeaders: (side) => `${side}-broker-connect`,
  type: (side) => `${side}-broker-type`,
  debug: (side) => `${side}-broker-stomp-debug`,
  unsubscribe: () => 'unsubscribe',
};

/** Says which given options the protocol has no use for. */
function warnIgnored(options: AgentOptions, side: Side, protocol: BrokerProtocol, logger?: Logger): void {
  for (const setting of protocol.ignores) {
    const option = OPTION_OF[setting]?.(side);
    if (option !== undefined && (options as unknown as Record<string, unknown>)[option] !== undefined) {
      logger?.warn({ option }, `not an option of ${protocol.name} brokers: ignored`);
    }
  }
}

/** The protocol of a side's broker URI. */
function sideProtocol(options: AgentOptions, side: Side): BrokerProtocol {
  const key = `${side}-broker-uri` as const;
  try {
    return brokerProtocol(options[key] ?? '', program().defaultProtocol);
  } catch (err) {
    throw optionError(key, err);
  }
}

/**
 * Makes a side's module; what cannot be used is an option error naming the option: the URI, the credentials, a
 * certificate file (the side's broker options), a subscription.
 */
function make<M>(side: Side, make: () => M): M {
  try {
    return make();
  } catch (err) {
    if (err instanceof CliError) throw err;
    const key =
      err instanceof BrokerUriError
        ? `${side}-broker-uri`
        : err instanceof CredentialError
          ? `${side}-broker-auth`
          : side === 'incoming' && (err as { code?: string }).code?.endsWith('_SUBSCRIBE')
            ? 'subscribe'
            : `${side}-broker`;
    throw optionError(key, err);
  }
}

/** The incoming broker module: the `--subscribe` entries, acked once safe with --reliable, on arrival without. */
export function makeBrokerIncoming(options: AgentOptions, logger?: Logger, metrics?: BrokerMetrics): Incoming {
  const protocol = sideProtocol(options, 'incoming');
  warnIgnored(options, 'incoming', protocol, logger);
  const incoming: BrokerIncomingSettings = {
    subscribe: options.subscribe,
    prefetch: options.prefetch,
    ack: options.reliable ? 'client' : 'auto',
    unsubscribe: options.unsubscribe,
  };
  return make('incoming', () => protocol.incoming(brokerSettings(options, 'incoming', protocol, logger, metrics), incoming));
}

/**
 * The outgoing broker module: a message is acked upstream only once the broker confirmed it (a STOMP RECEIPT,
 * with or without --reliable: it costs little; an AMQP accepted outcome).
 */
export function makeBrokerOutgoing(options: AgentOptions, logger?: Logger, metrics?: BrokerMetrics): Outgoing {
  const protocol = sideProtocol(options, 'outgoing');
  warnIgnored(options, 'outgoing', protocol, logger);
  return make('outgoing', () => protocol.outgoing(brokerSettings(options, 'outgoing', protocol, logger, metrics)));
}
