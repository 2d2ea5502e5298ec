import type { Delivery as AgentDelivery, Incoming } from '@msgbricks/agent';
import { Message } from '@msgbricks/message';
import type {
  Connection,
  Delivery,
  EventContext,
  Receiver,
  ReceiverOptions,
  Message as RheaMessage,
  Session,
  Source,
} from 'rhea';
import { filter } from 'rhea';
import { AmqpConnection, type AmqpConnectionOptions } from './connection';
import { AmqpConnectError, AmqpSubscribeError, brokerError } from './errors';
import { amqpToMessage } from './mapping';
import { isNullTerminus } from './terminus';

/** What a `--subscribe` entry means for AMQP 1.0: a source address, its terminus durability and a selector. */
export interface AmqpSubscription {
  readonly address: string;
  /** The source terminus `durable` field: 2 for queues (RabbitMQ's durability trap), 0 for topics and exchanges. */
  readonly durable: 0 | 1 | 2;
  /** A JMS selector, sent as the `jms-selector` source filter (honoured by ActiveMQ, Artemis, Qpid; RabbitMQ 3.10 ignores it). */
  readonly selector?: string;
}

const SUBSCRIBE_KEYS = new Set(['destination', 'exchange', 'routing_key', 'queue', 'selector', 'durable']);

function nonEmpty(entry: Readonly<Record<string, string>>, key: string): string | undefined {
  const v = entry[key];
  if (v === undefined) return undefined;
  if (v.trim() === '') throw new AmqpSubscribeError(`subscription ${key} is empty`);
  return v.trim();
}

/**
 * Turns an amqpclt `--subscribe` entry into a source: `destination=/queue/N`, `/topic/RK`, `/exchange/X/RK`,
 * `/amq/queue/Q` (or any other address, passed as is), `exchange=X [routing_key=RK]` -> `/exchange/X[/RK]` (a
 * private queue bound to X), `queue=Q` -> `/amq/queue/Q` (an existing queue, whatever its type and
 * durability; `destination=/queue/Q` declares it instead). `selector` and `durable` (0, 1, 2, true, false) are
 * optional. amqpclt's binding of a named queue (`exchange` with `queue`) and `arguments` have no AMQP 1.0
 * address on RabbitMQ 3.10: they are refused.
 */
export function parseSubscription(entry: Readonly<Record<string, string>>): AmqpSubscription {
  const unknown = Object.keys(entry).filter((k) => !SUBSCRIBE_KEYS.has(k));
  if (unknown.length > 0) {
    throw new AmqpSubscribeError(
      `unsupported subscription key${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}: expected ${[...SUBSCRIBE_KEYS].join(', ')}`,
    );
  }
  const destination = nonEmpty(entry, 'destination');
  const exchange = nonEmpty(entry, 'exchange');
  const queue = nonEmpty(entry, 'queue');
  const routingKey = entry.routing_key;
  let address: string;
  if (destination !== undefined) {
    if (exchange !== undefined || queue !== undefined || routingKey !== undefined) {
      throw new AmqpSubscribeError('a subscription gives either destination or exchange/routing_key/queue, not both');
    }
    address = destination;
  } else if (exchange !== undefined) {
    if (queue !== undefined) {
      throw new AmqpSubscribeError(
        `binding queue ${queue} to exchange ${exchange} has no AMQP 1.0 address on RabbitMQ: bind it beforehand and subscribe with queue=${queue}`,
      );
    }
    if (exchange.includes('/')) throw new AmqpSubscribeError(`exchange name ${JSON.stringify(exchange)} contains a /`);
    address = routingKey === undefined || routingKey === '' ? `/exchange/${exchange}` : `/exchange/${exchange}/${routingKey}`;
  } else if (queue !== undefined) {
    if (routingKey !== undefined) throw new AmqpSubscribeError('routing_key needs exchange');
    if (queue.includes('/')) throw new AmqpSubscribeError(`queue name ${JSON.stringify(queue)} contains a /`);
    address = `/amq/queue/${queue}`;
  } else {
    throw new AmqpSubscribeError('a subscription needs destination, exchange or queue');
  }
  let durable: 0 | 1 | 2;
  const d = entry.durable?.trim().toLowerCase();
  if (d === undefined) {
    // RabbitMQ 3.10 makes a server-named queue for each topic or exchange attach and never deletes it: with
    // durable 2 it would be durable too, and pile up across restarts.
    durable = /^\/(topic|exchange)\//.test(address) ? 0 : 2;
  } else if (d === '0' || d === 'false') durable = 0;
  else if (d === '1') durable = 1;
  else if (d === '2' || d === 'true') durable = 2;
  else throw new AmqpSubscribeError(`invalid subscription durable=${entry.durable}: expected 0, 1, 2, true or false`);
  const selector = entry.selector;
  return selector === undefined || selector === '' ? { address, durable } : { address, durable, selector };
}

