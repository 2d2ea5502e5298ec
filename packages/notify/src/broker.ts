import { errorOf } from '@msgbricks/errors';
import { StompConnection, type StompConnectionEvent, type StompReceived } from '@msgbricks/stomp';
import { BrokerUnavailableError } from './errors';

/**
 * The routing key every gateway node binds its queue to. A repository name cannot contain `#`, so it is no
 * repository's key; each publish goes to both (see StompBackend.publish).
 */
export const ALL_KEY = '#all';

/** cvmfs-notify's exchange: durable, direct, the repository as routing key. */
export const DEFAULT_EXCHANGE = 'repository.activity';

/** How the gateway reaches the broker that joins its nodes. */
export interface NotifyBackend {
  /** Starts consuming: `onMessage` resolves once the message is safely handled, then it is acknowledged. */
  start(onMessage: (body: Buffer) => Promise<void>): Promise<void>;
  /** Publishes, resolved once the broker has it; rejects with a BrokerUnavailableError. */
  publish(repository: string, body: Buffer): Promise<void>;
  readonly connected: boolean;
  close(): Promise<void>;
}

export interface StompBackendOptions {
  /** A STOMP broker URI (stomp://host:port, failover:(...), ssl://...). */
  uri: string;
  user?: string;
  password?: string;
  /** RabbitMQ virtual host (CONNECT `host`), default `/`. */
  vhost?: string;
  /** Default DEFAULT_EXCHANGE; it must exist (RabbitMQ's STOMP plugin does not declare exchanges). */
  exchange?: string;
  /**
   * This node's name: its queue is `notify.<node>`, durable, so that what is published while the node is away
   * waits for it (deleted by the broker after `queueExpiresMs` without a consumer).
   */
  node: string;
  /** Default one day. */
  queueExpiresMs?: number;
  /**
   * Repositories whose own routing key the queue is bound to as well, to hear publishers that send with that key
   * only (cvmfs-notify nodes, scripts on the exchange). A msgnotify publish of one of them then arrives twice (its
   * key and `#all`); the cache drops the second copy. The bindings stay on the durable queue when a repository is
   * taken off the list (STOMP cannot unbind): harmless, and gone with the queue or by hand.
   */
  repositories?: readonly string[];
  onEvent?: (event: StompConnectionEvent) => void;
}

/**
 * The broker side over RabbitMQ's STOMP plugin: publishes are SENDs with receipts to
 * `/exchange/<exchange>/<repository>` (what cvmfs-notify's consumers bind to) and `/exchange/<exchange>/#all`; each
 * node consumes its own durable queue bound to `#all` (and to the keys of `repositories`), acking a message only once the gateway has stored it.
 */
export class StompBackend implements NotifyBackend {
  private readonly connection: StompConnection;
  private readonly exchange: string;

  constructor(private readonly options: StompBackendOptions) {
    this.exchange = options.exchange ?? DEFAULT_EXCHANGE;
    const auth =
      options.user !== undefined ? [{ scheme: 'plain' as const, name: options.user, pass: options.password ?? '' }] : [];
    this.connection = new StompConnection({
      uri: options.uri,
      auth,
      // The gateway stays up without its broker and reconnects for ever, from the first connection on.
      reconnect: { maxAttempts: -1, initialDelay: 100, maxDelay: 5000 },
      connectHeaders: { host: options.vhost ?? '/' },
      heartBeat: [10_000, 10_000],
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    });
  }

  get connected(): boolean {
    return this.connection.connected;
  }

  async start(onMessage: (body: Buffer) => Promise<void>): Promise<void> {
    const headers = {
      'x-queue-name': `notify.${this.options.node}`,
      durable: 'true',
      'auto-delete': 'false',
      'x-expires': String(this.options.queueExpiresMs ?? 86_400_000),
      // A bounded number of unacknowledged messages: the cache writes one at a time anyway.
      'prefetch-count': '100',
    };
    const handle = (m: StompReceived) => {
      onMessage(m.body).then(
        () => this.connection.ack(m),
        // Not stored (a full disk, say): the broker gives it again, a second later rather than at once, for ever.
        () => setTimeout(() => void this.connection.nack(m), 1000).unref(),
      );
    };
    // RabbitMQ binds the one named queue once per SUBSCRIBE's key; each SUBSCRIBE is a consumer of that queue.
    for (const key of new Set([ALL_KEY, ...(this.options.repositories ?? [])])) {
      await this.connection.subscribe({ ...headers, destination: `/exchange/${this.exchange}/${key}` }, handle);
    }
    void this.connection.open().catch(() => undefined);
  }

  async publish(repository: string, body: Buffer): Promise<void> {
    if (!this.connection.connected)
      throw new BrokerUnavailableError(`not connected to the broker ${this.connection.description}`);
    try {
      await Promise.all(
        [repository, ALL_KEY].map((key) =>
          this.connection.send({ destination: `/exchange/${this.exchange}/${key}`, 'content-type': 'application/json' }, body),
        ),
      );
    } catch (err) {
      throw new BrokerUnavailableError(`the broker did not take the publish: ${errorOf(err).message}`, { cause: err });
    }
  }

  close(): Promise<void> {
    return this.connection.close();
  }
}
