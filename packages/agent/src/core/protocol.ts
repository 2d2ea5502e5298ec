/**
 * A broker protocol as the commands see it: its URI schemes and how to make its incoming and outgoing modules
 * from normalised settings. Each broker package exports one (STOMP_PROTOCOL, AMQP_PROTOCOL); a command picks one by
 * the URI's scheme and knows nothing else of the protocol, so a new protocol is a new descriptor.
 */
import type { BrokerType } from './connection';
import type { Credential } from './credential';
import type { BrokerList, BrokerReconnectOptions } from './failover';
import type { Incoming, Outgoing } from './modules';
import type { TlsSettings } from './tls';
import type { BrokerServer, SchemeTable } from './uri';

type StringMap = Readonly<Record<string, string>>;

/** The settings of one broker side, whatever the protocol; times in milliseconds. */
export interface BrokerSettings {
  readonly uri: string;
  readonly auth: readonly Credential[];
  readonly tls?: TlsSettings;
  /** Overrides of the URI's reconnection settings. */
  readonly reconnect?: BrokerReconnectOptions;
  readonly connectTimeout?: number;
  readonly disconnectTimeout?: number;
  /** How long close() may flush what was written. */
  readonly flushTimeout?: number;
  /** How long the broker may take to confirm a message before the connection is deemed broken. */
  readonly receiptTimeout?: number;
  /** STOMP's frame parser: longest header line (bytes) and most headers of a received frame. */
  readonly maxHeaderLength?: number;
  readonly maxHeaders?: number;
  /** Heart-beats: [we send something at least every, we want something at least every]; none when undefined. */
  readonly heartBeat?: readonly [number, number];
  /** Extra headers of the protocol's connect frame (STOMP's CONNECT). */
  readonly connectHeaders?: StringMap;
  /** The broker type, when it is not to be detected. */
  readonly type?: BrokerType;
  /** The protocol's debug words (STOMP's frame, I/O and connection events). */
  readonly debug?: string;
  /** The connection's events: BrokerConnectionEvent, `connected`, and the protocol's own (see logLine). */
  readonly onEvent?: (event: { readonly type: string }) => void;
  /** The broker confirmed a message after `seconds` (a STOMP RECEIPT for a SEND). */
  readonly onConfirmed?: (seconds: number) => void;
}

/** What an incoming broker module is asked for. */
export interface BrokerIncomingSettings {
  /** One entry per subscription (a destination and the protocol's headers). */
  readonly subscribe: readonly StringMap[];
  readonly prefetch?: number;
  /** `client`: acknowledged once safe downstream; `auto`: on arrival. */
  readonly ack: 'client' | 'auto';
  /** Unsubscribe at close, the n-th header set with the n-th subscription; undefined: do not. */
  readonly unsubscribe?: readonly StringMap[];
}

/** A log line a protocol asks the command to write for one of its events (libraries never print). */
export interface BrokerLogLine {
  readonly level: 'debug' | 'info' | 'warn';
  readonly fields: Readonly<Record<string, unknown>>;
  readonly message: string;
}

export interface BrokerProtocol {
  /** For messages: `STOMP`, `AMQP 1.0`. */
  readonly name: string;
  /** Its URI schemes; a scheme that only this protocol has picks it. */
  readonly schemes: SchemeTable;
  /** Parses a broker URI as its modules will (failover: and file: lists too); BrokerUriError when it cannot be used. */
  parseUri(uri: string): BrokerList<BrokerServer>;
  /** Settings it has no use for: the command says they are ignored. */
  readonly ignores: readonly (keyof BrokerSettings | keyof BrokerIncomingSettings)[];
  /**
   * The incoming module. Throws CredentialError, TlsError, BrokerUriError for settings that cannot be used, and
   * the protocol's own error for subscriptions it cannot make.
   */
  incoming(settings: BrokerSettings, incoming: BrokerIncomingSettings): Incoming;
  /** The outgoing module (the same errors). */
  outgoing(settings: BrokerSettings): Outgoing;
  /** The log line of one of its own events; undefined for the others (BrokerConnectionEvent, `connected`). */
  logLine(event: { readonly type: string }): BrokerLogLine | undefined;
}
