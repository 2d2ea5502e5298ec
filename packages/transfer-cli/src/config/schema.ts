/**
 * stompclt's options (cern-mig/stompclt `%Schema`, POD OPTIONS and `option::parse`), plus the msgbricks additions:
 * every option (and configuration key) with its type and default, and the shape of the validated options.
 */
import { BROKER_TYPES, type BrokerType, type Credential } from '@msgbricks/agent';
import { STOMP_DEBUG_WORDS } from '@msgbricks/stomp';

/** How an option's value is read and normalised. */
export type OptionType =
  | 'string' // any non-empty string
  | 'uri' // a broker URI (scheme://host[:port], failover:, file:), checked by LoadOptionsInput.checkUri
  | 'int' // integer >= 0
  | 'port' // integer 0..65535
  | 'seconds' // number >= 0, may be fractional
  | 'bool' // 0/1, true/false, yes/no, on/off; --no-x on the command line
  | 'counter' // integer >= 0; on the command line each -d adds one
  | 'kv' // "k=v k=v" or a block/object, into Record<string, string>
  | 'kv-list' // repeatable kv
  | 'auth-list' // repeatable Authen::Credential string or <auth> block, into Credential
  | 'queue' // kv with type DQS|DQN|NULL (default DQS) and path, into QueueSpec
  | 'reconnect' // kv of reconnection settings, into ReconnectOptions
  | 'enum' // one of `values`
  | 'words'; // blank-separated words, each one of `values`

export interface OptionSpec {
  readonly type: OptionType;
  /** Allowed values of an enum, or allowed words. */
  readonly values?: readonly string[];
  /** The value when the option is not given (lists default to []). */
  readonly default?: unknown;
  /** Single-letter command-line alias. */
  readonly short?: string;
  /** Informational or action options that a configuration file may not hold. */
  readonly commandLineOnly?: boolean;
  /** Not in stompclt: added by msgbricks. */
  readonly msgbricks?: boolean;
  /** Only this command has the option (amqpclt's own names); the others reject it as unknown. */
  readonly only?: 'amqpclt';
  readonly description: string;
}

export const QUEUE_TYPES = ['DQS', 'DQN', 'NULL'] as const;
/** Queue keys known to @msgbricks/message's parseQueueSpec, plus the purge settings maxlock and maxtemp. */
export const QUEUE_KEYS = [
  'type',
  'path',
  'granularity',
  'maxelts',
  'rndhex',
  'umask',
  'fsync',
  'io',
  'compression',
  'maxlock',
  'maxtemp',
];
export const RECONNECT_KEYS = ['initial-delay', 'max-delay', 'multiplier', 'max-attempts'] as const;

function brokerOptions(side: 'incoming' | 'outgoing'): Record<string, OptionSpec> {
  const p = `${side}-broker`;
  return {
    [`${p}-uri`]: { type: 'uri', description: `${side} broker URI (STOMP or AMQP 1.0)` },
    [`${p}-auth`]: { type: 'auth-list', description: `${side} broker credential(s), e.g. "plain name=X pass=Y"` },
    [`${p}-connect`]: { type: 'kv', description: `extra CONNECT frame headers for the ${side} broker` },
    [`${p}-sockopts`]: { type: 'kv', description: `socket options for the ${side} broker` },
    [`${p}-stomp-debug`]: { type: 'words', values: STOMP_DEBUG_WORDS, description: `STOMP debug words for the ${side} broker` },
    [`${p}-type`]: { type: 'enum', values: BROKER_TYPES, description: `${side} broker type (auto-detected when not given)` },
    [`${p}-module`]: {
      type: 'enum',
      values: ['pika', 'kombu', 'rhea'],
      only: 'amqpclt',
      description: `${side} AMQP driver of python-amqpclt (accepted; msgbricks always uses rhea)`,
    },
    [`${p}-reconnect`]: {
      type: 'reconnect',
      msgbricks: true,
      description: `reconnection of the ${side} broker: initial-delay, max-delay (seconds), multiplier, max-attempts`,
    },
  };
}

