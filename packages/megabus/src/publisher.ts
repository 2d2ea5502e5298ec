/**
 * The Megabus Publisher: "send to any". Each message goes to one broker of the alias, picked at random, with a
 * receipt (send() resolves once a broker has it); a broker that fails is left for the next one, each tried once per
 * message. From time to time (reconnect_interval) the alias is resolved again and a broker picked again, so that
 * brokers added to the alias get traffic. With send_to_all, every broker of the alias gets every message.
 *
 * With a spool, a message no broker takes goes to the spool instead (a python-dirq QueueSimple of messages, as
 * stompclt reads and writes) and send() resolves once it is durable there. While the spool holds anything, later
 * messages go to it too, and a forwarder sends its elements in order, one at a time, removing each once a broker
 * confirmed it; once it is empty, sends go straight to the brokers again.
 */
import { abortableSleep, Backoff, type BrokerProtocol, LockJournal, type Outgoing, RejectedError } from '@msgbricks/agent';
import { errorOf } from '@msgbricks/errors';
import { DQS, type Message } from '@msgbricks/message';
import { brokerSettings, protocolOf } from './brokers';
import { type ConfigSource, configOf, emitter, toMessage } from './common';
import type { MegabusConfig } from './config/types';
import { ClosedError, NoBrokerError } from './errors';
import type { MegabusEvent, MegabusEventListener } from './events';
import { dnsResolver, type Endpoint, type Resolver, resolveBrokers } from './resolver';

/** A broker that failed is not picked again for this long while others are there to try. */
const FAILED_COOLDOWN_MS = 5000;

export interface PublisherOptions extends ConfigSource {
  /** Resolves the alias (default: the system's resolver, every A and AAAA address). */
  resolver?: Resolver;
  onEvent?: MegabusEventListener;
}

/** One broker connection of the publisher. */
interface Link {
  readonly endpoint: Endpoint;
  readonly outgoing: Outgoing;
  readonly opened: Promise<void>;
  /** When the publisher picks a broker again (single-broker mode). */
  readonly expires: number;
  dead: boolean;
}

export class Publisher {
  readonly config: MegabusConfig;
  private readonly protocol: BrokerProtocol;
  private readonly resolver: Resolver;
  private readonly emit: (event: MegabusEvent) => void;
  private endpoints: Endpoint[] = [];
  private resolvedAt = Number.NEGATIVE_INFINITY;
  private resolving: Promise<void> | undefined;
  /** Open connections by broker id; in single-broker mode at most `current` and those being retired. */
  private readonly links = new Map<string, Link>();
  private current: Link | undefined;
  private readonly failedAt = new Map<string, number>();
  private readonly spool: DQS | undefined;
  /**
   * The forwarder's locks, written down (`SPOOL.journal`, the agent's LockJournal, as stompclt's --incoming-journal):
   * after a crash the next run unlocks the element it held at once, instead of finding it locked by nobody until
   * the stale-lock purge, with everything behind it waiting or sent out of order.
   */
  private readonly journal: LockJournal | undefined;
  /** While true, every message goes through the spool (it holds messages not forwarded yet). */
  private spooling = false;
  private spoolAddsInFlight = 0;
  private spoolAddsDone = 0;
  /** Elements left in the spool for good this run (refused by a broker, or not messages). */
  private readonly skipped = new Set<string>();
  private forwarder: Promise<void> | undefined;
  /** drain() calls waiting for the spool to be empty. */
  private readonly drainWaiters: (() => void)[] = [];
  private started: Promise<void> | undefined;
  private closed = false;
  private readonly abort = new AbortController();

  constructor(options: PublisherOptions = {}) {
    this.config = configOf(options);
    this.protocol = protocolOf(this.config);
    this.resolver = options.resolver ?? dnsResolver;
    this.emit = emitter(options.onEvent);
    const dir = this.config.publisher.spool;
    this.spool = dir === undefined ? undefined : new DQS(dir, { fsync: true });
    this.journal = dir === undefined ? undefined : new LockJournal(`${dir}.journal`);
  }

  /** Messages waiting in the spool (0 without one). */
  async spooled(): Promise<number> {
    return this.spool === undefined ? 0 : this.spool.count();
  }

