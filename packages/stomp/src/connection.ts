import type { EventEmitter } from 'node:events';
import * as net from 'node:net';
import type { Duplex, Readable, Writable } from 'node:stream';
import * as tls from 'node:tls';
import {
  BrokerConnection,
  type BrokerConnectionEvent,
  type BrokerConnectionOptions,
  type BrokerReconnectOptions,
  type BrokerServer,
  type BrokerType,
  RejectedError,
  tlsConnectOptions,
} from '@msgbricks/agent';
import { MsgbricksError } from '@msgbricks/errors';

import StompitClient = require('stompit/lib/Client');

import { FrameWriter } from './frames';
import { parseStompUri, type StompUri } from './uri';

/** At most this much of an ERROR frame's body goes into the error's message (ActiveMQ sends whole Java stack traces). */
const ERROR_MESSAGE_BODY_MAX = 300;

/**
 * An ERROR frame from the broker: its `message` header, its body (the first 4 KiB; the message quotes the start of it,
 * on one line) and the receipt it answers, if any.
 */
export class StompBrokerError extends MsgbricksError {
  constructor(
    message: string,
    readonly headers: Readonly<Record<string, string>>,
    readonly body: string,
  ) {
    const line = body.replace(/\s+/g, ' ').trim();
    const quoted = line.length > ERROR_MESSAGE_BODY_MAX ? `${line.slice(0, ERROR_MESSAGE_BODY_MAX)}...` : line;
    super('ERR_STOMP_BROKER', quoted === '' ? message : `${message}: ${quoted}`);
  }
  get receiptId(): string | undefined {
    return this.headers['receipt-id'];
  }
}

/** No broker of the list could be reached (or all refused the CONNECT) within the allowed attempts. */
export class StompConnectError extends MsgbricksError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_STOMP_CONNECT', message, options);
  }
}

// What msgbricks uses of stompit's Client, including two internals: its receipt table (to put receipts on
// SUBSCRIBE frames, which stompit's subscribe() cannot do) and its per-command handlers (to replace its
// ERROR handler, which crashes the process in 1.0.0: see fixedErrorHandler).
interface RawFrame extends Readable {
  readonly command: string;
  readonly headers: Record<string, string | number>;
}
interface RawMessage extends Readable {
  readonly headers: Record<string, string | number>;
}
interface RawClient extends EventEmitter {
  headers?: Record<string, string>;
  _receipts: Record<string, () => void>;
  _nextReceiptId: number;
  _commandHandlers: Record<string, (this: RawClient, frame: RawFrame, beforeSendResponse: () => void) => void>;
  getTransportSocket(): net.Socket;
  connect(headers: Record<string, string>): void;
  sendFrame(command: string, headers: Record<string, string | number>, options?: { onReceipt?: () => void }): Writable;
  subscribe(headers: Record<string, string | number>, listener: (err: Error | null, message: RawMessage) => void): unknown;
  ack(message: RawMessage, headers?: object, options?: object, callback?: (err?: Error | null) => void): void;
  nack(message: RawMessage, headers?: object, options?: object, callback?: (err?: Error | null) => void): void;
  disconnect(callback?: (err: Error | null) => void): void;
  destroy(err?: Error): void;
  setCommandHandler(command: string, handler: (this: RawClient, frame: RawFrame, beforeSendResponse: () => void) => void): void;
}
const Client = StompitClient as unknown as new (socket: Duplex, options: object) => RawClient;

const ERROR_BODY_MAX = 4096;

/**
 * stompit 1.0.0's ERROR handler registers `frame.on('end', function () { this.destroy(error) })`: `this` is the
 * frame, not the client, so the frame is destroyed with an error nobody listens to and Node throws (the process
 * dies on the first ERROR frame with a text/plain body). This one reads the body and destroys the client, which
 * reports the error on the client's 'error' event, unless `refuse` tied the ERROR to one frame and settled it: then
 * the session goes on (RabbitMQ keeps it after refusing a destination and processes the frames after the refused one,
 * so dropping it would send those again), and if the broker does close it, what is pending is sent again.
 */
