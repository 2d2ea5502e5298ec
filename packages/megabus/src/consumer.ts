/**
 * The Megabus Consumer: "receive from all". It keeps one subscription on every broker of the alias, resolves the
 * alias again every resolve_interval, subscribes to brokers that joined, and stays with a broker that left ("sticky")
 * until it delivered nothing for drain_quiet, so that its destination is drained before it goes away for
 * maintenance; then it closes that connection. Each message is handed to the handler, one at a time whatever its
 * broker, and acknowledged only once the handler returned (or once it is durable in the consumer's spool); a handler
 * that throws gets the message again later (it is given back to its broker).
 */
import { abortableSleep, type BrokerProtocol, type Incoming } from '@msgbricks/agent';
import { errorOf, MsgbricksError } from '@msgbricks/errors';
import { DQS, type Message } from '@msgbricks/message';
import { brokerSettings, protocolOf } from './brokers';
import { type ConfigSource, configOf, emitter } from './common';
import type { MegabusConfig } from './config/types';
import { ClosedError } from './errors';
import type { MegabusEvent, MegabusEventListener } from './events';
import { buildFilter, type Filter, type FilterConfig } from './filter';
import { dnsResolver, type Endpoint, type Resolver, resolveBrokers } from './resolver';

/** What the handler learns besides the message: the broker it came from (`host:port`). */
export interface MessageContext {
  readonly broker: string;
}

/** User code run for each message; the message is acknowledged once it returns (or its promise resolves). */
export type MessageHandler = (message: Message, context: MessageContext) => void | Promise<void>;

export interface ConsumerOptions extends ConfigSource {
  /** Run for each message; without it, consumer.spool must be configured (messages go there). */
  handler?: MessageHandler;
  /** Resolves the alias (default: the system's resolver, every A and AAAA address). */
  resolver?: Resolver;
  onEvent?: MegabusEventListener;
  /**
   * Client-side filtering in code: a message it returns false for is acknowledged without reaching the handler (and
   * counted as filtered), as one the selectors do not select.
   */
  filter?: (message: Message) => boolean;
  /**
   * The selectors of this consumer instead of the configuration's top-level ones (a plugin's, read with
   * parseFilterKeys).
   */
  filtering?: FilterConfig;
  /**
   * Milliseconds stop() waits for the handler call in progress (default 10000); past it, the connections close
   * anyway and the message is delivered again later (its acknowledgement can no longer be sent).
   */
  stopTimeout?: number;
}

/** A broker the consumer is subscribed to, and whether it is still in the alias. */
export interface ConsumerBroker {
  readonly broker: string;
  readonly state: 'active' | 'draining';
}

/** How long a handler failure holds its broker's messages back before the message is given back. */
const HANDLER_RETRY_DELAY_MS = 1000;

interface Member {
  readonly endpoint: Endpoint;
  readonly incoming: Incoming;
  state: 'active' | 'draining';
  /** When it left the alias (draining). */
  since: number;
  /** Subscribed at least once (until then the connection is still trying). */
  opened: boolean;
  /** The last delivery or acknowledgement. */
  lastActivity: number;
  stopped: boolean;
  loop: Promise<void>;
  wake: (() => void) | undefined;
}

export class Consumer {
  readonly config: MegabusConfig;
  /** The destination consumed. */
  readonly destination: string;
  private readonly protocol: BrokerProtocol;
  private readonly resolver: Resolver;
  private readonly handler: MessageHandler;
  private readonly emit: (event: MegabusEvent) => void;
  private readonly members = new Map<string, Member>();
  /** Handler calls, one at a time. */
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private stopped = false;
  private readonly abort = new AbortController();
  private readonly stopTimeout: number;
  private readonly filter: ((message: Message) => boolean) | undefined;
  /** The configured selectors, evaluated on every message (the broker may have applied them already). */
  readonly selection: Filter;
  private filteredCount = 0;