export interface AmqpIncomingOptions {
  /** The subscriptions, as `--subscribe` key=value sets (parseSubscription). */
  subscribe: readonly Readonly<Record<string, string>>[];
  /** Most unsettled deliveries per subscription: the link credit (default 100). */
  prefetch?: number;
  /**
   * `client` (default): accept once safe downstream (ack), release on release. `auto`: accept on arrival (amqpclt
   * without --reliable): ack() and release() do nothing, and what is buffered when the connection drops is lost.
   */
  ack?: 'client' | 'auto';
  /** Milliseconds between attempts to re-attach a receiver the broker detached (default: growing up to 5000). */
  reattachMaxDelay?: number;
}

interface Subscription extends AmqpSubscription {
  /** The outcome given in this turn of the event loop, if any (see settle()). */
  outcome: 'accept' | 'release' | undefined;
  owed: number;
  receiver: Receiver | undefined;
  session: Session | undefined;
  open: boolean;
  failures: number;
  timer: NodeJS.Timeout | undefined;
  /** Until the first attach: how open() learns that it worked, or why not. */
  first: { promise: Promise<void>; resolve(): void; reject(err: Error): void } | undefined;
}

interface Received {
  readonly id: string;
  readonly sub: Subscription;
  readonly receiver: Receiver;
  readonly delivery: Delivery;
  readonly message: RheaMessage | Buffer;
  readonly format: number;
}

/** rhea's session incoming buffer is reclaimed from its head only (amqp/rhea#452): make it far larger than the credit. */
const INCOMING_BUFFER_MIN = 65_536;

