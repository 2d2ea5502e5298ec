export type { ConfigBlock, ConfigGeneralOptions, ConfigNode, ConfigScalar } from './configgeneral';
export { configToPlain, parseConfigGeneral, parseConfigGeneralFile } from './configgeneral';
export type { CallbackSource } from './core/callback';
export { CallbackError, inlineCallback, moduleCallback } from './core/callback';
export type { WorkerCallbackOptions } from './core/callback-worker';
export { CallbackCrashError, WorkerCallback } from './core/callback-worker';
export { corkPerTick } from './core/cork';
export { PendingError, RejectedError } from './core/errors';
export type { BrokerList, BrokerReconnectOptions, FailoverErrorMaker, FailoverSettings, ServerParser } from './core/failover';
export { abortableSleep, Backoff, FAILOVER_DEFAULTS, parseBrokerList, shuffle } from './core/failover';
export { LockJournal, type LockJournalEvent } from './core/journal';
export type { Callback, Delivery, Incoming, Outgoing } from './core/modules';
export type { PipelineEvent, PipelineOptions, PipelineStats } from './core/pipeline';
export { DEAD_LETTER_REASON, runPipeline } from './core/pipeline';
export type { PurgeOutcome, QueueIncomingOptions, QueueOutgoingEvent, QueueOutgoingOptions } from './core/queues';
export { QueueIncoming, QueueOutgoing } from './core/queues';
export type { ConfigProblem, SourceLocation } from './errors';
export { ConfigError, formatProblem } from './errors';
export type {
  AgentOptions,
  BrokerType,
  Credential,
  LoadedOptions,
  LoadOptionsInput,
  OptionSpec,
  OptionType,
  QueueSpec,
  ReconnectOptions,
  StringMap,
} from './options';
export { formatCredential, loadOptions, OPTION_SCHEMA } from './options';
