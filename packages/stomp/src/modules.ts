import { type Delivery, type Incoming, type Outgoing, RejectedError } from '@msgbricks/agent';
import { MsgbricksError } from '@msgbricks/errors';
import { Message } from '@msgbricks/message';
import { prefetchHeader, StompBrokerError, StompConnection, type StompConnectionOptions, type StompReceived } from './connection';

/**
 * Headers that belong to a frame, not to the message: never copied from a message to a SEND. `message-id`,
 * `subscription`, `ack` and `redelivered` describe one delivery of a MESSAGE frame and the broker assigns them:
 * RabbitMQ answers a SEND carrying `message-id` with an ERROR that closes the connection, and stores `subscription`
 * and `ack` with the message, handing them back on the next delivery in place of its own so that the consumer cannot
 * route or acknowledge it. Perl stompclt forwards them and its manual's shoveling example deletes them in the
 * callback; msgbricks drops them, so a message received from any broker can be sent on as it is.
 */
export const RESERVED_SEND_HEADERS: readonly string[] = [
  'content-length',
  'receipt',
  'transaction',
  'message-id',
  'subscription',
  'ack',
  'redelivered',
];

const TEXT_PLAIN = 'text/plain; charset=UTF-8';

/** Whether a content-type says text, as Net::STOMP::Client's `_encoding`: a bare `text/x`, or any type with a charset. */
export function isTextContentType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  return /^\s*text\/[\w.+-]+\s*$/i.test(contentType) || /;\s*charset\s*=/i.test(contentType);
}

/** A message as the headers and body of a SEND frame (stompclt's demessagify), or a RejectedError saying why not. */
export function messageToFrame(
  message: Message,
  options: { destination?: string; persistent?: boolean } = {},
): { headers: Record<string, string>; body: Buffer } {
  // UTF-8 would silently turn a lone surrogate into U+FFFD: refused instead (docs/message.md).
  const unencodable = message.utf8Problem();
  if (unencodable !== undefined) throw new RejectedError(unencodable);
  const headers: Record<string, string> = {};
  for (const [k, v] of message.headerEntries()) if (!RESERVED_SEND_HEADERS.includes(k)) headers[k] = v;
  headers.destination ??= options.destination as string;
  if (headers.destination === undefined || headers.destination === '') {
    throw new RejectedError('the message has no destination header and no default destination is configured');
  }
  if (options.persistent && headers.persistent === undefined) headers.persistent = 'true';
  const type = headers['content-type'];
  if (typeof message.body === 'string') {
    if (type === undefined) headers['content-type'] = TEXT_PLAIN;
    else if (!isTextContentType(type))
      throw new RejectedError(`a text body with the non-text content-type ${JSON.stringify(type)}`);
    return { headers, body: Buffer.from(message.body, 'utf8') };
  }
  if (isTextContentType(type)) throw new RejectedError(`a binary body with the text content-type ${JSON.stringify(type)}`);
  return { headers, body: message.body };
}

/**
 * Headers of a MESSAGE frame that belong to its transport, not to the message, and are not kept in it:
 * `content-length` (recomputed on every SEND) and `receipt`, the sender's request for a RECEIPT, which brokers
 * (RabbitMQ) hand on with the message: kept, it would ask the next broker for a receipt nobody waits for.
 */
const TRANSPORT_HEADERS: readonly string[] = ['content-length', 'receipt'];

/**
 * A MESSAGE frame as a message (stompclt's messagify): every frame header but the transport's (TRANSPORT_HEADERS),
 * text when the content-type says so.
 */
export function frameToMessage(headers: Readonly<Record<string, string>>, body: Buffer): Message {
  const header = Object.entries(headers).filter(([k]) => !TRANSPORT_HEADERS.includes(k));
  if (isTextContentType(headers['content-type'])) {
    try {
      return new Message({ header, body, text: true });
    } catch {
      // Not UTF-8 after all: keep the bytes.
    }
  }
  return new Message({ header, body, text: false });
}

function connectionOf(c: StompConnection | StompConnectionOptions): StompConnection {
  return c instanceof StompConnection ? c : new StompConnection(c);
}

