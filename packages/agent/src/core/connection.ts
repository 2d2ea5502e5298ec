/**
 * What every broker connection does whatever its protocol (@msgbricks/stomp, @msgbricks/amqp, and any later user
 * such as Megabus): credentials and TLS settings checked and resolved once, the open / whenConnected / close life
 * cycle, the failover loop across the URI's servers with its jittered exponential backoff, and reconnection after
 * a loss, where a session that dies young keeps the backoff it was made at. A protocol supplies one connection
 * attempt and what a session means to it, through the protected methods below.
 */
import { EventEmitter } from 'node:events';
import { errorOf } from '@msgbricks/errors';
import { type Credential, type CredentialSet, credentialSet } from './credential';
import { CredentialError } from './errors';
import { abortableSleep, Backoff, type BrokerList, type BrokerReconnectOptions, shuffle } from './failover';
import { type ResolvedTls, resolveTls, type TlsSettings } from './tls';
import type { BrokerServer } from './uri';

/** The broker products msgbricks tells apart (a STOMP CONNECTED's `server`, an AMQP open's `product`). */
export const BROKER_TYPES = ['ActiveMQ', 'Apollo', 'Artemis', 'RabbitMQ', 'UNKNOWN'] as const;
export type BrokerType = (typeof BROKER_TYPES)[number];

/** A session that ends sooner than this after it was made current does not reset the reconnection backoff. */
export const STABLE_SESSION_MS = 5000;

/** The events every broker connection reports (a protocol adds its own: `connected` carries what it knows). */
export type BrokerConnectionEvent =
  | { type: 'connect-failed'; server: string; error: Error }
  | { type: 'lost'; error: Error }
  | { type: 'reconnected'; server: string };

/** The options every broker connection takes; a protocol's options extend them. */
export interface BrokerConnectionOptions<U, E> {
  /** A broker URI (the protocol's syntax, failover: and file: lists) or its parsed form. */
  uri: string | U;
  /**
   * Credentials, as objects or Authen::Credential strings (credential.ts): `plain` logs in with a name and a
   * password, `x509` presents a TLS client certificate (every server of the URI must then be TLS), `none` nothing.
   */
  auth?: readonly (Credential | string)[];
  /** TLS settings (tls.ts), for the servers whose scheme means TLS. */
  tls?: TlsSettings;
  /**
   * Reconnect after a lost connection (default: yes, forever, at the URI's delays); false: stay down, as stompclt.
   * Its settings override the URI's, for the first connection too.
   */
  reconnect?: BrokerReconnectOptions | false;
  /** Events for logs (also emitted by name). */
  onEvent?: (event: E) => void;
}

/** What a protocol tells the core about itself. */
export interface BrokerProtocolHooks<U> {
  /** Parses a broker URI of the protocol. */
  readonly parseUri: (uri: string) => U;
  /** Makes the protocol's connect error (its class and code). */
  readonly connectError: (message: string, options?: { cause?: unknown }) => Error;
}

/**
 * A broker connection kept up. `Session` is the protocol's handle on one connection (a STOMP client, a rhea
 * connection); `E` its events, which include BrokerConnectionEvent. Constructing one checks the credentials
 * (CredentialError) and reads the TLS files (TlsError).
 */
export abstract class BrokerConnection<
  S extends BrokerServer,
  Session extends object,
  E extends { readonly type: string },
  U extends BrokerList<S> = BrokerList<S>,