  /**
   * Sends a message (or a body and its header): resolves once a broker confirmed it, or, with a spool, once it is
   * durable in the spool. A message without `destination` goes to the configured one. Rejects with a RejectedError
   * when a broker refuses it for good, with a NoBrokerError when no broker took it and there is no spool.
   */
  async send(message: Message | string | Buffer, header?: Readonly<Record<string, string>>): Promise<void> {
    if (this.closed) throw new ClosedError('publisher');
    const m = this.withDefaults(toMessage(message, header));
    this.started ??= this.start();
    await this.started;
    if (this.spool !== undefined && this.spooling) return this.toSpool(this.spool, m);
    try {
      await this.deliver(m);
    } catch (err) {
      if (!(err instanceof NoBrokerError) || this.spool === undefined || this.closed) throw err;
      this.spooling = true;
      await this.toSpool(this.spool, m);
    }
  }

  /**
   * Waits until the spool is forwarded (sends go straight to the brokers again) or `ms` passed; resolves to the
   * messages still in the spool. A short-lived publisher (a command) calls it before close() so that what it spooled
   * while the brokers were away leaves with it when they are back.
   */
  async drain(ms: number): Promise<number> {
    if (this.spool === undefined) return 0;
    this.started ??= this.start();
    await this.started;
    if (this.spooling) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        const waiters = this.drainWaiters;
        function done(): void {
          clearTimeout(timer);
          const i = waiters.indexOf(done);
          if (i >= 0) waiters.splice(i, 1);
          resolve();
        }
        waiters.push(done);
      });
    }
    return this.spool.count();
  }

  /**
   * Stops: the forwarder ends after the element in hand (what is left stays in the spool for the next run, or for a
   * stompclt reading it), and every connection is closed once its sends are confirmed.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    for (const done of [...this.drainWaiters]) done();
    await this.forwarder;
    this.journal?.close();
    this.current = undefined;
    const links = [...this.links.values()];
    this.links.clear();
    await Promise.all(links.map((l) => l.outgoing.close().catch(() => undefined)));
  }

  private withDefaults(m: Message): Message {
    const header = m.header;
    let changed = false;
    if (header.destination === undefined && this.config.destination !== undefined) {
      header.destination = this.config.destination;
      changed = true;
    }
    if (header.persistent === undefined && this.config.publisher.persistent) {
      header.persistent = 'true';
      changed = true;
    }
    return changed ? m.with({ header }) : m;
  }

  /** A spool left non-empty by an earlier run (an outage, a crash) is forwarded before anything new is sent. */
  private async start(): Promise<void> {
    if (this.spool === undefined) return;
    // RACE: an element the last run held may be gone already (it was removed, the crash came before the journal
    // said so): unlock(permissive) then just returns false.
    for (const name of this.journal?.recover() ?? []) await this.spool.unlock(name, true);
    if ((await this.spool.count()) > 0) {
      this.spooling = true;
      this.kick();
    }
  }

  private async toSpool(spool: DQS, m: Message): Promise<void> {
    this.spoolAddsInFlight++;
    let name: string;
    try {
      name = await spool.addMessage(m);
    } finally {
      this.spoolAddsInFlight--;
      this.spoolAddsDone++;
    }
    this.emit({ type: 'spooled', name });
    this.kick();
  }

  /**
   * Starts the forwarder unless it runs. A running one is not woken: it is either passing over the spool (it sees the
   * new element) or waiting because no broker answered, and new messages are no reason to try sooner.
   */
  private kick(): void {
    if (this.forwarder !== undefined) return;
    this.forwarder = this.forward().finally(() => {
      this.forwarder = undefined;
      // RACE: a message spooled after the last pass decided to stop cannot be (adds are counted), but one spooled
      // by a send that failed over after that decision can: start again for it.
      if (this.spooling && !this.closed) this.kick();
    });
  }

  /** Passes over the spool until a pass finds it empty with no add in between; waits (backoff) while no broker answers. */
  private async forward(): Promise<void> {
    const spool = this.spool as DQS;
    let forwarded = 0;
    const newBackoff = () => new Backoff(200, this.config.maxReconnectDelay, 2);
    let backoff = newBackoff();
    while (!this.closed) {
      const addsBefore = this.spoolAddsDone;
      const pass = await this.forwardPass(spool);
      forwarded += pass.forwarded;
      if (this.closed) return;
      if (pass.blocked === undefined) {
        // Every add that completed before the pass began was seen by it; one in flight or completed since may not be.
        if (this.spoolAddsInFlight === 0 && this.spoolAddsDone === addsBefore) {
          this.spooling = false;
          this.emit({ type: 'spool-drained', forwarded });
          for (const done of [...this.drainWaiters]) done();
          return;
        }
        continue;
      }
      if (pass.forwarded > 0) backoff = newBackoff();
      await abortableSleep(backoff.nextWait(), this.abort.signal);
      backoff.grow();
    }
  }

  /** One pass in element order; stops at the first message no broker takes (order is kept). */
  private async forwardPass(spool: DQS): Promise<{ forwarded: number; blocked?: Error }> {
    let forwarded = 0;
    for await (const name of spool) {
      if (this.closed) break;
      if (this.skipped.has(name)) continue;
      this.journal?.taken(name);
      // RACE: another reader of the spool (a stompclt) holds it, or took it already: its business.
      if (!(await spool.lock(name))) {
        this.journal?.dropped(name);
        continue;
      }
      let m: Message;
      try {
        m = await spool.getMessage(name);
      } catch (err) {
        this.skip(spool, name, errorOf(err));
        continue;
      }
      try {
        await this.deliver(m);
      } catch (err) {
        if (err instanceof RejectedError) {
          this.skip(spool, name, err);
          continue;
        }
        await spool.unlock(name, true);
        this.journal?.dropped(name);
        return { forwarded, blocked: errorOf(err) };
      }
      await spool.remove(name);
      this.journal?.dropped(name);
      forwarded++;
    }
    return { forwarded };
  }

  /** Leaves an element in the spool, unlocked (for an operator or another reader), and goes on with the next. */
  private skip(spool: DQS, name: string, error: Error): void {
    this.skipped.add(name);
    this.emit({ type: 'spool-skipped', name, error });
    void spool
      .unlock(name, true)
      .then(() => this.journal?.dropped(name))
      .catch(() => undefined);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Brokers

  private deliver(m: Message): Promise<void> {
    return this.config.publisher.sendToAll ? this.deliverAll(m) : this.deliverOne(m);
  }

  /** To one broker: the current one, else one picked at random; each broker tried at most once for this message. */
  private async deliverOne(m: Message): Promise<void> {
    const tried = new Set<string>();
    const failures: string[] = [];
    for (;;) {
      const link = await this.pick(tried, failures);
      try {
        await link.opened;
        await link.outgoing.send(m);
        return;
      } catch (err) {
        if (err instanceof RejectedError) throw err;
        tried.add(link.endpoint.id);
        failures.push(`${link.endpoint.id}: ${errorOf(err).message}`);
        this.retire(link, errorOf(err));
      }
    }
  }

  /** To every broker of the alias: resolves when at least one has it (consumers read from all). */
  private async deliverAll(m: Message): Promise<void> {
    await this.refresh(false);
    if (this.closed) throw new ClosedError('publisher');
    const now = Date.now();
    const fresh = this.endpoints.filter((e) => !(now - (this.failedAt.get(e.id) ?? -Infinity) < FAILED_COOLDOWN_MS));
    const targets = fresh.length > 0 ? fresh : this.endpoints;
    const failures: string[] = [];
    let rejected: RejectedError | undefined;
    let delivered = 0;
    await Promise.all(
      targets.map(async (e) => {
        const link = this.links.get(e.id) ?? this.open(e);
        try {
          await link.opened;
          await link.outgoing.send(m);
          delivered++;
        } catch (err) {
          if (err instanceof RejectedError) rejected = err;
          else {
            failures.push(`${e.id}: ${errorOf(err).message}`);
            this.retire(link, errorOf(err));
          }
        }
      }),
    );
    if (delivered > 0) return;
    if (rejected !== undefined) throw rejected;
    throw new NoBrokerError(`no broker took the message: ${failures.join('; ')}`, failures);
  }

  /** The link to send on: the current one while usable, else a new one to a broker not tried yet. */
  private async pick(tried: ReadonlySet<string>, failures: string[]): Promise<Link> {
    if (this.closed) throw new ClosedError('publisher');
    const usable = (l: Link | undefined): l is Link => l !== undefined && !l.dead && !tried.has(l.endpoint.id);
    const cur = this.current;
    if (usable(cur) && Date.now() < cur.expires) return cur;
    if (usable(cur)) {
      // Used long enough: pick again among the brokers the alias has now, so new ones get traffic.
      this.rotate(cur);
    }
    await this.refresh(cur !== undefined && Date.now() >= cur.expires);
    if (this.closed) throw new ClosedError('publisher');
    // Another send may have picked while this one waited for the resolution.
    if (usable(this.current)) return this.current;
    const candidates = this.endpoints.filter((e) => !tried.has(e.id));
    if (candidates.length === 0) {
      const what = this.endpoints.length === 0 ? 'no broker known' : `no broker took the message: ${failures.join('; ')}`;
      throw new NoBrokerError(what, failures);
    }
    const now = Date.now();
    const fresh = candidates.filter((e) => !(now - (this.failedAt.get(e.id) ?? -Infinity) < FAILED_COOLDOWN_MS));
    const pool = fresh.length > 0 ? fresh : candidates;
    const e = pool[Math.floor(Math.random() * pool.length)] as Endpoint;
    const link = this.links.get(e.id) ?? this.open(e);
    // RACE: another send made a link to a broker this one already failed on: that link goes on for the sends it
    // has, and closes after them; one broker at a time.
    // (The guard above narrowed `current` to undefined, but a dead or tried link fails it too.)
    const previous = this.current as Link | undefined;
    if (previous !== undefined && previous !== link && !previous.dead) this.rotate(previous);
    this.current = link;
    return link;
  }

  private open(e: Endpoint): Link {
    // One attempt per connection (and one after a loss): failing over to another broker beats waiting for this one.
    const settings = brokerSettings(this.config, e, { maxAttempts: 0 }, (event) =>
      this.emit({ type: 'broker-event', broker: e.id, event }),
    );
    const outgoing = this.protocol.outgoing(settings);
    const opened = outgoing.open().then(() => this.emit({ type: 'connected', broker: e.id }));
    opened.catch(() => undefined);
    const link: Link = {
      endpoint: e,
      outgoing,
      opened,
      expires: Date.now() + this.config.publisher.reconnectInterval,
      dead: false,
    };
    this.links.set(e.id, link);
    return link;
  }

  /** A broker failed: its connection is dropped (what it still has in flight fails over too). */
  private retire(link: Link, error: Error): void {
    if (link.dead) return;
    link.dead = true;
    this.failedAt.set(link.endpoint.id, Date.now());
    if (this.current === link) this.current = undefined;
    if (this.links.get(link.endpoint.id) === link) this.links.delete(link.endpoint.id);
    this.emit({ type: 'broker-failed', broker: link.endpoint.id, error });
    void link.outgoing.close().catch(() => undefined);
  }

  /** Leaves a healthy broker: its connection closes once what it has in flight is confirmed. */
  private rotate(link: Link): void {
    link.dead = true;
    if (this.current === link) this.current = undefined;
    if (this.links.get(link.endpoint.id) === link) this.links.delete(link.endpoint.id);
    this.emit({ type: 'rotated', broker: link.endpoint.id });
    void link.outgoing.close().catch(() => undefined);
  }

  /** Resolves the alias again when asked to or when the last resolution is older than resolve_interval. */
  private async refresh(force: boolean): Promise<void> {
    if (!force && Date.now() - this.resolvedAt < this.config.resolveInterval) return;
    this.resolving ??= (async () => {
      try {
        const found = await resolveBrokers(this.config.brokers, this.resolver);
        this.endpoints = found;
        this.resolvedAt = Date.now();
        this.emit({ type: 'resolved', brokers: found.map((e) => e.id) });
        const ids = new Set(found.map((e) => e.id));
        // Brokers that left the alias: not used for new messages (send_to_all keeps no connection to them).
        for (const link of [...this.links.values()]) if (!ids.has(link.endpoint.id) && link !== this.current) this.rotate(link);
        if (this.current !== undefined && !ids.has(this.current.endpoint.id)) this.rotate(this.current);
      } catch (err) {
        // The last list is kept; with none at all, every send finds no broker (and spools, if it can).
        this.emit({ type: 'resolve-failed', error: errorOf(err) });
        // Tried again soon rather than at the next interval: until then the alias's brokers are unknown or stale.
        this.resolvedAt = Date.now() - this.config.resolveInterval + Math.min(this.config.resolveInterval, 5000);
      } finally {
        this.resolving = undefined;
      }
    })();
    await this.resolving;
  }
}