function fixedErrorHandler(
  onFrame?: (headers: Record<string, string>, body: Buffer) => void,
  refuse?: (client: RawClient, err: StompBrokerError) => boolean,
): (this: RawClient, frame: RawFrame) => void {
  return function (this: RawClient, frame: RawFrame): void {
    const chunks: Buffer[] = [];
    let size = 0;
    const headers = stringHeaders(frame.headers);
    frame.on('data', (chunk: Buffer) => {
      if (size < ERROR_BODY_MAX) chunks.push(chunk);
      size += chunk.length;
    });
    let once = false;
    const done = () => {
      if (once) return;
      once = true;
      const bytes = Buffer.concat(chunks).subarray(0, ERROR_BODY_MAX);
      onFrame?.(headers, bytes);
      const body = bytes.toString('utf8').replace(/\0+$/, '').trim();
      const err = new StompBrokerError(headers.message ?? 'broker sent an ERROR frame', headers, body);
      if (refuse?.(this, err)) return;
      this.destroy(err);
    };
    frame.on('end', done);
    frame.on('error', done);
  };
}

function stringHeaders(h: Record<string, string | number>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k] = String(v);
  return out;
}

/** The broker type from the CONNECTED frame's `server` and `session` headers, as stompclt's `stomp::type`. */
export function detectBrokerType(headers: Readonly<Record<string, string | undefined>>): BrokerType {
  const server = headers.server ?? '';
  const session = headers.session ?? '';
  if (server.startsWith('ActiveMQ-Artemis/')) return 'Artemis';
  if (server.startsWith('ActiveMQ/')) return 'ActiveMQ';
  if (server.startsWith('apache-apollo/') || session.startsWith('apollo-')) return 'Apollo';
  if (server.startsWith('RabbitMQ/') || session.length === 22) return 'RabbitMQ';
  return 'UNKNOWN';
}

/**
 * The SUBSCRIBE header that limits unacknowledged messages on this broker type (stompclt's `stomp::prefetch`).
 * Artemis' consumer-window-size is in bytes, not messages.
 */
export function prefetchHeader(type: BrokerType): string {
  switch (type) {
    case 'ActiveMQ':
      return 'activemq.prefetchSize';
    case 'RabbitMQ':
      return 'prefetch-count';
    case 'Artemis':
      return 'consumer-window-size';
    case 'Apollo':
      return 'credit';
    default:
      throw new MsgbricksError(
        'ERR_STOMP_PREFETCH',
        `cannot set a prefetch on a broker of type ${type}: give its type explicitly`,
      );
  }
}

/** Overrides of the URI's reconnection settings (the same for every broker module). */
export interface StompReconnectOptions extends BrokerReconnectOptions {}

/**
 * The agent's connection options (uri: parseStompUri's syntax; auth: a `plain` credential gives CONNECT's login and
 * passcode, an `x509` one the TLS client certificate, both may be given; tls; reconnect; onEvent), and STOMP's.
 */
export interface StompConnectionOptions extends BrokerConnectionOptions<StompUri, StompConnectionEvent> {
  /** Extra CONNECT headers; `host` (RabbitMQ's virtual host) defaults to `/`. */
  connectHeaders?: Record<string, string>;
  /** Heart-beats [client sends every ms, client wants every ms]; off by default. Run on stompit's own timers. */
  heartBeat?: readonly [number, number];
  /** Milliseconds of grace on incoming heart-beats (default: half the interval, at least 1000). */
  heartBeatGrace?: number;
  /** The broker type when detection from CONNECTED is not wanted. */
  type?: BrokerType;
  /** Milliseconds for TCP+TLS+CONNECTED (default 10000). */
  connectTimeout?: number;
  /**
   * Milliseconds a SEND (or SUBSCRIBE, UNSUBSCRIBE) may wait for its receipt before the connection is deemed broken
   * (default 30000). One timer per connection looks at the oldest receipt awaited, every quarter of this (at most
   * every second), rather than a timer per frame.
   */
  receiptTimeout?: number;
  /**
   * Milliseconds close() waits for what was written (ACKs, NACKs...) to leave the process before it disconnects
   * (stompclt's --timeout-flush; default 60000). If bytes are still unsent then, the session is dropped without
   * DISCONNECT and close() rejects with a StompFlushError.
   */
  flushTimeout?: number;
  /** Milliseconds to wait for the DISCONNECT receipt (default 10000). */
  disconnectTimeout?: number;
  /**
   * Longest header line (`name:value`, bytes) of a received MESSAGE (default MAX_HEADER_LENGTH). A MESSAGE over this
   * or maxHeaders is read whole all the same and delivered with `refused` saying why (StompReceived): a refusal of
   * that message, never a broken connection (stompit's own limits, 1024 bytes and 64 headers, broke it on what the
   * brokers accept and hand on, and the broker delivered the message again, for ever). The parser itself stops at
   * PARSER_CEILING's figures, far beyond any broker's.
   */
  maxHeaderLength?: number;
  /** Most headers of a received MESSAGE (default MAX_HEADERS), as maxHeaderLength. */
  maxHeaders?: number;
  /**
   * Debug events (stompclt's --*-broker-stomp-debug words, blank or comma separated): `command` a `frame` event per
   * frame sent or received (command and body length), `header` with its headers (`login` and `passcode` masked),
   * `body` with the start of its body, `connection` and `api` `debug` events (connection steps, calls), `io` an `io`
   * event per read and write; `all` for everything. Nothing is printed: the events go to onEvent.
   */
  debug?: string | readonly string[];
  /** Told of each RECEIPT for a frame sent with withReceipt (SEND, SUBSCRIBE, UNSUBSCRIBE): how long it took. */
  onReceipt?: (command: string, seconds: number) => void;
}