> extends EventEmitter {
  readonly uri: U;
  /** The credentials, parsed and checked. */
  readonly credentials: CredentialSet;
  /** The TLS settings, files read, the x509 credential merged in. */
  readonly tls: ResolvedTls;
  /** The server the current (or last) session is with. */
  server: S | undefined;

  /** The current session, once the protocol's attempt succeeded and it was made current. */
  protected live: Session | undefined;
  protected closing = false;
  /** Aborted by close(): wakes the backoff sleeps and lets attempts give up. */
  protected readonly abort = new AbortController();
  private ready: Promise<void> | undefined;
  private failure: Error | undefined;
  private connectedAt = 0;
  /** The backoff delay the current session was made at: where one that dies young resumes. */
  private lastDelay = 0;
  /** Sessions that ended before they were made current, with why (see connectLoop). */
  private readonly dead = new WeakMap<Session, Error>();

  constructor(
    private readonly settings: BrokerConnectionOptions<U, E>,
    private readonly protocol: BrokerProtocolHooks<U>,
  ) {
    super();
    const uri = typeof settings.uri === 'string' ? protocol.parseUri(settings.uri) : settings.uri;
    // The reconnection options override the URI's settings, the first connection's included: with maxAttempts a
    // plain URI (otherwise a single attempt, as stompclt) is tried again too.
    const r = settings.reconnect === false ? {} : (settings.reconnect ?? {});
    this.uri = {
      ...uri,
      maxReconnectAttempts: r.maxAttempts ?? uri.maxReconnectAttempts,
      initialReconnectDelay: r.initialDelay ?? uri.initialReconnectDelay,
      maxReconnectDelay: r.maxDelay ?? uri.maxReconnectDelay,
    };
    this.credentials = credentialSet(settings.auth);
    const plainServer = this.uri.servers.find((s) => !s.ssl);
    if (this.credentials.x509 !== undefined && plainServer !== undefined) {
      // Without TLS the certificate would never be presented: the broker would take the client as anonymous.
      throw new CredentialError(`an x509 credential needs TLS, and ${plainServer.uri} is not a TLS URI`);
    }
    this.tls = resolveTls(settings.tls, this.credentials.x509);
  }

  get connected(): boolean {
    return this.live !== undefined;
  }

  /** The servers of the URI, for messages. */
  get description(): string {
    return this.uri.servers.map((s) => s.uri).join(',');
  }

  /** Connects (with the URI's failover attempts); rejects with the protocol's connect error saying why. */
  open(): Promise<void> {
    if (this.closing) return Promise.reject(this.protocol.connectError(`connection to ${this.description} is closed`));
    if (this.ready === undefined) {
      this.ready = this.connectLoop(this.uri.maxReconnectAttempts, this.uri.initialReconnectDelay, false);
      this.ready.catch((err) => this.giveUp(errorOf(err)));
    }
    return this.ready;
  }

  /** Resolves once a session is up (waiting for a reconnection in progress); rejects when it never will be. */
  whenConnected(): Promise<void> {
    const fail = this.protocol.connectError;
    if (this.closing) return Promise.reject(fail(`connection to ${this.description} is closed`));
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.ready === undefined) return Promise.reject(fail(`connection to ${this.description} is not open`));
    return this.ready;
  }

  /**
   * Closes: the protocol's goodbye (farewell) on the current session, then the session is released; waits for a
   * connection attempt in progress to give up. Rejects with what farewell reported (data left unsent, say).
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.abort.abort();
    const session = this.live;
    let problem: Error | undefined;
    if (session !== undefined) {
      problem = await this.farewell(session);
      // A no-op when the goodbye (or the broker) has already ended it.
      this.sessionEnded(session, problem ?? this.protocol.connectError(`connection to ${this.server?.uri} closed`));
    }
    await this.ready?.catch(() => undefined);
    this.giveUp(this.protocol.connectError(`connection to ${this.description} is closed`));
    if (problem !== undefined) throw problem;
  }

  /** One connection attempt to `server`, up to a session ready for use (logged in, subscriptions replayed...). */
  protected abstract attempt(server: S): Promise<Session>;

  /** The session is now the current one: tell the modules, report `connected`. */
  protected abstract established(session: Session, server: S): void;

  /**
   * A session ended (`current`: the one in use, else an attempt's or a stale one): free what it holds, fail
   * what waits on it. May be called more than once for a session.
   */
  protected abstract released(session: Session, error: Error, current: boolean): void;

  /** Drops a session made while closing, unused. */
  protected abstract discard(session: Session): void;

  /** The protocol's goodbye on close (DISCONNECT, AMQP close); resolves to a problem to report, if any. */
  protected abstract farewell(session: Session): Promise<Error | undefined>;

  /** No session will come back (closed, or reconnecting gave up). */
  protected gaveUp(_error: Error): void {}

  protected emitEvent(event: E): void {
    this.settings.onEvent?.(event);
    this.emit(event.type, event);
  }

  private report(event: BrokerConnectionEvent): void {
    // E includes BrokerConnectionEvent (see the class's documentation).
    this.emitEvent(event as unknown as E);
  }

  private giveUp(err: Error): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    this.gaveUp(err);
  }

  /** The protocol tells that a session ended (the broker closed it, an error, a heart-beat or receipt time-out). */
  protected sessionEnded(session: Session, err: Error): void {
    const current = session === this.live;
    this.released(session, err, current);
    if (!current) {
      if (!this.dead.has(session)) this.dead.set(session, err);
      return;
    }
    this.live = undefined;
    if (this.closing) return;
    this.report({ type: 'lost', error: err });
    if (this.settings.reconnect === false) {
      this.giveUp(this.protocol.connectError(`connection to ${this.server?.uri} lost: ${err.message}`, { cause: err }));
      return;
    }
    const r = this.settings.reconnect ?? {};
    const young = Date.now() - this.connectedAt < STABLE_SESSION_MS;
    this.ready = this.connectLoop(r.maxAttempts ?? -1, r.initialDelay ?? this.uri.initialReconnectDelay, young).then(() => {
      this.report({ type: 'reconnected', server: this.server?.uri ?? '' });
    });
    this.ready.catch((e) => this.giveUp(errorOf(e)));
  }

  private async connectLoop(maxAttempts: number, initialDelay: number, resume: boolean): Promise<void> {
    const fail = this.protocol.connectError;
    const backoff = Backoff.of(resume ? Math.max(this.lastDelay, initialDelay) : initialDelay, this.uri, this.settings.reconnect);
    if (resume) {
      // The last session died young (a broker that accepts then closes, refusing the virtual host or the login
      // late, say): go on with the backoff instead of hammering it.
      backoff.grow();
      await abortableSleep(backoff.nextWait(), this.abort.signal);
    }
    let attempts = 0;
    const failures: string[] = [];
    for (;;) {
      const servers = this.uri.randomize ? shuffle(this.uri.servers) : this.uri.servers;
      for (const server of servers) {
        if (this.closing) throw fail(`connection to ${this.description} closed while connecting`);
        attempts++;
        try {
          const session = await this.attempt(server);
          // RACE: a session can end before this line runs (an AMQP open and close in one read, a STOMP broker
          // closing right after CONNECTED): it is already gone.
          const early = this.dead.get(session);
          if (early !== undefined) throw early;
          if (this.closing) {
            this.discard(session);
            throw fail(`connection to ${this.description} closed while connecting`);
          }
          this.lastDelay = backoff.current;
          this.live = session;
          this.server = server;
          this.connectedAt = Date.now();
          this.established(session, server);
          return;
        } catch (err) {
          const e = errorOf(err);
          if (this.closing) throw fail(`connection to ${this.description} closed while connecting`, { cause: e });
          failures.push(`${server.uri}: ${e.message}`);
          if (failures.length > 5) failures.shift();
          this.report({ type: 'connect-failed', server: server.uri, error: e });
          if (maxAttempts >= 0 && attempts > maxAttempts) {
            throw fail(
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
}