/** Every option (and configuration key) with its type and default; see docs/configuration.md. */
export const OPTION_SCHEMA: Readonly<Record<string, OptionSpec>> = {
  ...brokerOptions('incoming'),
  'incoming-queue': { type: 'queue', description: 'incoming on-disk queue: path=... [type=DQS|DQN|NULL] [queue options]' },
  ...brokerOptions('outgoing'),
  'outgoing-queue': { type: 'queue', description: 'outgoing on-disk queue: path=... [type=DQS|DQN|NULL] [queue options]' },
  subscribe: { type: 'kv-list', description: 'SUBSCRIBE headers, one per subscription (required with an incoming broker)' },
  unsubscribe: { type: 'kv-list', description: 'UNSUBSCRIBE at exit; the n-th entry pairs with the n-th subscription' },
  reliable: { type: 'bool', default: false, description: 'client acks, SEND receipts and a DISCONNECT receipt' },
  window: { type: 'int', description: 'maximum number of un-acked messages in memory when reliable' },
  prefetch: { type: 'int', description: 'broker prefetch (default min(count, 100) when reliable and count are set)' },
  count: { type: 'int', short: 'c', description: 'stop after this many messages' },
  duration: { type: 'seconds', description: 'stop after this wall time' },
  'timeout-inactivity': { type: 'seconds', description: 'stop when nothing has arrived for this long' },
  loop: { type: 'bool', default: false, description: 'at the end of the incoming queue, start over' },
  remove: { type: 'bool', default: false, description: 'remove processed elements from the incoming queue' },
  lazy: { type: 'bool', default: false, description: 'open the outgoing module only when the first message arrives' },
  'heart-beat': { type: 'bool', default: false, description: 'STOMP heart-beats' },
  'timeout-client': { type: 'seconds', default: 40, description: 'heart-beat interval the client offers' },
  'timeout-server': { type: 'seconds', default: 10, description: 'heart-beat interval the client asks of the server' },
  'timeout-connect': { type: 'seconds', description: 'TCP connect timeout, also used while waiting for CONNECTED' },
  'timeout-broker': { type: 'seconds', description: 'how long to wait for RECEIPTs' },
  'timeout-flush': { type: 'seconds', default: 60, description: 'how long to flush the output buffer before disconnecting' },
  'timeout-disconnect': { type: 'seconds', default: 60, description: 'how long to wait for the DISCONNECT receipt' },
  'timeout-linger': { type: 'seconds', description: 'after the main loop, how long to wait for pending acks' },
  'timeout-status': { type: 'seconds', description: 'retry --status until success or this timeout' },
  'timeout-spool-fault': {
    type: 'seconds',
    msgbricks: true,
    description: 'give up (exit 1) when a spool stays unusable (EACCES, EROFS, EIO, full...) this long (default: wait)',
  },
  'max-header-length': {
    type: 'int',
    default: 102_400,
    description: 'STOMP: longest frame header line (name:value, bytes) a received frame may have',
  },
  'max-headers': { type: 'int', default: 2000, description: 'STOMP: most headers a received frame may have' },
  'callback-code': { type: 'string', description: 'inline callback code' },
  'callback-path': { type: 'string', description: 'file holding the callback code' },
  'callback-data': { type: 'kv', description: 'data passed to the callback start()' },
  statistics: { type: 'bool', default: false, short: 's', description: 'print throughput at the end' },
  daemon: { type: 'bool', default: false, description: 'detach and log to syslog' },
  pidfile: { type: 'string', description: 'pid file, also a liveness and control channel' },
  quit: { type: 'bool', default: false, commandLineOnly: true, description: 'tell the instance of --pidfile to quit' },
  status: {
    type: 'bool',
    default: false,
    commandLineOnly: true,
    description: 'report the liveness of the instance of --pidfile',
  },
  debug: { type: 'counter', default: 0, short: 'd', description: 'debug level (repeatable)' },
  config: { type: 'string', commandLineOnly: true, description: 'configuration file (also --conf, --cfg)' },
  'config-general': { type: 'kv', description: 'Config::General parser options (accepted, not applied: see the docs)' },
  list: { type: 'bool', default: false, short: 'l', commandLineOnly: true, description: 'list the options' },
  help: { type: 'bool', default: false, short: 'h', commandLineOnly: true, description: 'short help' },
  manual: { type: 'bool', default: false, short: 'm', commandLineOnly: true, description: 'the manual' },
  version: { type: 'bool', default: false, commandLineOnly: true, description: 'the version' },
  'metrics-port': { type: 'port', msgbricks: true, description: 'serve Prometheus metrics on this port' },
  'metrics-address': {
    type: 'string',
    default: '127.0.0.1',
    msgbricks: true,
    description: 'address the metrics server listens on (0.0.0.0 or :: for every interface)',
  },
  'dead-letter-queue': {
    type: 'queue',
    msgbricks: true,
    description: 'queue receiving the messages that the callback or the outgoing module rejects',
  },
  'log-format': { type: 'enum', values: ['json', 'text'], default: 'text', msgbricks: true, description: 'log line format' },
  log: {
    type: 'enum',
    values: ['stdout', 'stderr', 'file', 'null', 'syslog'],
    only: 'amqpclt',
    description: 'where log lines go (default stderr; file needs logfile)',
  },
  logfile: { type: 'string', only: 'amqpclt', description: 'the log file of --log file (appended to)' },
  loglevel: {
    type: 'enum',
    values: ['debug', 'info', 'warning', 'error', 'critical'],
    only: 'amqpclt',
    description: 'lowest level logged (default info; --debug overrides)',
  },
  pod: { type: 'bool', default: false, only: 'amqpclt', commandLineOnly: true, description: 'the manual (as --manual)' },
  rst: { type: 'bool', default: false, only: 'amqpclt', commandLineOnly: true, description: 'the manual (as --manual)' },
  filter: {
    type: 'string',
    msgbricks: true,
    description: 'JMS selector: messages it does not select are consumed and counted as filtered (ActiveMQ rules)',
  },
  'filter-on-broker': {
    type: 'bool',
    default: false,
    msgbricks: true,
    description: 'also send --filter as the selector of every subscription (the agent still checks it)',
  },
};