/** The debug words of stompclt's --*-broker-stomp-debug (Net::STOMP::Client's). */
export const STOMP_DEBUG_WORDS = ['all', 'api', 'body', 'command', 'connection', 'header', 'io'] as const;

/**
 * The limits of a received MESSAGE by default, above what ActiveMQ 5.17 accepts in a SEND (a 10,241-byte header line,
 * 1001 headers), so that a message it took is never refused here; RabbitMQ 3.10 showed no limit up to a 1 MiB line and
 * 10,000 headers, and a MESSAGE over these is refused, dead-lettered whole (bench/stomp-limits.js, docs/stompclt.md).
 */
export const MAX_HEADER_LENGTH = 102_400;
export const MAX_HEADERS = 2000;

/**
 * Where the frame parser itself gives up (the connection is then broken): a bound on the memory of one frame's
 * headers, from a peer that sends a header line without end. Far beyond any broker measured, and beyond the limits
 * given (a frame over those is read whole and refused as a message).
 */
export const PARSER_CEILING = { headerLength: 16 * 1024 * 1024, headers: 100_000 } as const;

/** At most this many bytes of a body go into a `frame` event (the `body` debug word). */
export const DEBUG_BODY_MAX = 200;

/** Header names whose values never appear in an event. */
const SECRET_HEADERS = new Set(['login', 'passcode']);

export type StompConnectionEvent =
  | { type: 'connected'; server: string; brokerType: BrokerType; version: string }
  | BrokerConnectionEvent
  | {
      type: 'frame';
      direction: 'in' | 'out';
      command: string;
      /** With the `header` word; `login` and `passcode` are `***`. */
      headers?: Record<string, string>;
      bodyLength: number;
      /** With the `body` word: the first DEBUG_BODY_MAX bytes as UTF-8. */
      body?: string;
      truncated?: boolean;
    }
  | { type: 'io'; direction: 'in' | 'out'; bytes: number }
  | { type: 'debug'; what: 'connection' | 'api'; text: string };

/** close() could not flush the outgoing data within flushTimeout: the broker may not have got the last frames. */
export class StompFlushError extends MsgbricksError {
  constructor(
    readonly bytes: number,
    readonly frames: number,
    timeoutMs: number,
  ) {
    super(
      'ERR_STOMP_FLUSH',
      `failed to flush the outgoing buffer within ${timeoutMs} ms (${bytes} bytes${frames > 0 ? ` and ${frames} frames` : ''} unsent)`,
    );
  }
}

interface DebugFlags {
  readonly frames: boolean;
  readonly headers: boolean;
  readonly body: boolean;
  readonly io: boolean;
  readonly connection: boolean;
  readonly api: boolean;
}

function debugFlags(words: string | readonly string[] | undefined): DebugFlags {
  const list = typeof words === 'string' ? words.split(/[\s,]+/) : (words ?? []);
  const on = new Set(list.filter((w) => w !== ''));
  const all = on.has('all');
  const has = (w: string) => all || on.has(w);
  return {
    frames: has('command') || has('header') || has('body'),
    headers: has('header'),
    body: has('body'),
    io: has('io'),
    connection: has('connection'),
    api: has('api'),
  };
}

