import type * as net from 'node:net';
import {
  BrokerConnection,
  type BrokerConnectionEvent,
  type BrokerConnectionOptions,
  type BrokerReconnectOptions,
  type BrokerType,
  corkPerTick,
  tlsConnectOptions,
} from '@msgbricks/agent';
import { errorOf } from '@msgbricks/errors';
import type { Connection, ConnectionOptions, Container, EventContext } from 'rhea';
import { create_container, sasl } from 'rhea';
import { AmqpAuthError, AmqpConnectError, brokerError } from './errors';
import { type AmqpServer, type AmqpUri, openHostname, parseAmqpUri } from './uri';

/** Overrides of the URI's reconnection settings (the same for every broker module). */
export interface AmqpReconnectOptions extends BrokerReconnectOptions {}

/**
 * The agent's connection options (uri: parseAmqpUri's syntax; auth: `plain` logs in with SASL PLAIN, `x509` presents
 * the TLS client certificate and uses SASL EXTERNAL, `none` or nothing SASL ANONYMOUS; tls; reconnect; onEvent),
 * and AMQP's.
 */
export interface AmqpConnectionOptions extends BrokerConnectionOptions<AmqpUri, AmqpConnectionEvent> {
  /**
   * Heart-beats: milliseconds of silence we allow the broker (the AMQP open's idle-time-out; the broker sends
   * something at least every half of it, and the connection is dropped after twice it without a frame).
   * Off by default; rhea answers the broker's own idle-time-out whatever this says.
   */
  idleTimeout?: number;
  /** Milliseconds for TCP+TLS+SASL+open (default 10000). */
  connectTimeout?: number;
  /** Milliseconds to wait for the broker's close on close() (default 10000). */
  disconnectTimeout?: number;
  /** The AMQP container id (default: a random `msgbricks-...` one). */
  containerId?: string;
}

export type AmqpConnectionEvent =
  | { type: 'connected'; server: string; brokerType: BrokerType; version: string; mechanism: string }
  | BrokerConnectionEvent
  /** A link (one destination's sender, one subscription's receiver) refused or lost while the connection stays up. */
  | { type: 'link-error'; address: string; error: Error };

/** What a module does when a connection comes up, goes down, or is given up for good. */
export interface AmqpConnectionWatcher {
  /** A new rhea connection is open: attach links on it. Called before open() resolves and before 'connected'/'reconnected'. */
  open?(connection: Connection): void;
  /** That connection is gone: everything unsettled on it is lost (rhea forgets it). */
  down?(connection: Connection, error: Error): void;
  /** No connection will come back (closed, or reconnecting gave up). */
  failed?(error: Error): void;
}

const SASL_OUTCOMES: readonly string[] = ['ok', 'auth', 'sys', 'sys-perm', 'sys-temp'];

/** The broker type from the open frame's `product` property (amqpclt takes it from the same place). */
export function detectAmqpBrokerType(properties: Readonly<Record<string, unknown>> | undefined): BrokerType {
  const product = String(properties?.product ?? '');
  if (/^RabbitMQ$/i.test(product)) return 'RabbitMQ';
  if (/artemis/i.test(product)) return 'Artemis';
  if (/apollo/i.test(product)) return 'Apollo';
  if (/activemq/i.test(product)) return 'ActiveMQ';
  return 'UNKNOWN';
}

/** rhea's connection internals msgbricks touches (none are in its typings). */
interface RawConnection {
  socket?: net.Socket;
  sasl_transport?: { mechanism_name?: string };
  heartbeat_in?: NodeJS.Timeout;
  heartbeat_out?: NodeJS.Timeout;
  abort_idle?: NodeJS.Timeout;
  remote?: { open?: { properties?: Record<string, unknown> } };
}

/**
 * Stops a rhea connection for good: destroys its socket and its heart-beat timers. Its events may still come
 * (a write to the dead socket, say); the handlers ignore connections that are not the current one.
 */
function dispose(conn: Connection): void {
  const raw = conn as unknown as RawConnection;
  for (const t of [raw.heartbeat_in, raw.heartbeat_out, raw.abort_idle]) if (t !== undefined) clearTimeout(t);
  raw.heartbeat_in = raw.heartbeat_out = raw.abort_idle = undefined;
  const socket = raw.socket;
  if (socket !== undefined) {
    // A late socket error must never be unhandled.
    socket.on('error', () => undefined);
    socket.destroy();
  }
}