export interface StompOutgoingOptions {
  /** Where messages without a `destination` header go. */
  destination?: string;
  /** Add `persistent: true` to messages that do not say (both RabbitMQ and ActiveMQ default to non-persistent). */
  persistent?: boolean;
  /**
   * A message is refused (a RejectedError) when the broker answered with an ERROR this many times while it was the
   * only SEND in flight, even if the ERROR did not name it (RabbitMQ's `Processing error` for a missing exchange
   * names nothing). ERRORs while other SENDs were in flight never count against a message. Default 3.
   */
  maxBrokerErrors?: number;
  /**
   * A message is refused (a RejectedError) when the connection dropped this many times in a row, without an ERROR
   * frame, while it was the only SEND in flight and the broker took the reconnection at the first attempt: some
   * brokers (ActiveMQ on a header it cannot parse, such as `expires: abc`) close the connection instead of answering
   * with an ERROR. A drop after which the broker could not be reached at once (a restart, the network) is the
   * broker's, not the message's, and resets the count. Default 3.
   */
  maxDrops?: number;
  /** Milliseconds close() waits for the SENDs in flight before closing the connection, which fails them (default 30000). */
  closeTimeout?: number;
  /**
   * Send the first message to a destination alone, and the others only once the broker has receipted one SEND to it
   * (default true). A broker that ends the session over a destination (RabbitMQ's `Processing error` for a missing
   * exchange names nothing) then takes down that one message, never a window of others that it had taken and would
   * not receipt any more (sent again: duplicates). Costs a round trip per new destination; up to
   * KNOWN_DESTINATIONS_MAX destinations are remembered (the oldest forgotten first, then probed again).
   */
  probeDestinations?: boolean;
}

/** Most destinations StompOutgoing remembers as receipted (probeDestinations). */
export const KNOWN_DESTINATIONS_MAX = 10_000;

/**
 * A broker as the outgoing side. Each message is a SEND with a receipt; send() resolves on the RECEIPT and
 * rejects with a RejectedError when the broker refuses the frame. A lost connection is not an error: the
 * message is kept and sent again once the connection is back, so send() resolves later (duplicates possible).
 */
export class StompOutgoing implements Outgoing {
  readonly description: string;
  readonly connection: StompConnection;
  /** Sends not settled yet, and what close() waits on until there are none (a count: nothing kept per message). */
  private inflight = 0;
  private drained: (() => void) | undefined;
  private readonly settled = () => {
    if (--this.inflight === 0) this.drained?.();
  };
  /** Messages sent again after a lost connection and not yet receipted: while any is, they go one at a time. */
  private retrying = 0;
  /** New messages waiting for the retried ones to be through. */
  private retriesDone: (() => void)[] = [];
  /** The end of the queue of retried messages, each sent once the one before has its outcome. */
  private soloTail: Promise<void> = Promise.resolve();
  /** Failed connection attempts so far: one between a drop and the reconnection clears the message of the drop. */
  private connectFailures = 0;
  /** Destinations with a receipted SEND (probeDestinations), oldest first. */
  private readonly known = new Set<string>();
  /** SENDs written and not settled (retries included). */
  private onWire = 0;
  /** A probe (the first SEND to a destination) is on the wire: nothing else goes until it settles. */
  private probing = false;
  /** Messages waiting to probe their destination: new SENDs wait behind them, so that they are not starved. */
  private wantProbe = 0;
  /** Sends waiting for a probe to settle or for the wire to empty: woken on every change while any waits. */
  private gateWaiters: (() => void)[] = [];

  constructor(
    connection: StompConnection | StompConnectionOptions,
    private readonly options: StompOutgoingOptions = {},
  ) {
    this.connection = connectionOf(connection);
    this.description = `broker ${this.connection.description}`;
    this.connection.on('connect-failed', () => {
      this.connectFailures++;
    });
  }

  open(): Promise<void> {
    return this.connection.open();
  }

  send(message: Message): Promise<void> {
    let frame: { headers: Record<string, string>; body: Buffer };
    try {
      frame = messageToFrame(message, this.options);
    } catch (err) {
      return Promise.reject(err);
    }
    const p = this.sendFrame(frame.headers, frame.body);
    this.inflight++;
    p.then(this.settled, this.settled);
    return p;
  }