/** Headers for an event: strings, credentials masked. */
function debugHeaders(h: Readonly<Record<string, string | number>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && v !== null) out[k] = SECRET_HEADERS.has(k) ? '***' : String(v);
  return out;
}

/** A received MESSAGE frame. `generation` tells which connection it came on: acks of older ones are moot. */
export interface StompReceived {
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  readonly generation: number;
  readonly raw: RawMessage;
  /** Why this message is refused (over maxHeaderLength or maxHeaders); undefined for a message within them. */
  readonly refused?: string;
}

/** Why a MESSAGE's headers are over the limits, or undefined. Lengths are of the decoded `name:value`, in bytes. */
function overLimits(headers: Readonly<Record<string, string>>, maxLength: number, maxHeaders: number): string | undefined {
  const names = Object.keys(headers);
  const why: string[] = [];
  if (names.length > maxHeaders) why.push(`${names.length} headers (more than --max-headers ${maxHeaders})`);
  let longest = 0;
  let name = '';
  for (const k of names) {
    const v = headers[k] as string;
    // UTF-8 takes at most 3 bytes per UTF-16 unit: most lines are within the limit without counting their bytes.
    if ((k.length + v.length) * 3 + 1 <= maxLength) continue;
    const n = Buffer.byteLength(k) + 1 + Buffer.byteLength(v);
    if (n > longest) {
      longest = n;
      name = k;
    }
  }
  if (longest > maxLength) why.push(`a header line of ${longest} bytes (${name}; more than --max-header-length ${maxLength})`);
  return why.length === 0 ? undefined : `over the frame limits: ${why.join(', ')}`;
}

interface Subscription {
  readonly headers: Record<string, string>;
  readonly listener: (message: StompReceived) => void;
}

interface PendingReceipt {
  resolve(): void;
  reject(err: Error): void;
  command: string;
  what: string;
  destination: string;
  /** performance.now() when it was sent. */
  sentAt: number;
}

/**
 * Which pending frames an ERROR refuses: the one its `receipt-id` names or, as RabbitMQ leaves that header out
 * (for an unknown destination, for example), those whose destination the error quotes.
 */
function refusedBy(err: Error, pending: ReadonlyMap<string, PendingReceipt>): Set<string> {
  const out = new Set<string>();
  if (!(err instanceof StompBrokerError)) return out;
  const id = err.receiptId;
  if (id !== undefined) {
    if (pending.has(id)) out.add(id);
    return out;
  }
  const text = `${err.headers.message ?? ''}\n${err.body}`;
  for (const [k, p] of pending) {
    if (p.destination !== '' && (text.includes(`'${p.destination}'`) || text.includes(`"${p.destination}"`))) out.add(k);
  }
  return out;
}

/**
 * One STOMP session over stompit's Client, kept up by the agent's BrokerConnection (failover, backoff,
 * reconnection, credentials, TLS): CONNECT, receipts on every SEND and SUBSCRIBE (an ERROR answering one of them
 * rejects it with a RejectedError; a lost connection or a missing receipt rejects with a plain Error),
 * subscriptions with client-individual acks replayed after each reconnection, and a DISCONNECT with receipt on
 * close.
 */
export class StompConnection extends BrokerConnection<BrokerServer, RawClient, StompConnectionEvent, StompUri> {
  /** The broker type (detected on each CONNECTED unless given). */
  brokerType: BrokerType = 'UNKNOWN';
  /** The negotiated STOMP version. */
  version = '';
  /** Increases with every new session. */
  generation = 0;

  private readonly pending = new WeakMap<RawClient, Map<string, PendingReceipt>>();
  private readonly subscriptions: Subscription[] = [];
  private nextSubscriptionId = 0;
  /** The receipt timer of each session (see receiptTimeout). */
  private readonly sweeps = new WeakMap<RawClient, NodeJS.Timeout>();
  /** Each session's frame writer (in place of stompit's OutgoingFrameStream). */
  private readonly writers = new WeakMap<RawClient, FrameWriter>();
  private readonly debug: DebugFlags;

  constructor(readonly options: StompConnectionOptions) {
    super(options, { parseUri: parseStompUri, connectError: (message, o) => new StompConnectError(message, o) });
    this.debug = debugFlags(options.debug);
  }

  /** CONNECT's login and passcode, from the `plain` credential. */
  private get loginHeaders(): Record<string, string> {
    const login = this.credentials.login;
    return login === undefined ? {} : { login: login.name, passcode: login.pass };
  }