/**
 * One AMQP 1.0 connection over rhea, kept up by the agent's BrokerConnection (failover, backoff, reconnection,
 * credentials, TLS). rhea's own reconnection is off: it forgets unsettled deliveries and re-attaches links in ways
 * msgbricks does not control; each attempt is a fresh rhea connection, with SASL PLAIN / ANONYMOUS / EXTERNAL from
 * the credentials, and handlers on every rhea event that could otherwise reach an unhandled 'error'. Modules
 * attach their links through `watch()`.
 */
export class AmqpConnection extends BrokerConnection<AmqpServer, Connection, AmqpConnectionEvent, AmqpUri> {
  /** The broker type (from the open frame's `product`), of the current (or last) connection. */
  brokerType: BrokerType = 'UNKNOWN';
  /** The broker's version (open frame `version` property). */
  version = '';
  /** The SASL mechanism of the current (or last) connection (`PLAIN`, `ANONYMOUS`, `EXTERNAL`). */
  mechanism = '';
  /** Increases with every new connection. */
  generation = 0;

  private readonly container: Container;
  private readonly watchers = new Set<AmqpConnectionWatcher>();

  constructor(readonly options: AmqpConnectionOptions) {
    super(options, { parseUri: parseAmqpUri, connectError: (message, o) => new AmqpConnectError(message, o) });
    this.container = create_container({
      id: options.containerId ?? `msgbricks-${process.pid}-${Math.random().toString(36).slice(2)}`,
    });
    // rhea emits on the container what no link, session or connection handled (a detach with an error, for
    // one): unhandled, that would be thrown. Every handler is on the connection, so this is a last resort.
    this.container.on('error', (err: unknown) => {
      const c = this.live;
      if (c !== undefined) this.sessionEnded(c, errorOf(err));
    });
  }

  /** The current rhea connection, if any. */
  get current(): Connection | undefined {
    return this.live;
  }

  /**
   * Registers what a module does on each new connection and on its loss. If a connection is up, `open` is
   * called at once. Returns the function that unregisters.
   */
  watch(watcher: AmqpConnectionWatcher): () => void {
    this.watchers.add(watcher);
    if (this.live !== undefined) watcher.open?.(this.live);
    return () => this.watchers.delete(watcher);
  }

  /** For modules: reports a link refused or lost while the connection stays up. */
  reportLinkError(address: string, error: Error): void {
    this.emitEvent({ type: 'link-error', address, error });
  }

  protected override gaveUp(err: Error): void {
    for (const w of [...this.watchers]) w.failed?.(err);
  }

  private connectionOptions(server: AmqpServer): ConnectionOptions {
    const mechanisms = sasl.client_mechanisms() as unknown as Record<string, unknown> & { enable_anonymous(n?: string): void };
    const plain = this.credentials.login;
    if (plain !== undefined) {
      // rhea's own PLAIN sizes its buffer with String.length: a non-ASCII name or password would be cut short.
      mechanisms.PLAIN = () => ({
        start(callback: (err: unknown, response: Buffer) => void) {
          callback(
            undefined,
            Buffer.concat([Buffer.from([0]), Buffer.from(plain.name, 'utf8'), Buffer.from([0]), Buffer.from(plain.pass, 'utf8')]),
          );
        },
      });
    } else if (this.credentials.x509 === undefined) {
      // Without sasl_mechanisms rhea would skip SASL entirely, which RabbitMQ 3.10 accepts and 4.x does not.
      mechanisms.enable_anonymous();
    }
    const o: Record<string, unknown> = {
      host: server.host,
      port: server.port,
      reconnect: false,
      // Confirms travel one by one: Nagle would hold each disposition back.
      tcp_no_delay: true,
      sasl_mechanisms: mechanisms,
    };
    const hostname = openHostname(server);
    if (hostname !== undefined) o.hostname = hostname;
    if (this.options.idleTimeout !== undefined && this.options.idleTimeout > 0) o.idle_time_out = this.options.idleTimeout;
    if (server.ssl) {
      Object.assign(o, tlsConnectOptions(this.tls, server.host), { transport: 'tls' });
      // EXTERNAL: rhea adds it on an encrypted socket with a client certificate (not in its typings: amqp/rhea#324).
      if (this.credentials.x509 !== undefined) o.enable_sasl_external = true;
    }
    return o as unknown as ConnectionOptions;
  }

