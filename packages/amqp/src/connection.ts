import { EventEmitter } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import type * as tls from 'node:tls';
import {
  abortableSleep,
  Backoff,
  type BrokerReconnectOptions,
  type BrokerType,
  type Credential,
  corkPerTick,
  shuffle,
} from '@msgbricks/agent';
import { errorOf } from '@msgbricks/errors';
import type { Connection, ConnectionOptions, Container, EventContext } from 'rhea';
import { create_container, sasl } from 'rhea';
import { AmqpAuthError, AmqpConnectError, brokerError } from './errors';
import { type AmqpServer, type AmqpUri, openHostname, parseAmqpUri } from './uri';

export interface AmqpTlsOptions {
  /** PEM files (or their contents with ca/cert/key). */
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  ca?: string | Buffer | (string | Buffer)[];
  cert?: string | Buffer;
  key?: string | Buffer;
  passphrase?: string;
  /** The name the broker's certificate must carry (default: the URI's host when it is a name, not an address). */
  servername?: string;
  /** Default true: the broker's certificate must be signed by a trusted CA. */
  rejectUnauthorized?: boolean;
}

/** Overrides of the URI's reconnection settings (the same for every broker module). */
export interface AmqpReconnectOptions extends BrokerReconnectOptions {}

export interface AmqpConnectionOptions {
  /** A broker URI (parseAmqpUri) or its parsed form. */
  uri: string | AmqpUri;
  /**
   * Credentials, as objects or Authen::Credential strings: `plain` logs in with SASL PLAIN, `x509` presents the
   * TLS client certificate and uses SASL EXTERNAL, `none` (or nothing at all) SASL ANONYMOUS.
   */
  auth?: readonly (Credential | string)[];
  tls?: AmqpTlsOptions;
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
  /** Reconnect after a lost connection (default: yes, forever); false: stay down. */
  reconnect?: AmqpReconnectOptions | false;
  /** The AMQP container id (default: a random `msgbricks-...` one). */
  containerId?: string;
  /** Events for logs. */
  onEvent?: (event: AmqpConnectionEvent) => void;
}

export type AmqpConnectionEvent =
  | { type: 'connected'; server: string; brokerType: BrokerType; version: string; mechanism: string }
  | { type: 'connect-failed'; server: string; error: Error }
  | { type: 'lost'; error: Error }
  | { type: 'reconnected'; server: string }
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

/** A session that ends sooner than this after its open does not reset the reconnection backoff. */
const STABLE_MS = 5000;

/** Parses Authen::Credential's string form (`plain name=guest pass=guest`, `x509 cert=... key=...`, `none`). */
function parseCredential(text: string): Credential {
  const words = text.trim().split(/\s+/);
  const scheme = words.shift() ?? '';
  if (scheme !== 'none' && scheme !== 'plain' && scheme !== 'x509') {
    throw new AmqpAuthError(`unsupported credential scheme ${JSON.stringify(scheme)}: expected none, plain or x509`);
  }
  const fields: Record<string, string> = {};
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq <= 0) throw new AmqpAuthError(`invalid credential field ${JSON.stringify(w)}: expected name=value`);
    fields[w.slice(0, eq)] = decodeURIComponent(w.slice(eq + 1));
  }
  return { ...fields, scheme };
}

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
 * One AMQP 1.0 connection over rhea, kept up: failover across the URI's brokers with jittered exponential
 * backoff (rhea's own reconnection is off: it forgets unsettled deliveries and re-attaches links in ways
 * msgbricks does not control), a fresh rhea connection for each attempt, SASL PLAIN / ANONYMOUS / EXTERNAL from
 * the credentials, and handlers on every rhea event that could otherwise reach an unhandled 'error'. Modules
 * attach their links through `watch()`.
 */
export class AmqpConnection extends EventEmitter {
  readonly uri: AmqpUri;
  /** The broker type (from the open frame's `product`), of the current (or last) connection. */
  brokerType: BrokerType = 'UNKNOWN';
  /** The broker's version (open frame `version` property). */
  version = '';
  /** The SASL mechanism of the current (or last) connection (`PLAIN`, `ANONYMOUS`, `EXTERNAL`). */
  mechanism = '';
  /** The server the current (or last) connection is with. */
  server: AmqpServer | undefined;
  /** Increases with every new connection. */
  generation = 0;

  private readonly container: Container;
  private conn: Connection | undefined;
  private ready: Promise<void> | undefined;
  private closing = false;
  private failure: Error | undefined;
  private connectedAt = 0;
  /** The backoff delay the last connection was made at: where a connection that dies young resumes (connectLoop). */
  private lastDelay = 0;
  private readonly abort = new AbortController();
  private readonly watchers = new Set<AmqpConnectionWatcher>();
  /** Connections that ended before they were made current, with why (see connectLoop). */
  private readonly dead = new WeakMap<Connection, Error>();
  private readonly tlsOptions: tls.ConnectionOptions = {};
  private readonly plain: { name: string; pass: string } | undefined;
  private readonly x509: boolean;

