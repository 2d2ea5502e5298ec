import { type Outgoing, RejectedError } from '@msgbricks/agent';
import type { Message } from '@msgbricks/message';
import type { Connection, Delivery, EventContext, Message as RheaMessage, Sender, SenderOptions, Session } from 'rhea';
import { message as rheaMessage } from 'rhea';
import { AmqpConnection, type AmqpConnectionOptions } from './connection';
import { AmqpBrokerError, AmqpConnectError, brokerError } from './errors';
import { messageToAmqp } from './mapping';
import { isNullTerminus } from './terminus';

export interface AmqpOutgoingOptions {
  /** Where messages without a `destination` header go. */
  destination?: string;
  /** `durable` for messages without a `persistent` header (default true). */
  persistent?: boolean;
  /**
   * A destination whose sender cannot be attached this many times in a row refuses what waits for it (a
   * RejectedError); a message alone in flight when its link fails with an error this many times is refused. Default 3.
   */
  maxLinkErrors?: number;
  /** Milliseconds close() waits for the sends in flight before failing them (default 30000). */
  closeTimeout?: number;
  /**
   * Most senders kept attached (each on its own session): past it, the longest idle one is detached (default
   * 100; RabbitMQ 3.10 allows 2047 sessions per connection).
   */
  maxLinks?: number;
}

/** A message on its way: waiting for its link, in flight, or waiting to be sent again. */
interface PendingSend {
  message: RheaMessage;
  payload: Buffer;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
  /** Link errors that happened while it was the only message in flight. */
  strikes: number;
  resends: number;
  notBefore: number;
}

/** One target address: its sender (on a session of its own) and its messages. */
interface Destination {
  readonly address: string;
  /** When a message for it was last sent (the cache of senders drops the longest idle first). */
  lastUsed: number;
  /** Waiting for credit or for the link, in order. */
  readonly queue: PendingSend[];
  /** Released by the broker, waiting for their resend time. */
  readonly delayed: PendingSend[];
  /** Sent on the current link, waiting for an outcome. */
  readonly inflight: Map<Delivery, PendingSend>;
  sender: Sender | undefined;
  session: Session | undefined;
  open: boolean;
  /** Attach attempts refused in a row (reset when one succeeds). */
  attachFailures: number;
  /** Link failures in a row (reset by an accepted message): the reattach delay grows with it. */
  failures: number;
  /** After a link error, how many of the next messages go one at a time, so that a poison message is found alone. */
  probation: number;
  /** The last message sent on probation: nothing else goes while it is in flight. */
  probe: Delivery | undefined;
  attachTimer: NodeJS.Timeout | undefined;
  delayTimer: NodeJS.Timeout | undefined;
}

/** The modified outcome's fields (rhea's decoded composite). */
interface ModifiedState {
  delivery_failed?: boolean;
  undeliverable_here?: boolean;
  message_annotations?: Record<string, unknown>;
}

const RESEND_MAX_DELAY = 1000;
const REATTACH_MAX_DELAY = 5000;

function resendDelay(resends: number): number {
  // The first resend is immediate; a broker that keeps releasing gets them ever more slowly (at most 1 s apart).
  return resends <= 1 ? 0 : Math.min(RESEND_MAX_DELAY, 10 * 2 ** (resends - 2));
}

function reattachDelay(failures: number): number {
  return failures <= 1 ? 0 : Math.min(REATTACH_MAX_DELAY, 50 * 2 ** (failures - 2));
}

function outcomeError(address: string, delivery: Delivery): AmqpBrokerError {
  const state = delivery.remote_state as { error?: unknown } | undefined;
  return brokerError(
    `${address} rejected the message`,
    state?.error ?? { condition: 'amqp:rejected', description: 'no reason given' },
  );
}

/**
 * A broker as the outgoing side, over AMQP 1.0. One sender per destination address, each on its own session
 * (RabbitMQ ends the whole session when one message or attach fails), attached with `target: {address,
 * durable: 2}` (RabbitMQ declares `/queue/Q` durable, as STOMP does) and unsettled sends (RabbitMQ then confirms
 * each message before it accepts it). send() resolves on `accepted`; `rejected` is a RejectedError; `released`
 * and `modified` are sent again (`modified` with `undeliverable-here` is a RejectedError); credit is respected
 * (messages queue here, never in rhea's session buffer). A lost connection is not an error: what was unsettled
 * is sent again once the connection is back (rhea forgets it), so send() resolves later and duplicates are
 * possible (at least once).
 */
