// An in-process AMQP 1.0 peer on rhea's listener (port 0 on loopback), for the faults a real broker will not
// produce on demand: refusals, releases, slow credit, dropped sockets, SASL variants.
import type { AddressInfo, Server } from 'node:net';
import type { Connection, Container, EventContext, Receiver, Sender } from 'rhea';
import { create_container } from 'rhea';

export interface FakeBrokerOptions {
  /** Options of the listening container: credit_window, autoaccept... (they reach every server-side link). */
  container?: Record<string, unknown>;
  /** Extra listen options (transport: 'tls', key, cert, ca, requestCert, enable_sasl_external...). */
  listen?: Record<string, unknown>;
  /** Set up server-side SASL mechanisms (container.sasl_server_mechanisms). */
  sasl?: (mechanisms: { enable_anonymous(): void; enable_plain(cb: (user: string, pass: string) => boolean): void }) => void;
  /** A client sender attached (a server-side receiver): by default its target is echoed (accepting the link). */
  onReceiverOpen?: (receiver: Receiver, ctx: EventContext) => void;
  /** A client receiver attached (a server-side sender): by default its source is echoed. */
  onSenderOpen?: (sender: Sender, ctx: EventContext) => void;
  /** A message from a client sender. */
  onMessage?: (ctx: EventContext) => void;
}

export class FakeBroker {
  readonly container: Container;
  readonly connections = new Set<Connection>();
  /** The open frame of every client connection, in order. */
  readonly opens: Record<string, unknown>[] = [];
  server!: Server;
  port = 0;

  constructor(readonly options: FakeBrokerOptions = {}) {
    this.container = create_container({ id: 'fake-broker', ...options.container });
    const c = this.container;
    options.sasl?.(c.sasl_server_mechanisms);
    // Every event a dropped or refused peer can cause, so that nothing reaches rhea's console fallback.
    for (const name of [
      'error',
      'disconnected',
      'connection_error',
      'protocol_error',
      'session_error',
      'sender_error',
      'receiver_error',
    ]) {
      c.on(name, () => undefined);
    }
    c.on('connection_open', (ctx: EventContext) => {
      this.connections.add(ctx.connection);
      this.opens.push(plain((ctx.connection as unknown as { remote: { open: Record<string, unknown> } }).remote.open));
    });
    c.on('disconnected', (ctx: EventContext) => this.connections.delete(ctx.connection));
    c.on('connection_close', (ctx: EventContext) => this.connections.delete(ctx.connection));
    c.on('receiver_open', (ctx: EventContext) => {
      const r = ctx.receiver as Receiver;
      if (options.onReceiverOpen) options.onReceiverOpen(r, ctx);
      else r.set_target(remoteTerminus(r, 'target'));
    });
    c.on('sender_open', (ctx: EventContext) => {
      const s = ctx.sender as Sender;
      if (options.onSenderOpen) options.onSenderOpen(s, ctx);
      else s.set_source(remoteTerminus(s, 'source'));
    });
    // Each message is handled in its own turn: rhea merges the dispositions of adjacent deliveries settled in the
    // same turn into one range with the first one's outcome (see AmqpIncoming's settle()), and the fake must say
    // exactly what each test tells it to.
    c.on('message', (ctx: EventContext) => setImmediate(() => options.onMessage?.(ctx)));
  }

  async start(): Promise<this> {
    // Without no-delay, Nagle holds the fake's second small frame for the client's delayed ACK (40 ms).
    this.server = this.container.listen({
      port: 0,
      host: '127.0.0.1',
      tcp_no_delay: true,
      ...this.options.listen,
    } as never) as Server;
    await new Promise<void>((resolve, reject) => {
      this.server.once('listening', resolve);
      this.server.once('error', reject);
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get uri(): string {
    return `amqp://127.0.0.1:${this.port}`;
  }

  /** Destroys every server-side socket: to the client, the connection just dies. */
  drop(): void {
    for (const conn of this.connections) (conn as unknown as { socket: { destroy(): void } }).socket.destroy();
    this.connections.clear();
  }

  async stop(): Promise<void> {
    this.drop();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** What the client asked for as source or target (`{address, durable, filter...}`), to echo or inspect. */
export function remoteTerminus(link: Receiver | Sender, which: 'source' | 'target'): { address: string; [k: string]: unknown } {
  const attach = (link as unknown as { remote: { attach: Record<string, Record<string, unknown> | null> } }).remote.attach;
  const t = plain(attach[which] ?? {});
  return { ...t, address: typeof t.address === 'string' ? t.address : '' };
}

/** rhea's decoded performatives keep their fields as getters on the prototype: for..in sees them, a spread does not. */
function plain(composite: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in composite) {
    const v = composite[k];
    if (k !== 'value' && typeof v !== 'function' && v !== undefined && v !== null) out[k] = v;
  }
  return out;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every few milliseconds, failing after `ms` with `what`. */
export async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