  /**
   * Sends until a receipt, a refusal or the end of the connection. A refusal tied to this SEND (an ERROR naming it)
   * is its outcome at once; the session goes on and the other SENDs keep theirs. After a lost connection, the
   * messages that were in flight go again one at a time, and new ones wait until they are through: a message that
   * brings the connection down is then alone when it does, and only then does the loss count against it (see
   * maxBrokerErrors and maxDrops); a loss with other SENDs in flight, or one the broker did not come back from at
   * once, never does. Once every retried message has its receipt, sends are concurrent again.
   */
  private async sendFrame(headers: Record<string, string>, body: Buffer): Promise<void> {
    const destination = headers.destination ?? '';
    let brokerErrors = 0;
    let drops = 0;
    let retry = false;
    /** Set when this message, alone in flight, lost the connection without an ERROR: connectFailures then. */
    let droppedAt: number | undefined;
    try {
      for (;;) {
        // Rejects only when the connection is closed or reconnecting gave up.
        await this.connection.whenConnected();
        if (droppedAt !== undefined) {
          // The broker took the reconnection at once: the drop was this message's doing, not the broker's.
          if (this.connectFailures === droppedAt) drops++;
          else drops = 0;
          droppedAt = undefined;
          if (drops >= (this.options.maxDrops ?? 3)) {
            throw new RejectedError(
              `the connection dropped ${drops} times while this message to ${headers.destination} was the only one ` +
                'in flight, and the broker took the reconnection each time (a broker that refuses a frame without ' +
                'an ERROR)',
            );
          }
        }
        if (!retry && this.retrying > 0) {
          await new Promise<void>((resolve) => this.retriesDone.push(resolve));
          continue;
        }
        const release = retry ? await this.takeSolo() : undefined;
        const probe = retry ? false : await this.admit(destination);
        // RACE: a connection lost while this message waited to probe: the retried messages go first, alone.
        if (!retry && this.retrying > 0) {
          if (probe) this.probeDone();
          continue;
        }
        this.onWire++;
        try {
          // RACE: the connection may have dropped while this message waited for its turn; a send now would fail
          // without having been on the wire, so it would not say anything about this message.
          if (!this.connection.connected) continue;
          await this.connection.send(headers, body);
          this.remember(destination);
          return;
        } catch (err) {
          if (err instanceof RejectedError) throw err;
          // Lost before the receipt: the connection is coming back; send it again then. Only a loss while alone
          // (a retry, or a probe) can be this message's doing.
          const alone = retry || probe;
          const cause = (err as Error).cause;
          if (alone && cause instanceof StompBrokerError) {
            if (++brokerErrors >= (this.options.maxBrokerErrors ?? 3)) {
              throw new RejectedError(
                `the broker answered ${brokerErrors} times with an ERROR while this message to ${headers.destination} ` +
                  `was the only one in flight, the last: ${cause.message}`,
                { cause },
              );
            }
          } else if (alone) {
            droppedAt = this.connectFailures;
          }
          if (!retry) {
            retry = true;
            this.retrying++;
          }
        } finally {
          this.onWire--;
          if (probe) this.probeDone();
          else if (this.gateWaiters.length > 0) this.wakeGate();
          release?.();
        }
      }
    } finally {
      if (retry && --this.retrying === 0) {
        const waiting = this.retriesDone;
        this.retriesDone = [];
        for (const resolve of waiting) resolve();
      }
    }
  }

  /**
   * Lets a new SEND go (resolving to false), or makes it its destination's probe (resolving to true once it is the
   * only SEND on the wire): the first SEND to a destination goes alone. SENDs to known destinations go at once, but
   * not while a probe is on the wire or waiting for the wire to empty.
   */
  private async admit(destination: string): Promise<boolean> {
    if (this.options.probeDestinations === false) return false;
    if (this.known.has(destination)) {
      while (this.probing || this.wantProbe > 0) await this.gateChange();
      return false;
    }
    this.wantProbe++;
    try {
      while (this.probing || this.onWire > 0) await this.gateChange();
    } finally {
      this.wantProbe--;
    }
    // RACE: another message to the same destination probed it while this one waited: no probe needed.
    if (this.known.has(destination)) {
      this.wakeGate();
      return false;
    }
    // Taken in the same turn as the check above: a waiter woken with this one finds it probing.
    this.probing = true;
    return true;
  }

  private probeDone(): void {
    this.probing = false;
    this.wakeGate();
  }

  private gateChange(): Promise<void> {
    return new Promise((resolve) => this.gateWaiters.push(resolve));
  }

  /** Every waiter checks again (rare: only around probes, so waking them all is cheap enough). */
  private wakeGate(): void {
    const waiters = this.gateWaiters;
    this.gateWaiters = [];
    for (const w of waiters) w();
  }

  /** A destination with a receipted SEND: its next SENDs need no probe. */
  private remember(destination: string): void {
    if (this.options.probeDestinations === false || this.known.has(destination)) return;
    this.known.add(destination);
    if (this.known.size > KNOWN_DESTINATIONS_MAX) this.known.delete(this.known.values().next().value as string);
  }

  /** Waits for the retried message before, then returns the function that lets the next one go. */
  private async takeSolo(): Promise<() => void> {
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const before = this.soloTail;
    this.soloTail = before.then(() => mine);
    await before;
    return release;
  }