  protected attempt(server: AmqpServer): Promise<Connection> {
    return new Promise<Connection>((resolve, reject) => {
      const timeoutMs = this.options.connectTimeout ?? 10_000;
      let settled = false;
      let conn: Connection | undefined;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.abort.signal.removeEventListener('abort', onAbort);
        if (conn !== undefined) dispose(conn);
        reject(err);
      };
      const onAbort = () => fail(new AmqpConnectError(`connection to ${server.uri} closed while connecting`));
      const timer = setTimeout(() => fail(new Error(`no AMQP open from ${server.uri} within ${timeoutMs} ms`)), timeoutMs);
      this.abort.signal.addEventListener('abort', onAbort, { once: true });
      try {
        conn = this.container.connect(this.connectionOptions(server));
      } catch (err) {
        fail(errorOf(err));
        return;
      }
      const c = conn;
      const socket = (c as unknown as RawConnection).socket;
      // rhea writes every frame with its own socket.write.
      if (socket !== undefined) corkPerTick(socket);
      // Before open, any of these ends the attempt; after, they end the connection (lost() ignores stale ones).
      const broken = (err: Error) => (settled ? this.sessionEnded(c, err) : fail(err));
      c.on('connection_open', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.abort.signal.removeEventListener('abort', onAbort);
        resolve(c);
      });
      c.on('connection_error', (ctx: EventContext) => broken(this.describe(c, server, ctx.error ?? c.error, settled)));
      c.on('connection_close', () => broken(new Error(`${server.uri} closed the connection`)));
      c.on('disconnected', (ctx: EventContext) => {
        const e = ctx.error;
        broken(
          e === undefined
            ? new Error(`connection to ${server.uri} closed`)
            : new Error(`connection to ${server.uri} failed: ${e.message}`, { cause: e }),
        );
      });
      c.on('protocol_error', (err: unknown) =>
        broken(new Error(`AMQP protocol error with ${server.uri}: ${errorOf(err).message}`)),
      );
      c.on('error', (err: unknown) => broken(errorOf(err)));
      // Links and sessions have their own handlers (the modules'); these only keep rhea from passing an error
      // nobody claimed to the container.
      for (const name of ['session_error', 'session_close', 'sender_error', 'sender_close', 'receiver_error', 'receiver_close']) {
        c.on(name, () => undefined);
      }
    });
  }

  /** A connection error as an AmqpAuthError when SASL did not complete, an AmqpBrokerError otherwise. */
  private describe(conn: Connection, server: AmqpServer, error: unknown, open: boolean): Error {
    const e = (error ?? {}) as { condition?: string; description?: string; message?: string };
    // rhea reports a refused SASL exchange as "Failed to authenticate: <outcome code>".
    const text = (e.description ?? e.message ?? 'no description').replace(
      /Failed to authenticate: (\d)/,
      (_m, code: string) => `the broker refused the login (SASL outcome ${SASL_OUTCOMES[Number(code)] ?? code})`,
    );
    if (!open && /authenticate|mechanism|sasl/i.test(text)) {
      const mech = (conn as unknown as RawConnection).sasl_transport?.mechanism_name;
      const login = this.credentials.login;
      const who =
        login !== undefined
          ? ` as ${JSON.stringify(login.name)}`
          : this.credentials.x509 !== undefined
            ? ' with the client certificate'
            : '';
      return new AmqpAuthError(
        `authentication refused by ${server.uri}${mech === undefined ? '' : ` (SASL ${mech}${who})`}: ${text}`,
        e.condition,
        { cause: error },
      );
    }
    return brokerError(server.uri, error);
  }

  protected established(conn: Connection, server: AmqpServer): void {
    const raw = conn as unknown as RawConnection;
    const properties = raw.remote?.open?.properties;
    this.generation++;
    this.brokerType = detectAmqpBrokerType(properties);
    this.version = String(properties?.version ?? '');
    this.mechanism = raw.sasl_transport?.mechanism_name ?? '';
    for (const w of [...this.watchers]) w.open?.(conn);
    this.emitEvent({
      type: 'connected',
      server: server.uri,
      brokerType: this.brokerType,
      version: this.version,
      mechanism: this.mechanism,
    });
  }

  /** A connection ended: it is stopped for good and, if it was the current one, the modules hear of it. */
  protected released(conn: Connection, err: Error, current: boolean): void {
    dispose(conn);
    if (current) for (const w of [...this.watchers]) w.down?.(conn, err);
  }

  protected discard(conn: Connection): void {
    dispose(conn);
  }

  /** Closes the connection, waiting up to disconnectTimeout for the broker's close. Modules see it go down. */
  protected farewell(conn: Connection): Promise<undefined> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.watchers.delete(watcher);
        resolve(undefined);
      };
      const watcher: AmqpConnectionWatcher = { down: done };
      const timer = setTimeout(done, this.options.disconnectTimeout ?? 10_000);
      this.watchers.add(watcher);
      conn.close();
    });
  }
}