  constructor(readonly options: AmqpConnectionOptions) {
    super();
    this.uri = typeof options.uri === 'string' ? parseAmqpUri(options.uri) : options.uri;
    this.container = create_container({
      id: options.containerId ?? `msgbricks-${process.pid}-${Math.random().toString(36).slice(2)}`,
    });
    // rhea emits on the container what no link, session or connection handled (a detach with an error, for
    // one): unhandled, that would be thrown. Every handler is on the connection, so this is a last resort.
    this.container.on('error', (err: unknown) => {
      const c = this.conn;
      if (c !== undefined) this.lost(c, errorOf(err));
    });
    const t = options.tls ?? {};
    const ca: (string | Buffer)[] = [];
    if (t.ca !== undefined) ca.push(...(Array.isArray(t.ca) ? t.ca : [t.ca]));
    if (t.caFile !== undefined) ca.push(readFileSync(t.caFile));
    if (t.certFile !== undefined) this.tlsOptions.cert = readFileSync(t.certFile);
    if (t.cert !== undefined) this.tlsOptions.cert = t.cert;
    if (t.keyFile !== undefined) this.tlsOptions.key = readFileSync(t.keyFile);
    if (t.key !== undefined) this.tlsOptions.key = t.key;
    if (t.passphrase !== undefined) this.tlsOptions.passphrase = t.passphrase;
    if (t.servername !== undefined) this.tlsOptions.servername = t.servername;
    if (t.rejectUnauthorized !== undefined) this.tlsOptions.rejectUnauthorized = t.rejectUnauthorized;
    let plain: { name: string; pass: string } | undefined;
    let x509 = false;
    for (const a of options.auth ?? []) {
      const c = typeof a === 'string' ? parseCredential(a) : a;
      if (c.scheme === 'plain') {
        if (c.name === undefined) throw new AmqpAuthError('a plain credential needs a name');
        plain = { name: c.name, pass: c.pass ?? '' };
      } else if (c.scheme === 'x509') {
        if (c.cert === undefined || c.key === undefined) throw new AmqpAuthError('an x509 credential needs cert and key (files)');
        this.tlsOptions.cert = readFileSync(c.cert);
        this.tlsOptions.key = readFileSync(c.key);
        if (c.pass !== undefined) this.tlsOptions.passphrase = c.pass;
        if (c.ca_file !== undefined) ca.push(readFileSync(c.ca_file));
        if (c.ca !== undefined) {
          for (const f of readdirSync(c.ca)) if (/\.(pem|crt)$/i.test(f)) ca.push(readFileSync(join(c.ca, f)));
        }
        x509 = true;
      }
    }
    if (x509 && !this.uri.servers.some((s) => s.ssl)) {
      throw new AmqpAuthError(`an x509 credential needs TLS: use amqps:// (or ssl://) instead of ${this.description}`);
    }
    if (ca.length > 0) this.tlsOptions.ca = ca;
    this.plain = plain;
    this.x509 = x509;
  }

  get connected(): boolean {
    return this.conn !== undefined;
  }

  /** The current rhea connection, if any. */
  get current(): Connection | undefined {
    return this.conn;
  }

  get description(): string {
    return this.uri.servers.map((s) => s.uri).join(',');
  }

  /**
   * Registers what a module does on each new connection and on its loss. If a connection is up, `open` is
   * called at once. Returns the function that unregisters.
   */
  watch(watcher: AmqpConnectionWatcher): () => void {
    this.watchers.add(watcher);
    if (this.conn !== undefined) watcher.open?.(this.conn);
    return () => this.watchers.delete(watcher);
  }

  /** For modules: reports a link refused or lost while the connection stays up. */
  reportLinkError(address: string, error: Error): void {
    this.emitEvent({ type: 'link-error', address, error });
  }

  /** Connects (with the URI's failover attempts); rejects with an AmqpConnectError saying why. */
  async open(): Promise<void> {
    if (this.closing) throw new AmqpConnectError(`connection to ${this.description} is closed`);
    if (this.ready === undefined) {
      this.ready = this.connectLoop(this.uri.maxReconnectAttempts, this.uri.initialReconnectDelay, false);
      this.ready.catch((err) => this.fail(errorOf(err)));
    }
    return this.ready;
  }