export const ALIASES: Readonly<Record<string, string>> = {
  c: 'count',
  s: 'statistics',
  d: 'debug',
  l: 'list',
  h: 'help',
  '?': 'help',
  m: 'manual',
  conf: 'config',
  cfg: 'config',
};

/** An on-disk queue: its type, its path (not for NULL) and queue options, as strings for parseQueueSpec. */
export interface QueueSpec {
  readonly type: 'DQS' | 'DQN' | 'NULL';
  readonly path?: string;
  readonly [option: string]: string | undefined;
}

/** msgbricks reconnection settings of a broker (stompclt never reconnects). */
export interface ReconnectOptions {
  readonly 'initial-delay'?: number;
  readonly 'max-delay'?: number;
  readonly multiplier?: number;
  readonly 'max-attempts'?: number;
}

export type StringMap = Readonly<Record<string, string>>;

/** The validated options; keys are the option names. Absent optional keys mean "not given". */
export interface AgentOptions {
  readonly 'incoming-broker-uri'?: string;
  readonly 'incoming-broker-auth': readonly Credential[];
  readonly 'incoming-broker-connect'?: StringMap;
  readonly 'incoming-broker-sockopts'?: StringMap;
  readonly 'incoming-broker-stomp-debug'?: string;
  readonly 'incoming-broker-type'?: BrokerType;
  readonly 'incoming-broker-reconnect'?: ReconnectOptions;
  readonly 'incoming-queue'?: QueueSpec;
  readonly 'outgoing-broker-uri'?: string;
  readonly 'outgoing-broker-auth': readonly Credential[];
  readonly 'outgoing-broker-connect'?: StringMap;
  readonly 'outgoing-broker-sockopts'?: StringMap;
  readonly 'outgoing-broker-stomp-debug'?: string;
  readonly 'outgoing-broker-type'?: BrokerType;
  readonly 'outgoing-broker-reconnect'?: ReconnectOptions;
  readonly 'outgoing-queue'?: QueueSpec;
  readonly subscribe: readonly StringMap[];
  /** Undefined: do not unsubscribe; otherwise one entry per subscription (maybe empty). */
  readonly unsubscribe?: readonly StringMap[];
  readonly reliable: boolean;
  readonly window?: number;
  readonly prefetch?: number;
  readonly count?: number;
  readonly duration?: number;
  readonly 'timeout-inactivity'?: number;
  readonly loop: boolean;
  readonly remove: boolean;
  readonly lazy: boolean;
  readonly 'heart-beat': boolean;
  readonly 'timeout-client': number;
  readonly 'timeout-server': number;
  readonly 'timeout-connect'?: number;
  readonly 'timeout-broker'?: number;
  readonly 'timeout-flush': number;
  readonly 'timeout-disconnect': number;
  readonly 'timeout-linger'?: number;
  readonly 'timeout-status'?: number;
  readonly 'timeout-spool-fault'?: number;
  readonly 'max-header-length': number;
  readonly 'max-headers': number;
  readonly 'callback-code'?: string;
  readonly 'callback-path'?: string;
  readonly 'callback-data'?: StringMap;
  readonly statistics: boolean;
  readonly daemon: boolean;
  readonly pidfile?: string;
  readonly quit: boolean;
  readonly status: boolean;
  readonly debug: number;
  readonly config?: string;
  readonly 'config-general'?: StringMap;
  readonly list: boolean;
  readonly help: boolean;
  readonly manual: boolean;
  readonly version: boolean;
  readonly 'metrics-port'?: number;
  readonly 'metrics-address': string;
  readonly 'dead-letter-queue'?: QueueSpec;
  readonly 'log-format': 'json' | 'text';
  readonly 'incoming-broker-module'?: 'pika' | 'kombu' | 'rhea';
  readonly 'outgoing-broker-module'?: 'pika' | 'kombu' | 'rhea';
  readonly log?: 'stdout' | 'stderr' | 'file' | 'null' | 'syslog';
  readonly logfile?: string;
  readonly loglevel?: 'debug' | 'info' | 'warning' | 'error' | 'critical';
  readonly pod?: boolean;
  readonly rst?: boolean;
  readonly filter?: string;
  readonly 'filter-on-broker': boolean;
}

/** Every option name. */
export const KNOWN_OPTIONS: readonly string[] = Object.keys(OPTION_SCHEMA);
