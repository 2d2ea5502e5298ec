import { errorOf } from '@msgbricks/errors';
import type { NotifyBackend } from './broker';
import { LastValueCache, storeReceived } from './cache';
import { BrokerUnavailableError } from './errors';
import type { GatewayStats } from './gateway';

/**
 * An IPC channel to the other side of a cluster: a cluster Worker seen from the primary, `process` seen from a
 * worker. Messages are JSON; bodies travel as latin1 strings, byte for byte.
 */
export interface Channel {
  send(message: unknown): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

type ToWorker =
  | { t: 'notify'; body: string }
  | { t: 'ready'; connected: boolean }
  | { t: 'broker'; connected: boolean }
  | { t: 'published'; id: number; error?: string }
  | { t: 'stats-query'; q: number }
  | { t: 'stats-result'; id: number; stats: GatewayStats };

type ToPrimary =
  | { t: 'hello' }
  | { t: 'publish'; id: number; repository: string; body: string }
  | { t: 'stats'; id: number; own: GatewayStats }
  | { t: 'stats-answer'; q: number; stats: GatewayStats | undefined };

export type RelayEvent =
  | { type: 'received'; repository: string; revision: number; outcome: string }
  | { type: 'invalid-from-broker'; error: Error };

export interface RelayOptions {
  /** The last-value cache's dirq spool (the workers hold copies in memory). */
  cacheDir: string;
  backend: NotifyBackend;
  /** How long a stats request waits for the other workers (default 1 s; one that does not answer is left out). */
  statsTimeoutMs?: number;
  onEvent?: (event: RelayEvent) => void;
}

/** A cluster's figures: the workers' added up, the broker side (received, broker, cache) from the primary. */
export function sumStats(
  primary: Pick<GatewayStats, 'received' | 'brokerConnected' | 'cachedRepositories'>,
  workers: GatewayStats[],
): GatewayStats {
  const total: GatewayStats = {
    subscribers: 0,
    publishes: {},
    received: { ...primary.received },
    deliveries: 0,
    coalesced: 0,
    dropped: 0,
    brokerConnected: primary.brokerConnected,
    cachedRepositories: primary.cachedRepositories,
    workers: workers.length,
  };
  for (const w of workers) {
    total.subscribers += w.subscribers;
    total.deliveries += w.deliveries;
    total.coalesced += w.coalesced;
    total.dropped += w.dropped;
    for (const [k, v] of Object.entries(w.publishes)) total.publishes[k] = (total.publishes[k] ?? 0) + v;
  }
  return total;
}

/**
 * The primary of a gateway cluster: it alone holds the broker session and the persistent last-value cache, as a
 * single gateway does, and relays each stored notification once to every worker, which fans it out to its own
 * subscribers (the workers share the listening socket; node:cluster hands connections round-robin). Workers send
 * their publishes here. A broker message is acknowledged once it is in the spool, as with one process; a worker
 * that starts (or restarts) gets the whole cache first.
 */
export class Relay {
  private readonly workers = new Set<Channel>();
  private readonly listeners = new Map<Channel, (m: unknown) => void>();
  private readonly received: Record<string, number> = {};
  private readonly pendingStats = new Map<number, (stats: GatewayStats | undefined) => void>();
  private connected: boolean;
  private readonly watch: NodeJS.Timeout;
  private nextQuery = 1;

  private constructor(
    private readonly options: RelayOptions,
    readonly cache: LastValueCache,
  ) {
    this.connected = options.backend.connected;
    // The backend has no state events of its own: a change is seen within 200 ms and told to the workers (/healthz).
    this.watch = setInterval(() => {
      if (this.options.backend.connected === this.connected) return;
      this.connected = this.options.backend.connected;
      this.broadcast({ t: 'broker', connected: this.connected });
    }, 200);
    this.watch.unref();
  }

  static async start(options: RelayOptions): Promise<Relay> {
    const relay = new Relay(options, await LastValueCache.open(options.cacheDir));
    await options.backend.start((body) => relay.receive(body));
    return relay;
  }

  /** Serves a worker: its publishes, its stats requests, and from its hello on, the cache and every notification. */
  attach(worker: Channel): void {
    const listener = (m: unknown) => this.onMessage(worker, m as ToPrimary);
    this.listeners.set(worker, listener);
    worker.on('message', listener);
  }

  /** A worker gone: no more notifications for it. */
  detach(worker: Channel): void {
    const listener = this.listeners.get(worker);
    if (listener !== undefined) worker.off('message', listener);
    this.listeners.delete(worker);
    this.workers.delete(worker);
  }

  async close(): Promise<void> {
    clearInterval(this.watch);
    for (const w of [...this.listeners.keys()]) this.detach(w);
    await this.options.backend.close().catch(() => undefined);
  }

  private send(worker: Channel, m: ToWorker): void {
    try {
      worker.send(m);
    } catch {
      // RACE: the worker died since; its exit detaches it, and its subscribers reconnect elsewhere.
    }
  }

  private broadcast(m: ToWorker): void {
    for (const w of this.workers) this.send(w, m);
  }

  private async receive(body: Buffer): Promise<void> {
    const entry = await storeReceived(this.cache, body, this.received, (e) => this.options.onEvent?.(e));
    if (entry !== undefined) this.broadcast({ t: 'notify', body: body.toString('latin1') });
  }