  constructor(options: ConsumerOptions = {}) {
    this.config = configOf(options);
    this.stopTimeout = options.stopTimeout ?? 10_000;
    this.filter = options.filter;
    this.selection = buildFilter(options.filtering ?? this.config.filter);
    this.protocol = protocolOf(this.config);
    this.resolver = options.resolver ?? dnsResolver;
    this.emit = emitter(options.onEvent);
    const destination = this.config.consumer.destination ?? this.config.destination;
    if (destination === undefined) {
      throw new MsgbricksError('ERR_MEGABUS_DESTINATION', 'a Consumer needs a destination (consumer.destination or destination)');
    }
    this.destination = destination;
    const spool = this.config.consumer.spool;
    if (options.handler !== undefined) this.handler = options.handler;
    else if (spool !== undefined) {
      const q = new DQS(spool, { fsync: true });
      this.handler = async (m) => {
        await q.addMessage(m);
      };
    } else throw new MsgbricksError('ERR_MEGABUS_HANDLER', 'a Consumer needs a handler, or consumer.spool to write messages to');
  }

  /** Messages consumed without reaching the handler: the selectors or the filter did not select them. */
  get filtered(): number {
    return this.filteredCount;
  }

  /** The brokers subscribed to now. */
  get brokers(): ConsumerBroker[] {
    return [...this.members.values()].map((m) => ({ broker: m.endpoint.id, state: m.state }));
  }

  /**
   * Resolves the alias and subscribes to every broker (each connection retries on its own while its broker is
   * away); resolves once the first resolution is done, not once every broker is connected.
   */
  async start(): Promise<void> {
    if (this.stopped) throw new ClosedError('consumer');
    if (this.started) return;
    this.started = true;
    await this.refresh(true);
  }