  /** Waits for the messages in flight (a reconnection included), then disconnects. */
  async close(): Promise<void> {
    const all =
      this.inflight === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            this.drained = resolve;
          });
    let timer: NodeJS.Timeout | undefined;
    // A broker that never answers (no receipt, no reconnection) must not hold the agent forever: after closeTimeout
    // the connection is closed, which fails what is still in flight, and the pipeline releases those messages.
    const timedOut = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), this.options.closeTimeout ?? 30_000);
      }),
    ]);
    clearTimeout(timer);
    await this.connection.close();
    if (timedOut) await all;
  }
}

export interface StompIncomingOptions {
  /** The subscriptions, as `--subscribe` key=value sets: `destination` and any SUBSCRIBE header (`selector`...). */
  subscribe: readonly Readonly<Record<string, string>>[];
  /** Most unacknowledged messages per subscription, as the broker type's header (stompclt's `--prefetch`). */
  prefetch?: number;
  /**
   * `client` (default): `ack: client-individual` (`client` on STOMP 1.0), ACK once safe downstream, NACK on release.
   * `auto`: `ack: auto`, the broker considers a message consumed once sent (stompclt without `--reliable`): ack()
   * and release() do nothing, and what is buffered when the connection drops is lost (at most once).
   */
  ack?: 'client' | 'auto';
  /**
   * At close, UNSUBSCRIBE every subscription with these headers (stompclt's --unsubscribe): the n-th set for the n-th
   * subscription, an empty list for plain UNSUBSCRIBEs. Undefined (default): no UNSUBSCRIBE, the broker cleans up.
   */
  unsubscribe?: readonly Readonly<Record<string, string>>[];
}

/**
 * A broker as the incoming side: SUBSCRIBEs with `ack: client-individual` (and the prefetch header of the broker
 * type), buffers MESSAGE frames; ack() sends ACK, release() NACK. After a reconnection the buffer and the
 * unacknowledged deliveries are dropped (the broker delivers them again) and the subscriptions are replayed.
 */
export class StompIncoming implements Incoming {
  readonly description: string;
  readonly connection: StompConnection;
  private buffer: StompReceived[] = [];
  private readonly pending = new Map<string, StompReceived>();
  private arrival: (() => void) | undefined;

  constructor(
    connection: StompConnection | StompConnectionOptions,
    private readonly options: StompIncomingOptions,
  ) {
    this.connection = connectionOf(connection);
    this.description = `broker ${this.connection.description}`;
    if (options.subscribe.length === 0) throw new MsgbricksError('ERR_STOMP_SUBSCRIBE', 'no subscription given');
    this.connection.on('lost', () => {
      this.buffer = [];
      this.pending.clear();
    });
  }

  async open(): Promise<void> {
    await this.connection.open();
    for (const sub of this.options.subscribe) {
      const headers: Record<string, string> = { ...sub };
      if (this.auto) headers.ack = 'auto';
      if (this.options.prefetch !== undefined) {
        const name = prefetchHeader(this.connection.brokerType);
        headers[name] ??= `${this.options.prefetch}`;
      }
      await this.connection.subscribe(headers, (m) => {
        this.buffer.push(m);
        this.arrival?.();
      });
    }
  }

  onArrival(listener: () => void): void {
    this.arrival = listener;
  }

  async next(): Promise<Delivery | null | undefined> {
    const m = this.buffer.shift();
    if (m === undefined) return undefined;
    const id = m.headers.ack ?? m.headers['message-id'] ?? `${m.generation}`;
    this.pending.set(id, m);
    const message = frameToMessage(m.headers, m.body);
    return m.refused === undefined ? { id, message } : { id, message, refused: m.refused };
  }

  async ack(id: string): Promise<void> {
    const m = this.pending.get(id);
    if (m === undefined) return;
    this.pending.delete(id);
    if (!this.auto) await this.connection.ack(m);
  }

  async release(id: string): Promise<void> {
    const m = this.pending.get(id);
    if (m === undefined) return;
    this.pending.delete(id);
    if (!this.auto) await this.connection.nack(m);
  }

  private get auto(): boolean {
    return this.options.ack === 'auto';
  }

  /**
   * NACKs what was delivered but not acked, UNSUBSCRIBEs if asked to, then disconnects (what is still buffered comes
   * back from the broker). A failed UNSUBSCRIBE rejects, once disconnected.
   */
  async close(): Promise<void> {
    for (const id of [...this.pending.keys()]) await this.release(id);
    this.buffer = [];
    let failed: unknown;
    if (this.options.unsubscribe !== undefined)
      await this.connection.unsubscribe(this.options.unsubscribe).catch((err) => (failed = err));
    await this.connection.close();
    if (failed !== undefined) throw failed;
  }
}
