/**
 * The Megabus configuration once read, normalised and validated (load.ts): what Publisher and Consumer run on.
 * Times are in milliseconds here (seconds in the files).
 */
import type { FilterConfig } from '../filter';
import type { ActionConfig } from '../plugins/types';

export type MegabusProtocol = 'stomp' | 'amqp';

/** How the brokers are found. */
export interface BrokersConfig {
  /** The alias (or a single broker's host name) to resolve; undefined when `servers` lists the brokers. */
  readonly alias?: string;
  /** A static list instead of an alias: `host` and, when given, `port`. */
  readonly servers?: readonly { readonly host: string; readonly port?: number }[];
  /** The brokers' port (when an address or server does not say). */
  readonly port: number;
  /**
   * `use_multiple_brokers`: the alias names independent brokers, each resolved address one of them. False: the
   * alias is one broker's name (DNS picks an address at each connection).
   */
  readonly multiple: boolean;
}

export type MegabusAuth =
  | { readonly method: 'x509'; readonly cert: string; readonly key: string; readonly passphrase?: string }
  | { readonly method: 'password'; readonly user: string; readonly password: string };

export interface TlsConfig {
  /** CA files or directories to trust instead of Node's. */
  readonly ca?: readonly string[];
  readonly verify: boolean;
  /** The name the brokers' certificates must carry (default: the alias, since the brokers are reached by address). */
  readonly servername?: string;
}

export interface PublisherConfig {
  /** Where messages go when no broker takes them (a python-dirq QueueSimple of messages). */
  readonly spool?: string;
  /** Send every message to every broker instead of one. */
  readonly sendToAll: boolean;
  /** How long a connection is used before a broker is picked again (so new brokers get traffic). */
  readonly reconnectInterval: number;
  /** Messages are sent `persistent: true` unless they say otherwise. */
  readonly persistent: boolean;
}

export interface ConsumerConfig {
  /** The destination consumed (default: the top-level destination). */
  readonly destination?: string;
  /** Most unacknowledged messages per broker. */
  readonly prefetch: number;
  /** A broker that left the alias is closed once it delivered nothing for this long. */
  readonly drainQuiet: number;
  /** Messages are written to this spool and acknowledged once there, instead of being handed to a handler. */
  readonly spool?: string;
}

export interface MegabusConfig {
  /** The file it was read from, for messages (undefined when built in code). */
  readonly file?: string;
  readonly protocol: MegabusProtocol;
  readonly brokers: BrokersConfig;
  /** Whether connections use TLS (always with x509). */
  readonly tls: boolean;
  readonly tlsOptions: TlsConfig;
  readonly auth: MegabusAuth;
  /** STOMP's CONNECT `host` / AMQP's virtual host. */
  readonly vhost?: string;
  /** The default destination of messages without one, and the consumer's unless it names its own. */
  readonly destination?: string;
  /** How often the alias is resolved again. */
  readonly resolveInterval: number;
  readonly connectTimeout: number;
  /** How long a broker may take to confirm a message before its connection is deemed broken. */
  readonly receiptTimeout: number;
  /** The longest wait between two connection attempts to one broker (the consumer's reconnections). */
  readonly maxReconnectDelay: number;
  readonly publisher: PublisherConfig;
  readonly consumer: ConsumerConfig;
  /** The consumer's filter: selector, hostgroup_selector, host_selector, use_broker_filtering (filter.ts). */
  readonly filter: FilterConfig;
  /** megabusclt: where the plugins keep their spools and on_change values (default /var/lib/megabusclt). */
  readonly stateDir: string;
  /** megabusclt: Prometheus /metrics and /healthz (undefined: not served). */
  readonly metrics?: MetricsAddress;
  /** megabusclt's plugins, in file order (none: megabusclt has nothing to run). */
  readonly plugins: readonly PluginConfig[];
}

/** on_change: the plugin's actions run only when `field` changed value for `key` (each a header name or body.PATH). */
export interface OnChangeConfig {
  readonly key: string;
  readonly field: string;
}

/** One megabusclt plugin (`plugins.NAME`): what it consumes and the actions it runs, with the handler runner's rules. */
export interface PluginConfig {
  readonly name: string;
  /** FILE:LINE of its block, for messages. */
  readonly where: string;
  /** The destination consumed (undefined: consumer.destination, then destination). */
  readonly destination?: string;
  /** Failed attempts before the dead-letter spool. */
  readonly maxAttempts: number;
  /** The dead-letter spool (a directory; default <state_dir>/<plugin>/dead-letter). */
  readonly deadLetter: string;
  /** Milliseconds before the first retry, doubled per failure up to retryDelayMax. */
  readonly retryDelay: number;
  readonly retryDelayMax: number;
  /** Milliseconds an action may take unless it says (its `timeout`, in seconds, as ActionConfig). */
  readonly timeout: number;
  /** Messages handled at once. */
  readonly concurrency: number;
  readonly onChange?: OnChangeConfig;
  /** Its own filter keys (selector, hostgroup_selector, host_selector, use_broker_filtering); undefined: the top level's. */
  readonly filter?: FilterConfig;
  /** Run in order for each message. */
  readonly actions: readonly ActionConfig[];
}

/** Where megabusclt serves /metrics and /healthz. */
export interface MetricsAddress {
  readonly host: string;
  readonly port: number;
}
