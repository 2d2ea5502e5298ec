// Private brokers (src/brokers.ts): start, STOMP round trips, durable messages across restart(), TLS with a client
// certificate, instances side by side, and stop() leaving no process behind. All brokers start in parallel.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tls from 'node:tls';
import { type ConnectionOptions, create_container, type EventContext } from 'rhea';
import {
  type Broker,
  CLIENT_CN,
  clientTlsOptions,
  ensureInstalled,
  type StompConnection,
  startActiveMQ,
  startRabbitMQ,
  stompConnect,
} from '../src';

jest.setTimeout(180_000);

let rabbit: Broker;
let rabbit2: Broker;
let amq: Broker;
const started: Broker[] = [];

beforeAll(async () => {
  ensureInstalled();
  const results = await Promise.allSettled([startRabbitMQ({ tls: true }), startRabbitMQ(), startActiveMQ({ tls: true })]);
  for (const r of results) if (r.status === 'fulfilled') started.push(r.value);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  [rabbit, rabbit2, amq] = started;
  for (const b of started) console.log(`${b.kind} ${b.name}: started in ${b.startupMs} ms, ports ${JSON.stringify(b.ports)}`);
});

afterAll(async () => {
  await Promise.all(started.map((b) => b.stop()));
});

function connect(b: Broker, tls?: tls.ConnectionOptions): Promise<StompConnection> {
  return tls
    ? stompConnect({ port: b.ports.stompSsl as number, tls })
    : stompConnect({ port: b.ports.stomp, login: b.user, passcode: b.password });
}

/** SEND with a receipt, wait for the RECEIPT. */
async function sendWithReceipt(c: StompConnection, destination: string, body: string, headers: Record<string, string> = {}) {
  c.send('SEND', { destination, receipt: 'r1', 'content-type': 'text/plain', ...headers }, body);
  const f = await c.next();
  expect(f.command).toBe('RECEIPT');
  expect(f.headers['receipt-id']).toBe('r1');
}

/** SUBSCRIBE and return the body of the first MESSAGE (acked). */
async function receiveOne(c: StompConnection, destination: string): Promise<string> {
  c.send('SUBSCRIBE', { id: 's1', destination, ack: 'client-individual' });
  const f = await c.next(15_000);
  expect(f.command).toBe('MESSAGE');
  c.send('ACK', { id: f.headers.ack ?? f.headers['message-id'] });
  return f.body;
}

async function roundTrip(b: Broker, tls?: tls.ConnectionOptions): Promise<void> {
  const queue = `/queue/x-${Math.random().toString(36).slice(2)}`;
  const body = `hello from ${b.name}\nwith a second line`;
  const p = await connect(b, tls);
  await sendWithReceipt(p, queue, body);
  await p.close();
  const c = await connect(b, tls);
  expect(await receiveOne(c, queue)).toBe(body);
  await c.close();
}

async function durableAcrossRestart(b: Broker): Promise<void> {
  const queue = '/queue/durable-restart';
  const body = `persistent message for ${b.name}`;
  const p = await connect(b);
  if (b.kind === 'rabbitmq') {
    // declare the durable queue first (SUBSCRIBE on /queue/ declares it durable), then leave it
    p.send('SUBSCRIBE', { id: 'decl', destination: queue, receipt: 'decl' });
    expect((await p.next()).command).toBe('RECEIPT');
    p.send('UNSUBSCRIBE', { id: 'decl', receipt: 'undecl' });
    expect((await p.next()).command).toBe('RECEIPT');
  }
  await sendWithReceipt(p, queue, body, { persistent: 'true' });
  await p.close();
  const ports = { ...b.ports };
  const t0 = Date.now();
  await b.restart();
  console.log(`${b.kind} ${b.name}: restart() took ${Date.now() - t0} ms`);
  expect(b.ports).toEqual(ports);
  const c = await connect(b);
  expect(await receiveOne(c, queue)).toBe(body);
  await c.close();
}

/** Every process whose command line or working directory mentions the broker's name or directory. */
function processesOf(b: Broker): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      let cwd = '';
      try {
        cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        // not ours to read
      }
      if (cmdline.includes(b.name) || cmdline.includes(b.dataDir) || cwd.startsWith(b.dataDir)) found.push(`${pid} ${cmdline}`);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

test('brokers - RabbitMQ starts and a STOMP SEND with a receipt to /queue/x is received by a SUBSCRIBE', async () => {
  expect(rabbit.kind).toBe('rabbitmq');
  expect(rabbit.host).toBe('127.0.0.1');
  expect(rabbit.ports.amqp).toEqual(expect.any(Number));
  await roundTrip(rabbit);
});

test('brokers - ActiveMQ starts and a STOMP SEND with a receipt to /queue/x is received by a SUBSCRIBE', async () => {
  expect(amq.kind).toBe('activemq');
  await roundTrip(amq);
});