  private debugText(what: 'connection' | 'api', text: string): void {
    if (this.debug[what]) this.emitEvent({ type: 'debug', what, text });
  }

  private debugFrame(
    direction: 'in' | 'out',
    command: string,
    headers: Readonly<Record<string, string | number>>,
    body: Buffer | string | undefined,
  ): void {
    const length = body === undefined ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    const event: StompConnectionEvent = { type: 'frame', direction, command, bodyLength: length };
    if (this.debug.headers) event.headers = debugHeaders(headers);
    if (this.debug.body && body !== undefined && length > 0) {
      const bytes = typeof body === 'string' ? Buffer.from(body) : body;
      event.body = bytes.subarray(0, DEBUG_BODY_MAX).toString('utf8');
      event.truncated = length > DEBUG_BODY_MAX;
    }
    this.emitEvent(event);
  }

  /** With the debug words on: frames and I/O of this session become events. */
  private instrument(client: RawClient, socket: net.Socket): void {
    if (this.debug.io) {
      socket.on('data', (chunk: Buffer) => this.emitEvent({ type: 'io', direction: 'in', bytes: chunk.length }));
      const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
      socket.write = ((chunk: unknown, ...rest: unknown[]) => {
        const bytes = typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk as Buffer).length;
        this.emitEvent({ type: 'io', direction: 'out', bytes });
        return write(chunk, ...rest);
      }) as typeof socket.write;
    }
    if (!this.debug.frames) return;
    const sendFrame = client.sendFrame.bind(client);
    client.sendFrame = (command, headers, options) => {
      const frame = sendFrame(command, headers, options);
      const end = frame.end.bind(frame) as (...args: unknown[]) => Writable;
      frame.end = ((chunk?: unknown, ...rest: unknown[]) => {
        this.debugFrame('out', command, headers, typeof chunk === 'function' ? undefined : (chunk as Buffer | undefined));
        return end(chunk, ...rest);
      }) as typeof frame.end;
      return frame;
    };
  }

  private errorHandler(): (this: RawClient, frame: RawFrame) => void {
    return fixedErrorHandler(
      this.debug.frames ? (h: Record<string, string>, b: Buffer) => this.debugFrame('in', 'ERROR', h, b) : undefined,
      (client, err) => this.refuseOne(client, err),
    );
  }

  /**
   * An ERROR tied to exactly one pending SEND (its receipt-id, or its destination quoted) is that message's outcome:
   * it is rejected with a RejectedError and the session is kept, so that the SENDs before and after it keep theirs.
   */
  private refuseOne(client: RawClient, err: StompBrokerError): boolean {
    const pending = this.pending.get(client);
    if (pending === undefined) return false;
    const refused = [...refusedBy(err, pending)];
    const id = refused[0];
    const p = id === undefined ? undefined : pending.get(id);
    if (refused.length !== 1 || id === undefined || p === undefined || p.command !== 'SEND') return false;
    pending.delete(id);
    delete client._receipts[id];
    p.reject(new RejectedError(`broker refused ${p.what}: ${err.message}`, { cause: err }));
    return true;
  }

  /** After CONNECTED: stompit's handlers replaced (ERROR) or observed (RECEIPT, with the debug words). */
  private handlers(client: RawClient): void {
    client.setCommandHandler('ERROR', this.errorHandler());
    const receipt = client._commandHandlers.RECEIPT;
    if (this.debug.frames && receipt !== undefined && !('debugged' in receipt)) {
      const debugged = function (this: RawClient, frame: RawFrame, beforeSendResponse: () => void) {
        self.debugFrame('in', 'RECEIPT', frame.headers, undefined);
        receipt.call(this, frame, beforeSendResponse);
      };
      const self = this;
      client.setCommandHandler('RECEIPT', Object.assign(debugged, { debugged: true }));
    }
  }

  /** One attempt: TCP (or TLS), CONNECT, then the subscriptions replayed, each with its receipt. */
  protected async attempt(server: BrokerServer): Promise<RawClient> {
    const client = await this.connectOnce(server);
    try {
      await this.resubscribe(client);
    } catch (err) {
      client.destroy();
      throw err;
    }
    return client;
  }

  protected established(_client: RawClient, server: BrokerServer): void {
    this.emitEvent({ type: 'connected', server: server.uri, brokerType: this.brokerType, version: this.version });
  }

  protected discard(client: RawClient): void {
    client.destroy();
  }

  private connectOnce(server: BrokerServer): Promise<RawClient> {
    return new Promise<RawClient>((resolve, reject) => {
      const timeoutMs = this.options.connectTimeout ?? 10_000;
      const hb = this.options.heartBeat ?? [0, 0];
      const grace = this.options.heartBeatGrace ?? Math.max(1000, Math.round(hb[1] / 2));
      this.debugText('connection', `connecting to ${server.uri}`);
      const socket = server.ssl
        ? tls.connect({
            host: server.host,
            port: server.port,
            ...tlsConnectOptions(this.tls, server.host),
          })
        : net.connect({ host: server.host, port: server.port });
      const writer = new FrameWriter(socket);
      const client = new Client(socket, {
        heartbeatDelayMargin: grace,
        heartbeatOutputMargin: 0,
        outgoingFrameStream: writer,
        // stompit's IncomingFrameStream options (not in its typings).
        ...{
          maxLineLength: Math.max(PARSER_CEILING.headerLength, this.options.maxHeaderLength ?? 0),
          maxHeaders: Math.max(PARSER_CEILING.headers, this.options.maxHeaders ?? 0),
        },
      });
      this.writers.set(client, writer);
      this.instrument(client, socket);
      let settled = false;
      const timer = setTimeout(() => client.destroy(new Error(`no CONNECTED within ${timeoutMs} ms`)), timeoutMs);
      // close() does not wait for the connect time-out: a broker that never answers must not hold a stop up.
      const onAbort = () => client.destroy(new Error('closed while waiting for CONNECTED'));
      this.abort.signal.addEventListener('abort', onAbort, { once: true });
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.abort.signal.removeEventListener('abort', onAbort);
        reject(err);
      };
      // stompit's Client is an EventEmitter that emits 'error': without a listener, a late error would crash.
      client.on('error', (err: Error) => {
        if (!settled) fail(err);
        else this.sessionEnded(client, err);
      });
      client.on('end', () => {
        if (!settled) fail(new Error('connection closed before CONNECTED'));
        else this.sessionEnded(client, new Error('connection closed by the broker'));
      });
      client.on('connect', () => {
        this.handlers(client);
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.abort.signal.removeEventListener('abort', onAbort);
        if (this.debug.frames) this.debugFrame('in', 'CONNECTED', client.headers ?? {}, undefined);
        this.pending.set(client, new Map());
        this.sweep(client);
        this.generation++;
        this.version = client.headers?.version ?? '1.0';
        this.brokerType = this.options.type ?? detectBrokerType(client.headers ?? {});
        resolve(client);
      });
      socket.once(server.ssl ? 'secureConnect' : 'connect', () => {
        this.debugText('connection', `${server.ssl ? 'TLS' : 'TCP'} connection to ${server.uri} up: sending CONNECT`);
        client.connect({
          'accept-version': '1.0,1.1,1.2',
          host: '/',
          ...this.loginHeaders,
          ...this.options.connectHeaders,
          'heart-beat': `${hb[0]},${hb[1]}`,
        });
        client.setCommandHandler('ERROR', this.errorHandler());
      });
    });
  }

  /**
   * The receipt timer of a session: a receipt that does not come within receiptTimeout means a broken session, which
   * is dropped (lost() fails and retries what is pending). One timer looks at the oldest receipt awaited (the first in
   * the map: it keeps insertion order), instead of a timer armed and cleared for every frame.
   */
  private sweep(client: RawClient): void {
    const timeoutMs = this.options.receiptTimeout ?? 30_000;
    const timer = setInterval(
      () => {
        const pending = this.pending.get(client);
        if (pending === undefined) {
          clearInterval(timer);
          return;
        }
        const oldest = pending.values().next().value;
        if (oldest !== undefined && performance.now() - oldest.sentAt > timeoutMs)
          client.destroy(new Error(`no RECEIPT for ${oldest.what} within ${timeoutMs} ms`));
      },
      Math.max(10, Math.min(1000, Math.floor(timeoutMs / 4))),
    );
    // The socket keeps the process alive, not this.
    timer.unref();
    this.sweeps.set(client, timer);
  }

  /** A session ended: its receipt timer stops, what waits for its receipts fails (refused, or to be sent again). */
  protected released(client: RawClient, err: Error): void {
    clearInterval(this.sweeps.get(client));
    const pending = this.pending.get(client) ?? new Map<string, PendingReceipt>();
    this.pending.delete(client);
    const where = this.server?.uri ?? this.description;
    const refused = refusedBy(err, pending);
    for (const [id, p] of pending) {
      if (refused.has(id)) p.reject(new RejectedError(`broker refused ${p.what}: ${err.message}`, { cause: err }));
      else p.reject(new Error(`connection to ${where} lost before the receipt for ${p.what}: ${err.message}`, { cause: err }));
    }
  }

  /** Sends a frame with a receipt on `client`; resolves on RECEIPT. */
  private withReceipt(
    client: RawClient | undefined,
    command: string,
    headers: Record<string, string | number>,
    body: Buffer | undefined,
    what: string,
  ): Promise<void> {
    const pending = client === undefined ? undefined : this.pending.get(client);
    if (client === undefined || pending === undefined) return Promise.reject(new Error(`not connected to ${this.description}`));
    return new Promise<void>((resolve, reject) => {
      const id = `${client._nextReceiptId++}`;
      const entry: PendingReceipt = {
        resolve,
        reject,
        command,
        what,
        destination: String(headers.destination ?? ''),
        sentAt: performance.now(),
      };
      pending.set(id, entry);
      client._receipts[id] = () => {
        pending.delete(id);
        this.options.onReceipt?.(command, (performance.now() - entry.sentAt) / 1000);
        resolve();
      };
      const h: Record<string, string | number> = { ...headers, receipt: id };
      if (command === 'SUBSCRIBE') {
        client.subscribe(h, (err, message) => {
          if (err === null && message) this.deliver(String(h.id), message);
        });
      } else {
        const frame = client.sendFrame(command, h);
        if (body === undefined) frame.end();
        else frame.end(body);
      }
    });
  }

  /**
   * SENDs a message; resolves on its RECEIPT. Rejects with a RejectedError when the broker answers it with an
   * ERROR, with a plain Error when the connection is lost or the receipt is late (send it again).
   */
  send(headers: Readonly<Record<string, string>>, body: Buffer): Promise<void> {
    const h: Record<string, string> = { ...headers, 'content-length': `${body.length}` };
    delete h.receipt;
    if (this.debug.api) this.debugText('api', `send(destination=${h.destination}, ${body.length} bytes)`);
    return this.withReceipt(this.live, 'SEND', h, body, `SEND to ${h.destination}`);
  }

  /**
   * Subscribes (now if connected, and again after every reconnection) with a receipt. Adds `id` when absent and
   * `ack: client-individual` (`client` on STOMP 1.0) unless an ack mode is given.
   */
  async subscribe(headers: Readonly<Record<string, string>>, listener: (message: StompReceived) => void): Promise<void> {
    if (headers.destination === undefined) throw new MsgbricksError('ERR_STOMP_SUBSCRIBE', 'a subscription needs a destination');
    const sub: Subscription = { headers: { id: `msgbricks-${this.nextSubscriptionId++}`, ...headers }, listener };
    this.debugText('api', `subscribe(destination=${headers.destination}, id=${sub.headers.id})`);
    this.subscriptions.push(sub);
    if (this.live !== undefined) await this.subscribeNow(this.live, sub);
  }

  /**
   * UNSUBSCRIBEs every subscription, each with a receipt, as stompclt's --unsubscribe at exit: the n-th header set goes
   * with the n-th subscription (none: the UNSUBSCRIBE has just the `id`), and the subscription's `id` replaces any
   * given. E.g. `activemq.subscriptionName` to end an ActiveMQ durable subscription, `persistent: true` for RabbitMQ.
   * The subscriptions are not replayed after a reconnection any more. Rejects when there is no session or when a
   * receipt does not come (receiptTimeout).
   */
  async unsubscribe(headers: readonly Readonly<Record<string, string>>[] = []): Promise<void> {
    const subs = this.subscriptions.splice(0);
    this.debugText('api', `unsubscribe(${subs.map((s) => s.headers.id).join(', ')})`);
    const client = this.live;
    if (client === undefined) throw new StompConnectError(`cannot unsubscribe: not connected to ${this.description}`);
    await Promise.all(
      subs.map(async (sub, i) => {
        const id = sub.headers.id as string;
        const what = `UNSUBSCRIBE from ${sub.headers.destination}`;
        const given = headers[i] ?? {};
        // N.B. ActiveMQ refuses (ERROR) to remove a durable subscription that still has its consumer: the consumer
        // goes first, with a plain UNSUBSCRIBE, then the subscription (ActiveMQ's own Stomp11Test does the same).
        if (this.brokerType === 'ActiveMQ' && given['activemq.subscriptionName'] !== undefined)
          await this.withReceipt(client, 'UNSUBSCRIBE', { id }, undefined, what);
        await this.withReceipt(client, 'UNSUBSCRIBE', { ...given, id }, undefined, what);
      }),
    );
  }

  private async resubscribe(client: RawClient): Promise<void> {
    for (const sub of this.subscriptions) await this.subscribeNow(client, sub);
  }

  private subscribeNow(client: RawClient, sub: Subscription): Promise<void> {
    const h: Record<string, string> = { ack: this.version === '1.0' ? 'client' : 'client-individual', ...sub.headers };
    return this.withReceipt(client, 'SUBSCRIBE', h, undefined, `SUBSCRIBE to ${h.destination}`);
  }

  private deliver(subscriptionId: string, raw: RawMessage): void {
    const sub = this.subscriptions.find((s) => s.headers.id === subscriptionId);
    const generation = this.generation;
    const chunks: Buffer[] = [];
    raw.on('data', (c: Buffer) => chunks.push(c));
    raw.on('end', () => {
      const body = Buffer.concat(chunks);
      if (this.debug.frames) this.debugFrame('in', 'MESSAGE', raw.headers, body);
      const headers = stringHeaders(raw.headers);
      const refused = overLimits(
        headers,
        this.options.maxHeaderLength ?? MAX_HEADER_LENGTH,
        this.options.maxHeaders ?? MAX_HEADERS,
      );
      sub?.listener({ headers, body, generation, raw, refused });
    });
  }

  /** ACKs a received message (a no-op when its session is gone: the broker gives it again). */
  ack(message: StompReceived): Promise<void> {
    return this.ackOrNack('ack', message);
  }

  /** NACKs a received message, so that the broker delivers it again (on STOMP 1.0, which has no NACK: a no-op). */
  nack(message: StompReceived): Promise<void> {
    if (this.version === '1.0') return Promise.resolve();
    return this.ackOrNack('nack', message);
  }

  private ackOrNack(what: 'ack' | 'nack', message: StompReceived): Promise<void> {
    const client = this.live;
    if (client === undefined || message.generation !== this.generation) return Promise.resolve();
    if (this.debug.api) this.debugText('api', `${what}(${message.headers['message-id']})`);
    return new Promise((resolve) => {
      // A local write error also destroys the session; the broker redelivers what was not acked.
      client[what](message.raw, {}, undefined, () => resolve());
    });
  }

  /**
   * What was written and has not left the process yet: stompit's queue of frames, then the socket's buffer. Waits
   * for both to empty, at most `ms`; a StompFlushError when they did not.
   */
  private async flush(client: RawClient, ms: number): Promise<StompFlushError | undefined> {
    const socket = client.getTransportSocket();
    const until = performance.now() + ms;
    for (;;) {
      const frames = this.writers.get(client)?.pendingFrames ?? 0;
      if ((socket.writableLength === 0 && frames === 0) || socket.destroyed) return undefined;
      if (performance.now() >= until) return new StompFlushError(socket.writableLength, frames, ms);
      await new Promise((r) => setTimeout(r, Math.min(10, Math.max(1, until - performance.now()))));
    }
  }

  /**
   * Flushes what was written (flushTimeout), then DISCONNECTs with a receipt (disconnectTimeout); what still waits
   * for a receipt is rejected. Rejects with a StompFlushError (after dropping the session) when data stayed unsent.
   */
  override async close(): Promise<void> {
    if (!this.closing) this.debugText('api', 'close()');
    await super.close();
    this.debugText('connection', 'closed');
  }

  protected async farewell(client: RawClient): Promise<Error | undefined> {
    const unflushed = await this.flush(client, this.options.flushTimeout ?? 60_000);
    if (unflushed === undefined && this.live === client) {
      this.debugText('connection', 'sending DISCONNECT');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          client.destroy();
          resolve();
        }, this.options.disconnectTimeout ?? 10_000);
        client.disconnect(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    client.destroy();
    return unflushed;
  }
}