  /**
   * Stops: waits for the handler call in progress (at most stopTimeout), gives back what was delivered but not
   * acknowledged, disconnects.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    clearTimeout(this.timer);
    const members = [...this.members.values()];
    for (const m of members) {
      m.stopped = true;
      m.wake?.();
    }
    const linger = new AbortController();
    await Promise.race([this.chain, abortableSleep(this.stopTimeout, linger.signal)]);
    linger.abort();
    await Promise.all(members.map((m) => this.closeMember(m)));
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.refresh(false), ms);
  }

  private async refresh(first: boolean): Promise<void> {
    let found: Endpoint[];
    try {
      found = await resolveBrokers(this.config.brokers, this.resolver);
    } catch (err) {
      this.emit({ type: 'resolve-failed', error: errorOf(err) });
      // The brokers subscribed to stay; the alias is tried again soon.
      this.schedule(Math.min(this.config.resolveInterval, 5000));
      return;
    }
    if (this.stopped) return;
    this.emit({ type: 'resolved', brokers: found.map((e) => e.id) });
    const ids = new Set(found.map((e) => e.id));
    for (const e of found) {
      const m = this.members.get(e.id);
      if (m === undefined) {
        if (!first) this.emit({ type: 'broker-added', broker: e.id });
        try {
          this.add(e);
        } catch (err) {
          // Settings that cannot be used (credentials, TLS files): start() says so; later, from a timer, it is
          // reported and the broker tried again at the next resolution (the files may be back).
          if (first) throw err;
          this.emit({ type: 'broker-failed', broker: e.id, error: errorOf(err) });
        }
      } else if (m.state === 'draining') {
        m.state = 'active';
        this.emit({ type: 'undrained', broker: e.id });
      }
    }
    for (const m of this.members.values()) {
      if (!ids.has(m.endpoint.id) && m.state === 'active') {
        m.state = 'draining';
        m.since = Date.now();
        this.emit({ type: 'draining', broker: m.endpoint.id });
        m.wake?.();
      }
      // One that left while unreachable, never subscribed: its loop waits in the connection attempts, so it is
      // given up from here once quiet as long (it delivered nothing to this consumer).
      if (m.state === 'draining' && !m.opened && this.drained(m)) void this.finishDrain(m);
    }
    this.schedule(this.config.resolveInterval);
  }

  private add(e: Endpoint): void {
    const c = this.config;
    const settings = brokerSettings(c, e, { maxAttempts: -1, maxDelay: c.maxReconnectDelay }, (event) =>
      this.emit({ type: 'broker-event', broker: e.id, event }),
    );
    // With use_broker_filtering the broker gets the selector: the STOMP `selector` header, the AMQP `jms-selector`
    // source filter (the broker modules' subscription key, as stompclt's --filter-on-broker).
    const selector = this.selection.brokerSelector;
    const incoming = this.protocol.incoming(settings, {
      subscribe: [selector === undefined ? { destination: this.destination } : { destination: this.destination, selector }],
      prefetch: c.consumer.prefetch,
      ack: 'client',
    });
    const m: Member = {
      endpoint: e,
      incoming,
      state: 'active',
      since: 0,
      opened: false,
      lastActivity: Date.now(),
      stopped: false,
      loop: Promise.resolve(),
      wake: undefined,
    };
    this.members.set(e.id, m);
    m.loop = this.run(m).finally(() => {
      if (this.members.get(e.id) === m) this.members.delete(e.id);
    });
  }

  /** One broker: subscribe (retrying while it is away), then hand each message over and acknowledge it. */
  private async run(m: Member): Promise<void> {
    try {
      await m.incoming.open();
    } catch (err) {
      // Only a close (stop, or drained while still connecting) ends the connection attempts.
      if (!m.stopped && !this.stopped) this.emit({ type: 'broker-failed', broker: m.endpoint.id, error: errorOf(err) });
      if (m.state === 'draining') await this.finishDrain(m);
      return;
    }
    m.opened = true;
    this.emit({ type: 'connected', broker: m.endpoint.id });
    m.incoming.onArrival?.(() => m.wake?.());
    while (!m.stopped) {
      const d = await m.incoming.next().catch(() => undefined);
      if (d === null) break;
      if (d === undefined) {
        if (this.drained(m)) {
          await this.finishDrain(m);
          return;
        }
        await this.idle(m);
        continue;
      }
      m.lastActivity = Date.now();
      // Checked even when the broker filtered: a broker that ignores selectors (RabbitMQ) lets everything through.
      if (!this.selection.matches(d.message) || (this.filter !== undefined && !this.filter(d.message))) {
        // Not for this consumer: consumed, as a broker-side selector would never have delivered it.
        this.filteredCount++;
        this.emit({ type: 'filtered', broker: m.endpoint.id });
        await m.incoming.ack(d.id).catch(() => undefined);
        continue;
      }
      try {
        await this.serial(() => this.handler(d.message, { broker: m.endpoint.id }));
      } catch (err) {
        this.emit({ type: 'handler-failed', broker: m.endpoint.id, error: errorOf(err) });
        await abortableSleep(HANDLER_RETRY_DELAY_MS, this.abort.signal);
        await m.incoming.release(d.id).catch(() => undefined);
        continue;
      }
      // A connection lost since the delivery: the broker delivers it again (at least once).
      await m.incoming.ack(d.id).catch(() => undefined);
      m.lastActivity = Date.now();
    }
  }

  private drained(m: Member): boolean {
    return m.state === 'draining' && Date.now() - Math.max(m.since, m.lastActivity) >= this.config.consumer.drainQuiet;
  }

  /** Waits for a delivery, a stop, or the next look at the drain state. */
  private idle(m: Member): Promise<void> {
    const tick = m.state === 'draining' ? Math.max(10, Math.min(1000, this.config.consumer.drainQuiet / 4)) : 1000;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, tick);
      function done(): void {
        clearTimeout(timer);
        m.wake = undefined;
        resolve();
      }
      m.wake = done;
    });
  }

  private async finishDrain(m: Member): Promise<void> {
    if (m.stopped) return;
    m.stopped = true;
    if (this.members.get(m.endpoint.id) === m) this.members.delete(m.endpoint.id);
    await this.closeMember(m);
    this.emit({ type: 'drained', broker: m.endpoint.id });
  }

  private async closeMember(m: Member): Promise<void> {
    m.stopped = true;
    await m.incoming.close().catch(() => undefined);
  }

  private serial(fn: () => void | Promise<void>): Promise<void> {
    const p = this.chain.then(fn);
    this.chain = p.catch(() => undefined);
    return p;
  }
}