function deferred(): { promise: Promise<void>; resolve(): void; reject(err: Error): void } {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // open() may never be called: an unobserved rejection must not be reported.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/**
 * A broker as the incoming side, over AMQP 1.0: one session and one receiver per subscription, with manual
 * credit (rhea's credit window refills on arrival, not on settlement): `prefetch` credit at attach, and the
 * credit of the deliveries accepted or released given back once the link has used all it had, so unsettled
 * deliveries never exceed `prefetch`. ack() accepts, release() releases (the broker delivers it again). After a
 * lost connection the buffer and the unsettled deliveries are dropped (the broker delivers them again) and the
 * receivers re-attached with fresh credit; a receiver the broker detaches is re-attached the same way.
 */
export class AmqpIncoming implements Incoming {
  readonly description: string;
  readonly connection: AmqpConnection;
  private readonly owned: boolean;
  private readonly subs: Subscription[];
  private readonly prefetch: number;
  private buffer: Received[] = [];
  private readonly pending = new Map<string, Received>();
  private readonly unwatch: () => void;
  private opened = false;
  private closing = false;
  private nextId = 0;
  private arrival: (() => void) | undefined;

  constructor(
    connection: AmqpConnection | AmqpConnectionOptions,
    private readonly options: AmqpIncomingOptions,
  ) {
    if (options.subscribe.length === 0) throw new AmqpSubscribeError('no subscription given');
    this.prefetch = options.prefetch ?? 100;
    if (!Number.isInteger(this.prefetch) || this.prefetch < 1) {
      throw new AmqpSubscribeError(`invalid prefetch ${options.prefetch}: expected a positive integer`);
    }
    this.subs = options.subscribe.map((entry) => ({
      ...parseSubscription(entry),
      outcome: undefined,
      owed: 0,
      receiver: undefined,
      session: undefined,
      open: false,
      failures: 0,
      timer: undefined,
      first: deferred(),
    }));
    this.owned = !(connection instanceof AmqpConnection);
    this.connection = connection instanceof AmqpConnection ? connection : new AmqpConnection(connection);
    this.description = `broker ${this.connection.description}`;
    this.unwatch = this.connection.watch({
      open: (conn) => this.connectionUp(conn),
      down: () => this.connectionDown(),
      failed: (err) => {
        for (const sub of this.subs) this.settleFirst(sub, err);
      },
    });
  }

  /** Deliveries received and not yet settled: buffered, or handed out by next() and not yet acked or released. */
  get unsettled(): number {
    return this.buffer.length + this.pending.size;
  }

  private get auto(): boolean {
    return this.options.ack === 'auto';
  }

  /** Connects and attaches every receiver; rejects (and closes) if the broker refuses one of them. */
  async open(): Promise<void> {
    this.opened = true;
    try {
      await this.connection.open();
      const conn = this.connection.current;
      if (conn !== undefined) this.connectionUp(conn);
      await Promise.all(this.subs.map((s) => s.first?.promise));
    } catch (err) {
      await this.close().catch(() => undefined);
      throw err;
    }
  }

  private settleFirst(sub: Subscription, err?: Error): void {
    const first = sub.first;
    if (first === undefined) return;
    sub.first = undefined;
    if (err === undefined) first.resolve();
    else first.reject(err);
  }

  private connectionUp(conn: Connection): void {
    if (!this.opened || this.closing) return;
    for (const sub of this.subs) if (sub.receiver === undefined && sub.timer === undefined) this.attach(sub, conn);
  }

  private connectionDown(): void {
    for (const sub of this.subs) {
      sub.receiver = undefined;
      sub.session = undefined;
      sub.open = false;
      clearTimeout(sub.timer);
      sub.timer = undefined;
    }
    // The broker gives back whatever was unsettled on the dead connection.
    this.buffer = [];
    this.pending.clear();
  }

  private attach(sub: Subscription, conn: Connection): void {
    const session = conn.create_session({ incoming: Math.max(INCOMING_BUFFER_MIN, this.prefetch * 16) });
    session.begin();
    const source: Source = { address: sub.address, durable: sub.durable };
    if (sub.selector !== undefined) source.filter = filter.selector(sub.selector);
    const receiver = session.open_receiver({ source, credit_window: 0, autoaccept: false } as ReceiverOptions);
    sub.session = session;
    sub.receiver = receiver;
    sub.open = false;
    const what = `receiver from ${sub.address}`;
    session.on('session_error', (ctx: EventContext) =>
      this.linkFailed(sub, receiver, brokerError(`session of the ${what}`, ctx.session?.error), true),
    );
    session.on('session_close', () =>
      this.linkFailed(sub, receiver, new Error(`the broker ended the session of the ${what}`), true),
    );
    receiver.on('receiver_error', (ctx: EventContext) =>
      this.linkFailed(sub, receiver, brokerError(what, ctx.receiver?.error), false),
    );
    receiver.on('receiver_close', () => this.linkFailed(sub, receiver, new Error(`the broker detached the ${what}`), false));
    receiver.on('receiver_open', () => {
      // A null source in the broker's attach is a refusal: its detach (with the reason) follows.
      if (sub.receiver !== receiver || isNullTerminus(receiver.source)) return;
      sub.open = true;
      sub.owed = 0;
      receiver.add_credit(this.prefetch);
      this.settleFirst(sub);
    });
    receiver.on('message', (ctx: EventContext) => this.arrive(sub, receiver, ctx));
  }

  private arrive(sub: Subscription, receiver: Receiver, ctx: EventContext): void {
    const delivery = ctx.delivery;
    // RACE: a transfer already on the wire when its link was given up; the broker delivers it again.
    if (sub.receiver !== receiver || delivery === undefined || ctx.message === undefined) return;
    sub.failures = 0;
    const format = (ctx as { format?: number }).format ?? 0;
    const r: Received = { id: `${this.nextId++}`, sub, receiver, delivery, message: ctx.message, format };
    if (this.auto) this.settle(r, true);
    else this.refill(sub, receiver);
    this.buffer.push(r);
    this.arrival?.();
  }

  onArrival(listener: () => void): void {
    this.arrival = listener;
  }

  /** The receiver (or its session) is gone while the connection stays: drop its deliveries, attach again later. */
  private linkFailed(sub: Subscription, receiver: Receiver, err: Error, sessionEnded: boolean): void {
    if (sub.receiver !== receiver) return;
    const session = sub.session;
    sub.receiver = undefined;
    sub.session = undefined;
    sub.open = false;
    // As AmqpOutgoing: detach a detached link in the same turn as the end; an ended session is only ended.
    if (!sessionEnded) receiver.close();
    session?.close();
    this.buffer = this.buffer.filter((r) => r.sub !== sub);
    for (const [id, r] of this.pending) if (r.sub === sub) this.pending.delete(id);
    if (this.closing) return;
    if (sub.first !== undefined) {
      // Refused at open: a wrong address, a missing queue... say so rather than retry forever.
      this.settleFirst(sub, err);
      return;
    }
    this.connection.reportLinkError(sub.address, err);
    sub.failures++;
    const max = this.options.reattachMaxDelay ?? 5000;
    const delay = sub.failures <= 1 ? 0 : Math.min(max, 50 * 2 ** (sub.failures - 2));
    sub.timer = setTimeout(() => {
      sub.timer = undefined;
      const conn = this.connection.current;
      if (conn !== undefined && sub.receiver === undefined && !this.closing) this.attach(sub, conn);
    }, delay);
  }

  async next(): Promise<AgentDelivery | null | undefined> {
    const r = this.buffer.shift();
    if (r === undefined) return undefined;
    let message: Message;
    if (r.format === 0 && !Buffer.isBuffer(r.message)) message = amqpToMessage(r.message);
    else {
      // A message format other than AMQP's own: rhea hands over the raw bytes.
      message = new Message({ header: { 'x-amqp-message-format': String(r.format) }, body: r.message as Buffer });
    }
    const header = message.headerEntries().filter(([k]) => k !== 'destination');
    header.push(['destination', r.sub.address]);
    if (!this.auto) this.pending.set(r.id, r);
    return { id: r.id, message: message.with({ header }) };
  }

  /** Accepts (or releases) a delivery and gives its credit back; moot when its link is gone. */
  private settle(r: Received, accept: boolean): void {
    // RACE: acked after its link was lost: the broker has already taken it back and delivers it again.
    if (r.receiver !== r.sub.receiver || !r.sub.open) return;
    const outcome = accept ? 'accept' : 'release';
    const sub = r.sub;
    if (sub.outcome !== undefined && sub.outcome !== outcome) {
      // N.B. rhea 3.0.5 batches the dispositions of a session given in one turn into ranges, and a range that
      // holds a single delivery absorbs the next one whatever its outcome (write_dispositions in lib/session.js):
      // a release right after an accept of the previous delivery would go out as accepted, and the message be
      // lost. A different outcome waits for the next turn, after rhea has written the first.
      setImmediate(() => this.settle(r, accept));
      return;
    }
    if (sub.outcome === undefined) {
      sub.outcome = outcome;
      setImmediate(() => {
        sub.outcome = undefined;
      });
    }
    if (accept) r.delivery.accept();
    else r.delivery.release();
    if (!this.closing) {
      sub.owed++;
      this.refill(sub, r.receiver);
    }
  }

  /**
   * Gives back the credit of settled deliveries, but only once the link has none left. N.B. RabbitMQ 3.10 rebases
   * a flow's credit on the transfers it has sent; a flow that crosses transfers still on the wire can come out
   * negative there, which it then treats as a large credit (a flow back from it says 255) and overruns the
   * prefetch by hundreds (measured: 336 unsettled for a prefetch of 10). With no credit left, nothing is in
   * flight and the flow cannot cross anything.
   */
  private refill(sub: Subscription, receiver: Receiver): void {
    // rhea's own count of the credit the broker still has on this link (not in its typings).
    const credit = (receiver as unknown as { credit: number }).credit;
    if (sub.owed > 0 && credit <= 0) {
      receiver.add_credit(sub.owed);
      sub.owed = 0;
    }
  }

  async ack(id: string): Promise<void> {
    const r = this.pending.get(id);
    if (r === undefined) return;
    this.pending.delete(id);
    this.settle(r, true);
  }

  async release(id: string): Promise<void> {
    const r = this.pending.get(id);
    if (r === undefined) return;
    this.pending.delete(id);
    this.settle(r, false);
  }

  /** Releases what was delivered or buffered but not acked, detaches, then closes the connection if this module made it. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (!this.auto) {
      for (const r of this.pending.values()) this.settle(r, false);
      for (const r of this.buffer) this.settle(r, false);
      // Releases that had to wait for an accept of this turn to go out first (see settle()).
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.pending.clear();
    this.buffer = [];
    const closed = new AmqpConnectError(`${this.description}: the incoming module is closed`);
    for (const sub of this.subs) {
      clearTimeout(sub.timer);
      sub.timer = undefined;
      this.settleFirst(sub, closed);
      const session = sub.session;
      sub.receiver?.close();
      session?.close();
      sub.receiver = undefined;
      sub.session = undefined;
      sub.open = false;
    }
    this.unwatch();
    if (this.owned) await this.connection.close();
  }
}