export class AmqpOutgoing implements Outgoing {
  readonly description: string;
  readonly connection: AmqpConnection;
  private readonly owned: boolean;
  private readonly destinations = new Map<string, Destination>();
  private readonly tracked = new Set<Promise<void>>();
  private readonly unwatch: () => void;
  private opened = false;
  private closed = false;
  private failure: Error | undefined;
  private readonly maxLinkErrors: number;

  constructor(
    connection: AmqpConnection | AmqpConnectionOptions,
    private readonly options: AmqpOutgoingOptions = {},
  ) {
    this.owned = !(connection instanceof AmqpConnection);
    this.connection = connection instanceof AmqpConnection ? connection : new AmqpConnection(connection);
    this.description = `broker ${this.connection.description}`;
    this.maxLinkErrors = Math.max(1, options.maxLinkErrors ?? 3);
    this.unwatch = this.connection.watch({
      open: (conn) => this.connectionUp(conn),
      down: () => this.connectionDown(),
      failed: (err) => this.connectionFailed(err),
    });
  }

  async open(): Promise<void> {
    this.opened = true;
    await this.connection.open();
  }

  send(message: Message): Promise<void> {
    if (this.closed) return Promise.reject(new AmqpConnectError(`${this.description}: the outgoing module is closed`));
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (!this.opened) return Promise.reject(new AmqpConnectError(`${this.description}: the outgoing module is not open`));
    const address = message.getHeader('destination') ?? this.options.destination;
    if (address === undefined || address === '') {
      return Promise.reject(new RejectedError('the message has no destination header and no default destination is configured'));
    }
    let amqp: RheaMessage;
    let payload: Buffer;
    try {
      amqp = messageToAmqp(message, { persistent: this.options.persistent ?? true });
      payload = rheaMessage.encode(amqp);
    } catch (err) {
      return Promise.reject(
        err instanceof RejectedError
          ? err
          : new RejectedError(`cannot encode the message: ${(err as Error).message}`, { cause: err }),
      );
    }
    const p = new Promise<void>((resolve, reject) => {
      const dest = this.destination(address);
      dest.lastUsed = Date.now();
      dest.queue.push({ message: amqp, payload, resolve, reject, strikes: 0, resends: 0, notBefore: 0 });
      this.ensureLink(dest);
      this.pump(dest);
    });
    const tracked = p.catch(() => undefined).finally(() => this.tracked.delete(tracked));
    this.tracked.add(tracked);
    return p;
  }

  private destination(address: string): Destination {
    let dest = this.destinations.get(address);
    if (dest === undefined) {
      dest = {
        address,
        lastUsed: 0,
        queue: [],
        delayed: [],
        inflight: new Map(),
        sender: undefined,
        session: undefined,
        open: false,
        attachFailures: 0,
        failures: 0,
        probation: 0,
        probe: undefined,
        attachTimer: undefined,
        delayTimer: undefined,
      };
      this.destinations.set(address, dest);
    }
    return dest;
  }

  private ensureLink(dest: Destination): void {
    if (dest.sender !== undefined || dest.attachTimer !== undefined || this.closed) return;
    const conn = this.connection.current;
    if (conn !== undefined) this.attach(dest, conn);
  }

  private attach(dest: Destination, conn: Connection): void {
    this.evict(dest);
    const session = conn.create_session();
    session.begin();
    const sender = session.open_sender({
      target: { address: dest.address, durable: 2 },
      snd_settle_mode: 0,
      autosettle: true,
      // rhea would report modified as released, hiding undeliverable-here.
      treat_modified_as_released: false,
    } as SenderOptions);
    dest.session = session;
    dest.sender = sender;
    dest.open = false;
    const what = `sender to ${dest.address}`;
    session.on('session_error', (ctx: EventContext) =>
      this.linkFailed(dest, sender, brokerError(`session of the ${what}`, ctx.session?.error), true),
    );
    session.on('session_close', () =>
      this.linkFailed(dest, sender, new Error(`the broker ended the session of the ${what}`), true),
    );
    sender.on('sender_error', (ctx: EventContext) => this.linkFailed(dest, sender, brokerError(what, ctx.sender?.error), false));
    sender.on('sender_close', () => this.linkFailed(dest, sender, new Error(`the broker detached the ${what}`), false));
    sender.on('sender_open', () => {
      // A null target in the broker's attach is a refusal: its detach (with the reason) follows.
      if (dest.sender !== sender || isNullTerminus(sender.target)) return;
      dest.open = true;
      dest.attachFailures = 0;
      this.pump(dest);
    });
    sender.on('sendable', () => {
      if (dest.sender === sender) this.pump(dest);
    });
    sender.on('accepted', (ctx: EventContext) => this.outcome(dest, ctx.delivery, 'accepted'));
    sender.on('rejected', (ctx: EventContext) => this.outcome(dest, ctx.delivery, 'rejected'));
    sender.on('released', (ctx: EventContext) => this.outcome(dest, ctx.delivery, 'released'));
    sender.on('modified', (ctx: EventContext) => this.outcome(dest, ctx.delivery, 'modified'));
    // After the outcome events: a delivery still in flight here was settled without any outcome.
    sender.on('settled', (ctx: EventContext) => this.outcome(dest, ctx.delivery, 'settled'));
  }

