export type { CallbackSource } from './core/callback';
export { CallbackError, inlineCallback, moduleCallback } from './core/callback';
export type { WorkerCallbackOptions } from './core/callback-worker';
export { CallbackCrashError, WorkerCallback } from './core/callback-worker';
export type { BrokerConnectionEvent, BrokerConnectionOptions, BrokerProtocolHooks, BrokerType } from './core/connection';
export { BROKER_TYPES, BrokerConnection, STABLE_SESSION_MS } from './core/connection';
export { corkPerTick } from './core/cork';
export type { Credential, CredentialSet } from './core/credential';
export { checkCredential, credentialOf, credentialSet, formatCredential, parseCredential } from './core/credential';
export { BrokerUriError, CredentialError, PendingError, RejectedError, TlsError } from './core/errors';
export type { BrokerList, BrokerReconnectOptions, FailoverErrorMaker, FailoverSettings, ServerParser } from './core/failover';
export { abortableSleep, Backoff, FAILOVER_DEFAULTS, parseBrokerList, shuffle } from './core/failover';
export { LockJournal, type LockJournalEvent } from './core/journal';
export type { Callback, Delivery, Incoming, Outgoing } from './core/modules';
export { decodePercent } from './core/percent';
export type { PipelineEvent, PipelineOptions, PipelineStats } from './core/pipeline';
export { DEAD_LETTER_REASON, newPipelineStats, runPipeline } from './core/pipeline';
export type { BrokerIncomingSettings, BrokerLogLine, BrokerProtocol, BrokerSettings } from './core/protocol';
export type {
  PurgeOutcome,
  QueueIncomingOptions,
  QueueOutgoingEvent,
  QueueOutgoingOptions,
  SpoolFaultEvent,
} from './core/queues';
export { QueueIncoming, QueueOutgoing } from './core/queues';
export type { Pem, ResolvedTls, TlsSettings } from './core/tls';
export { resolveTls, tlsConnectOptions } from './core/tls';
export type { BrokerServer, SchemeSpec, SchemeTable, UriSyntax } from './core/uri';
export { parseBrokerUri, serverSchemes, uriScheme } from './core/uri';