  private onMessage(worker: Channel, m: ToPrimary): void {
    switch (m?.t) {
      case 'hello':
        // The cache, then live notifications, in one tick: nothing stored in between is missed or sent twice.
        for (const e of this.cache.entries()) this.send(worker, { t: 'notify', body: e.body.toString('latin1') });
        this.workers.add(worker);
        this.send(worker, { t: 'ready', connected: this.options.backend.connected });
        return;
      case 'publish':
        this.options.backend.publish(m.repository, Buffer.from(m.body, 'latin1')).then(
          () => this.send(worker, { t: 'published', id: m.id }),
          (err) => this.send(worker, { t: 'published', id: m.id, error: errorOf(err).message }),
        );
        return;
      case 'stats':
        void this.gather(worker, m.own).then((stats) => this.send(worker, { t: 'stats-result', id: m.id, stats }));
        return;
      case 'stats-answer':
        this.pendingStats.get(m.q)?.(m.stats);
        return;
    }
  }

  /** Every worker's figures (the asking one's as given), added up with the primary's. */
  private async gather(asking: Channel, own: GatewayStats): Promise<GatewayStats> {
    const others = [...this.workers].filter((w) => w !== asking);
    const answers = await Promise.all(
      others.map(
        (w) =>
          new Promise<GatewayStats | undefined>((resolve) => {
            const q = this.nextQuery++;
            const timer = setTimeout(() => done(undefined), this.options.statsTimeoutMs ?? 1000);
            const done = (stats: GatewayStats | undefined) => {
              clearTimeout(timer);
              this.pendingStats.delete(q);
              resolve(stats);
            };
            this.pendingStats.set(q, done);
            this.send(w, { t: 'stats-query', q });
          }),
      ),
    );
    const workers = [own, ...answers.filter((s): s is GatewayStats => s !== undefined)];
    return sumStats(
      { received: this.received, brokerConnected: this.options.backend.connected, cachedRepositories: this.cache.size },
      workers,
    );
  }
}

/**
 * A cluster worker's backend: publishes go to the primary (Relay), which holds the broker session; notifications
 * come from it, the whole cache first. The gateway on top keeps its cache in memory (no `cacheDir`).
 */
export class RelayBackend implements NotifyBackend {
  private onNotify: ((body: Buffer) => Promise<void>) | undefined;
  private lastNotify: Promise<void> = Promise.resolve();
  private readonly pending = new Map<number, { resolve: (m: ToWorker) => void; reject: (err: Error) => void }>();
  private nextId = 1;
  private ready: (() => void) | undefined;
  private brokerConnected = false;
  private readonly listener = (m: unknown) => this.onMessage(m as ToWorker);
  /** This worker's own figures, for the primary's stats queries (the gateway's `stats`, once it runs). */
  ownStats: (() => GatewayStats) | undefined;

  constructor(private readonly channel: Channel) {
    channel.on('message', this.listener);
  }

  get connected(): boolean {
    return this.brokerConnected;
  }

  start(onMessage: (body: Buffer) => Promise<void>): Promise<void> {
    this.onNotify = onMessage;
    return new Promise((resolve) => {
      this.ready = resolve;
      this.channel.send({ t: 'hello' } satisfies ToPrimary);
    });
  }

  async publish(repository: string, body: Buffer): Promise<void> {
    const answer = await this.request((id) => ({ t: 'publish', id, repository, body: body.toString('latin1') }));
    if (answer.t === 'published' && answer.error !== undefined) throw new BrokerUnavailableError(answer.error);
  }

  /** The cluster's figures, for the gateway's `clusterStats` option. */
  async clusterStats(own: GatewayStats): Promise<GatewayStats> {
    const answer = await this.request((id) => ({ t: 'stats', id, own }));
    return answer.t === 'stats-result' ? answer.stats : own;
  }

  async close(): Promise<void> {
    this.channel.off('message', this.listener);
    for (const p of this.pending.values()) p.reject(new BrokerUnavailableError('the gateway is closing'));
    this.pending.clear();
  }

  private request(message: (id: number) => ToPrimary): Promise<ToWorker> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        this.channel.send(message(id));
      } catch (err) {
        this.pending.delete(id);
        reject(new BrokerUnavailableError(`the cluster's primary is gone: ${errorOf(err).message}`, { cause: err }));
      }
    });
  }

  private onMessage(m: ToWorker): void {
    switch (m?.t) {
      case 'notify':
        // In order, one at a time: each waits for the one before (the in-memory cache cannot fail, but a later
        // revision must never be stored before an earlier one is).
        {
          const body = Buffer.from(m.body, 'latin1');
          this.lastNotify = this.lastNotify.then(() => this.onNotify?.(body)).catch(() => undefined);
        }
        return;
      case 'ready': {
        this.brokerConnected = m.connected;
        const ready = this.ready;
        this.ready = undefined;
        // Started once the cache sent before `ready` is in: the first subscribers get their last values.
        void this.lastNotify.then(() => ready?.());
        return;
      }
      case 'broker':
        this.brokerConnected = m.connected;
        return;
      case 'stats-query':
        this.channel.send({ t: 'stats-answer', q: m.q, stats: this.ownStats?.() } satisfies ToPrimary);
        return;
      case 'published':
      case 'stats-result': {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        p?.resolve(m);
        return;
      }
    }
  }
}