  /** Detaches the longest idle senders when one more would pass maxLinks; busy ones stay. */
  private evict(keep: Destination): void {
    const max = Math.max(1, this.options.maxLinks ?? 100);
    const attached = [...this.destinations.values()].filter((d) => d.sender !== undefined);
    if (attached.length < max) return;
    const idle = attached
      .filter((d) => d !== keep && d.queue.length === 0 && d.inflight.size === 0 && d.delayed.length === 0)
      .sort((a, b) => a.lastUsed - b.lastUsed);
    for (const d of idle.slice(0, attached.length - max + 1)) {
      const { sender, session } = d;
      this.destinations.delete(d.address);
      d.sender = undefined;
      d.session = undefined;
      d.open = false;
      clearTimeout(d.attachTimer);
      clearTimeout(d.delayTimer);
      sender?.close();
      session?.close();
    }
  }

  /** Sends what the link has credit for; during probation, one message at a time. */
  private pump(dest: Destination): void {
    const sender = dest.sender;
    if (sender === undefined || !dest.open) return;
    while (dest.queue.length > 0 && sender.sendable()) {
      if (dest.probe !== undefined && dest.inflight.has(dest.probe)) return;
      if (dest.probation > 0 && dest.inflight.size > 0) return;
      const p = dest.queue.shift() as PendingSend;
      const delivery = sender.send(p.payload, undefined, 0);
      dest.inflight.set(delivery, p);
      if (dest.probation > 0) {
        dest.probation--;
        dest.probe = delivery;
      } else dest.probe = undefined;
    }
  }

  private outcome(
    dest: Destination,
    delivery: Delivery | undefined,
    kind: 'accepted' | 'rejected' | 'released' | 'modified' | 'settled',
  ): void {
    if (delivery === undefined) return;
    const p = dest.inflight.get(delivery);
    // Stale (a link already given up) or already decided by its outcome event.
    if (p === undefined) return;
    dest.inflight.delete(delivery);
    switch (kind) {
      case 'accepted':
        dest.failures = 0;
        p.resolve();
        break;
      case 'rejected': {
        const err = outcomeError(dest.address, delivery);
        p.reject(new RejectedError(err.message, { cause: err }));
        break;
      }
      case 'modified': {
        const state = (delivery.remote_state ?? {}) as ModifiedState;
        if (state.undeliverable_here === true) {
          p.reject(new RejectedError(`${dest.address} will not take the message (modified outcome: undeliverable-here)`));
          break;
        }
        // As the modified outcome asks: count the failed attempt and merge the annotations before sending again.
        if (state.delivery_failed === true || state.message_annotations !== undefined) {
          if (state.delivery_failed === true) p.message.delivery_count = (p.message.delivery_count ?? 0) + 1;
          if (state.message_annotations !== undefined) {
            p.message.message_annotations = { ...p.message.message_annotations, ...state.message_annotations };
          }
          p.payload = rheaMessage.encode(p.message);
        }
        this.resend(dest, p);
        break;
      }
      default:
        // released, or settled with no outcome at all: not taken, so send it again (at least once).
        this.resend(dest, p);
    }
    this.pump(dest);
  }

  private resend(dest: Destination, p: PendingSend): void {
    p.resends++;
    const delay = resendDelay(p.resends);
    if (delay === 0) {
      dest.queue.push(p);
      return;
    }
    p.notBefore = Date.now() + delay;
    dest.delayed.push(p);
    this.armDelayed(dest);
  }

  private armDelayed(dest: Destination): void {
    if (dest.delayTimer !== undefined || dest.delayed.length === 0 || this.closed) return;
    const first = Math.min(...dest.delayed.map((p) => p.notBefore));
    dest.delayTimer = setTimeout(
      () => {
        dest.delayTimer = undefined;
        const now = Date.now();
        for (let i = 0; i < dest.delayed.length; ) {
          const p = dest.delayed[i] as PendingSend;
          if (p.notBefore <= now) {
            dest.delayed.splice(i, 1);
            dest.queue.push(p);
          } else i++;
        }
        this.armDelayed(dest);
        this.ensureLink(dest);
        this.pump(dest);
      },
      Math.max(0, first - Date.now()),
    );
  }