  /** Resolves once a connection is up (waiting for a reconnection in progress); rejects when it never will be. */
  whenConnected(): Promise<void> {
    if (this.closing) return Promise.reject(new AmqpConnectError(`connection to ${this.description} is closed`));
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.ready === undefined) return Promise.reject(new AmqpConnectError(`connection to ${this.description} is not open`));
    return this.ready;
  }

  private emitEvent(event: AmqpConnectionEvent): void {
    this.options.onEvent?.(event);
    this.emit(event.type, event);
  }

  private fail(err: Error): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    for (const w of [...this.watchers]) w.failed?.(err);
  }

  private async connectLoop(maxAttempts: number, initialDelay: number, resume: boolean): Promise<void> {
    const backoff = Backoff.of(resume ? Math.max(this.lastDelay, initialDelay) : initialDelay, this.uri, this.options.reconnect);
    if (resume) {
      // The last connection died young (a broker that opens then closes, refusing the virtual host, say):
      // go on with the backoff instead of hammering it.
      backoff.grow();
      await abortableSleep(backoff.nextWait(), this.abort.signal);
    }
    let attempts = 0;
    const failures: string[] = [];
    for (;;) {
      const servers = this.uri.randomize ? shuffle(this.uri.servers) : this.uri.servers;
      for (const server of servers) {
        if (this.closing) throw new AmqpConnectError(`connection to ${this.description} closed while connecting`);
        attempts++;
        try {
          const conn = await this.connectOnce(server);
          // RACE: an open and a close can come in one read (RabbitMQ refusing the virtual host): the close is
          // handled before this line runs, and the connection is already gone.
          const early = this.dead.get(conn);
          if (early !== undefined) throw early;
          if (this.closing) {
            dispose(conn);
            throw new AmqpConnectError(`connection to ${this.description} closed while connecting`);
          }
          this.lastDelay = backoff.current;
          this.up(conn, server);
          return;
        } catch (err) {
          const e = errorOf(err);
          if (this.closing) throw e instanceof AmqpConnectError ? e : new AmqpConnectError(e.message, { cause: e });
          failures.push(`${server.uri}: ${e.message}`);
          if (failures.length > 5) failures.shift();
          this.emitEvent({ type: 'connect-failed', server: server.uri, error: e });
          if (maxAttempts >= 0 && attempts > maxAttempts) {
            throw new AmqpConnectError(
              `cannot connect to ${this.description} (${attempts} attempt${attempts > 1 ? 's' : ''}): ${failures.join('; ')}`,
              { cause: e },
            );
          }
        }
        await abortableSleep(backoff.nextWait(), this.abort.signal);
        backoff.grow();
      }
    }
  }

  private connectionOptions(server: AmqpServer): ConnectionOptions {
    const mechanisms = sasl.client_mechanisms() as unknown as Record<string, unknown> & { enable_anonymous(n?: string): void };
    const plain = this.plain;
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
    } else if (!this.x509) {
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
      Object.assign(o, this.tlsOptions, { transport: 'tls' });
      // rhea would put an IP address in SNI (Node warns): name the host only when it is a name.
      if (this.tlsOptions.servername === undefined) o.servername = net.isIP(server.host) ? '' : server.host;
      // EXTERNAL: rhea adds it on an encrypted socket with a client certificate (not in its typings: amqp/rhea#324).
      if (this.x509) o.enable_sasl_external = true;
    }
    return o as unknown as ConnectionOptions;
  }

  private connectOnce(server: AmqpServer): Promise<Connection> {
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
      const broken = (err: Error) => (settled ? this.lost(c, err) : fail(err));
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
      const who =
        this.plain !== undefined ? ` as ${JSON.stringify(this.plain.name)}` : this.x509 ? ' with the client certificate' : '';
      return new AmqpAuthError(
        `authentication refused by ${server.uri}${mech === undefined ? '' : ` (SASL ${mech}${who})`}: ${text}`,
        e.condition,
        { cause: error },
      );
    }
    return brokerError(server.uri, error);
  }

  private up(conn: Connection, server: AmqpServer): void {
    const raw = conn as unknown as RawConnection;
    const properties = raw.remote?.open?.properties;
    this.conn = conn;
    this.generation++;
    this.server = server;
    this.connectedAt = Date.now();
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

  /** The connection `conn` ended: tell the modules, then reconnect (unless closing or told not to). */
  private lost(conn: Connection, err: Error): void {
    dispose(conn);
    if (conn !== this.conn) {
      if (!this.dead.has(conn)) this.dead.set(conn, err);
      return;
    }
    this.conn = undefined;
    for (const w of [...this.watchers]) w.down?.(conn, err);
    if (this.closing) return;
    this.emitEvent({ type: 'lost', error: err });
    if (this.options.reconnect === false) {
      this.fail(new AmqpConnectError(`connection to ${this.server?.uri} lost: ${err.message}`, { cause: err }));
      return;
    }
    const r = this.options.reconnect ?? {};
    const short = Date.now() - this.connectedAt < STABLE_MS;
    this.ready = this.connectLoop(r.maxAttempts ?? -1, r.initialDelay ?? this.uri.initialReconnectDelay, short).then(() => {
      this.emitEvent({ type: 'reconnected', server: this.server?.uri ?? '' });
    });
    this.ready.catch((e) => this.fail(errorOf(e)));
  }

  /** Closes the connection (waiting up to disconnectTimeout for the broker's close). Modules see it go down. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.abort.abort();
    const conn = this.conn;
    if (conn !== undefined) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.watchers.delete(watcher);
          resolve();
        };
        const watcher: AmqpConnectionWatcher = { down: done };
        const timer = setTimeout(done, this.options.disconnectTimeout ?? 10_000);
        this.watchers.add(watcher);
        conn.close();
      });
      // A no-op when the broker's close (or a socket error) has already ended it.
      this.lost(conn, new AmqpConnectError(`connection to ${this.server?.uri} closed`));
    }
    await this.ready?.catch(() => undefined);
    this.fail(new AmqpConnectError(`connection to ${this.description} is closed`));
  }
}