test('brokers - two RabbitMQs and an ActiveMQ side by side keep their own messages', async () => {
  const all = [rabbit, rabbit2, amq];
  const ports = all.flatMap((b) => Object.values(b.ports));
  expect(new Set(ports).size).toBe(ports.length);
  for (const b of all) {
    const p = await connect(b);
    await sendWithReceipt(p, '/queue/side-by-side', `only for ${b.name}`);
    await p.close();
  }
  for (const b of all) {
    const c = await connect(b);
    expect(await receiveOne(c, '/queue/side-by-side')).toBe(`only for ${b.name}`);
    await c.close();
  }
});

test('brokers - RabbitMQ STOMP over TLS with the client certificate works (ssl_cert_login)', async () => {
  await roundTrip(rabbit, clientTlsOptions(rabbit));
});

test('brokers - RabbitMQ maps the client certificate CN to the user: an unknown CN is refused', async () => {
  const tlsDir = path.dirname((rabbit.tls as NonNullable<Broker['tls']>).caFile);
  const run = (args: string[]) => expect(spawnSync('openssl', args, { cwd: tlsDir }).status).toBe(0);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'stranger.key', '-out', 'stranger.csr', '-subj', '/CN=stranger']);
  run([
    'x509',
    '-req',
    '-in',
    'stranger.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'stranger.pem',
    '-days',
    '1',
  ]);
  const base = clientTlsOptions(rabbit);
  await expect(
    connect(rabbit, {
      ...base,
      cert: fs.readFileSync(path.join(tlsDir, 'stranger.pem')),
      key: fs.readFileSync(path.join(tlsDir, 'stranger.key')),
    }),
  ).rejects.toThrow(/Access refused for user 'stranger'/);
  expect(CLIENT_CN).toBe('msgbricks-client');
});

test('brokers - RabbitMQ AMQPS (ports.amqpSsl): SASL EXTERNAL with the client certificate logs in as its CN', async () => {
  const container = create_container();
  container.on('error', () => undefined);
  const result = await new Promise((resolve, reject) => {
    // enable_sasl_external is not in rhea's typings (amqp/rhea#324).
    const options = {
      host: rabbit.host,
      port: rabbit.ports.amqpSsl,
      transport: 'tls',
      reconnect: false,
      enable_sasl_external: true,
      ...clientTlsOptions(rabbit),
    };
    const c = container.connect(options as unknown as ConnectionOptions);
    c.on('connection_open', () => {
      // RabbitMQ accepts a user_id only when it is the login: here, the certificate's CN.
      const s = c.open_sender({ target: { address: '/queue/amqps-check', durable: 2 } });
      let sent = false;
      s.on('sendable', () => {
        if (sent) return;
        sent = true;
        // user_id is binary in AMQP 1.0 (rhea's typings say string).
        s.send({ body: 'over AMQPS', user_id: Buffer.from(CLIENT_CN) as unknown as string });
      });
      s.on('accepted', () => {
        // Not in rhea's typings: the SASL layer of the connection.
        const mechanism = (c as unknown as { sasl_transport?: { mechanism_name?: string } }).sasl_transport?.mechanism_name;
        c.close();
        resolve(mechanism);
      });
    });
    c.on('connection_error', (ctx: EventContext) => reject(new Error(String(ctx.error?.message))));
    c.on('session_error', (ctx: EventContext) =>
      reject(new Error(String((ctx.session?.error as { description?: string })?.description))),
    );
    c.on('disconnected', (ctx: EventContext) => reject(ctx.error ?? new Error('disconnected')));
  });
  expect(result).toBe('EXTERNAL');
  expect(rabbit2.ports.amqpSsl).toBeUndefined();
});

test('brokers - TLS without a client certificate is refused by both', async () => {
  for (const b of [rabbit, amq]) {
    const { ca, servername } = clientTlsOptions(b);
    await expect(connect(b, { ca, servername })).rejects.toThrow();
  }
});

test('brokers - ActiveMQ STOMP over TLS with the client certificate works (needClientAuth)', async () => {
  await roundTrip(amq, clientTlsOptions(amq));
});

test('brokers - restart() keeps a persistent message of a durable queue (RabbitMQ and ActiveMQ, in parallel)', async () => {
  await Promise.all([durableAcrossRestart(rabbit), durableAcrossRestart(amq)]);
  // TLS still works after the restart (same certificates, same ports)
  await roundTrip(rabbit, clientTlsOptions(rabbit));
});

test('brokers - stop() leaves no process and no directory behind', async () => {
  const all = started.splice(0);
  for (const b of all) expect(processesOf(b).length).toBeGreaterThan(0);
  await Promise.all(all.map((b) => b.stop()));
  for (const b of all) {
    expect(processesOf(b)).toEqual([]);
    expect(fs.existsSync(b.dataDir)).toBe(false);
    await expect(stompConnect({ port: b.ports.stomp, timeoutMs: 2000 })).rejects.toThrow();
  }
});