  /** The link (or its session) is gone while the connection stays: requeue what was in flight, maybe refuse. */
  private linkFailed(dest: Destination, sender: Sender, err: Error, sessionEnded: boolean): void {
    if (dest.sender !== sender) return;
    const session = dest.session;
    const wasOpen = dest.open;
    dest.sender = undefined;
    dest.session = undefined;
    dest.open = false;
    // A detached link: detach it here too, in the same turn as the end, so that rhea writes the detach first. An
    // ended session: only end it (its links went with it; a detach now would be on a channel the broker freed).
    if (!sessionEnded) sender.close();
    session?.close();
    const suspects = [...dest.inflight.values()];
    dest.inflight.clear();
    if (this.closed) {
      for (const p of suspects)
        p.reject(new AmqpConnectError(`${this.description}: closed before ${dest.address} accepted the message`));
      return;
    }
    this.connection.reportLinkError(dest.address, err);
    dest.failures++;
    if (!wasOpen) {
      dest.attachFailures++;
      if (dest.attachFailures >= this.maxLinkErrors) {
        // The broker will not take messages for this address (unknown exchange, invalid address...).
        dest.attachFailures = 0;
        const refused = new RejectedError(
          `cannot attach a sender to ${dest.address} (${this.maxLinkErrors} attempts): ${err.message}`,
          { cause: err },
        );
        for (const p of dest.queue.splice(0)) p.reject(refused);
        for (const p of dest.delayed.splice(0)) p.reject(refused);
        return;
      }
    } else if (suspects.length === 1 && err instanceof AmqpBrokerError) {
      // Alone in flight when the broker failed the link: most likely this message's fault (RabbitMQ ends the
      // session for a user_id that is not the login's, for one).
      const p = suspects[0] as PendingSend;
      if (++p.strikes >= this.maxLinkErrors) {
        suspects.pop();
        p.reject(
          new RejectedError(`${dest.address} failed the link ${p.strikes} times on this message: ${err.message}`, { cause: err }),
        );
      }
    }
    dest.probation += suspects.length;
    dest.queue.unshift(...suspects);
    if (dest.queue.length === 0 && dest.delayed.length === 0) return;
    dest.attachTimer = setTimeout(() => {
      dest.attachTimer = undefined;
      this.ensureLink(dest);
    }, reattachDelay(dest.failures));
  }

  private connectionUp(_conn: Connection): void {
    for (const dest of this.destinations.values()) {
      if (dest.queue.length > 0 || dest.delayed.length > 0) this.ensureLink(dest);
      this.armDelayed(dest);
    }
  }

  private connectionDown(): void {
    for (const dest of this.destinations.values()) {
      // RACE: outcomes on the way when the connection dropped never come: those messages are sent again.
      // A probe in flight goes back on probation: the loss is not its fault, but it is still a suspect.
      if (dest.probe !== undefined && dest.inflight.has(dest.probe)) dest.probation++;
      dest.probe = undefined;
      dest.queue.unshift(...dest.inflight.values());
      dest.inflight.clear();
      dest.sender = undefined;
      dest.session = undefined;
      dest.open = false;
      clearTimeout(dest.attachTimer);
      dest.attachTimer = undefined;
      clearTimeout(dest.delayTimer);
      dest.delayTimer = undefined;
    }
  }

  private connectionFailed(err: Error): void {
    if (this.failure === undefined) this.failure = err;
    for (const dest of this.destinations.values()) this.failAll(dest, err);
  }

  private failAll(dest: Destination, err: Error): void {
    clearTimeout(dest.attachTimer);
    dest.attachTimer = undefined;
    clearTimeout(dest.delayTimer);
    dest.delayTimer = undefined;
    const all = [...dest.inflight.values(), ...dest.queue.splice(0), ...dest.delayed.splice(0)];
    dest.inflight.clear();
    for (const p of all) p.reject(err);
  }

  /**
   * Waits for the messages in flight (a reconnection included) up to closeTimeout, fails the others with an
   * AmqpConnectError (the pipeline gives them back upstream), then closes the links and, if this module
   * made it, the connection.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.tracked.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(this.tracked),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, this.options.closeTimeout ?? 30_000);
        }),
      ]);
      clearTimeout(timer);
    }
    this.closed = true;
    const err = new AmqpConnectError(`${this.description}: closed before the broker accepted the message`);
    for (const dest of this.destinations.values()) {
      this.failAll(dest, err);
      const session = dest.session;
      dest.sender = undefined;
      dest.session = undefined;
      session?.close();
    }
    this.unwatch();
    if (this.owned) await this.connection.close();
  }
}
