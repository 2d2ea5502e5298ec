// Bounded shutdown (issue 11, item 4): SIGTERM ends stompclt and amqpclt within the linger time plus the closing
// grace in every state of a broker connection, with fake peers a real broker cannot imitate (one that accepts TCP
// and never answers, one that answers CONNECTED or the AMQP open and then goes silent). Before, the first two
// never ended on one SIGTERM and the last hung for more than ten minutes: the bound asserted is generous.
import * as net from 'node:net';
import { join } from 'node:path';
import { DQS, Message } from '@msgbricks/message';
import { AMQPCLT, CLI, locks, type Running, readAll, start, useTempDir, waitFor } from './helpers';

jest.setTimeout(60_000);
const dir = useTempDir();
const q = (name: string) => `path=${join(dir.path, name)} type=DQS`;

/** Far above the bound of these runs (1 s of linger + 5 s of grace), far below "never". */
const GENEROUS_MS = 30_000;

/** A TCP peer; `onData` answers what it wants (nothing, for a silent one). Closed after each test. */
const servers: net.Server[] = [];
const sockets: net.Socket[] = [];
/** Everything the peers received, for the tests to wait on a frame. */
let traffic = '';
async function peer(onData: (socket: net.Socket, data: string) => void = () => undefined): Promise<number> {
  const server = net.createServer((socket) => {
    sockets.push(socket);
    let seen = '';
    socket.on('data', (d: Buffer) => {
      seen += d.toString('latin1');
      traffic += d.toString('latin1');
      onData(socket, seen);
    });
    socket.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

/** A STOMP peer that answers CONNECT with CONNECTED (no heart-beats) and then never says anything again. */
const connectedThenSilent = () =>
  peer((socket, seen) => {
    if (/^(CONNECT|STOMP)\n/.test(seen) && seen.includes('\0') && !(socket as { answered?: boolean }).answered) {
      (socket as { answered?: boolean }).answered = true;
      socket.write('CONNECTED\nversion:1.2\nserver:fake/1\n\n\0');
    }
  });

afterEach(async () => {
  traffic = '';
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** SIGTERM once `ready` holds; resolves to the run's result, failing when it outlives GENEROUS_MS. */
async function terminate(run: Running, ready: () => boolean | Promise<boolean>, what: string) {
  await waitFor(what, ready);
  run.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      run.child.kill('SIGKILL');
      reject(new Error(`still running ${GENEROUS_MS} ms after SIGTERM`));
    }, GENEROUS_MS);
  });
  try {
    return await Promise.race([run.done, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A spool of `n` messages for /queue/x. */
async function fill(path: string, n: number): Promise<string[]> {
  const spool = new DQS(path);
  const bodies: string[] = [];
  for (let i = 0; i < n; i++) {
    bodies.push(`msg-${i}`);
    await spool.addMessage(new Message({ header: { destination: '/queue/x' }, body: `msg-${i}` }));
  }
  return bodies;
}

/** The spool holds every element, none locked. */
async function expectSpoolIntact(name: string, bodies: string[]) {
  const left = await readAll(join(dir.path, name), 'DQS');
  expect(left.map((m) => m.body.toString()).sort()).toEqual([...bodies].sort());
  expect(locks(join(dir.path, name))).toEqual([]);
}

const silentFailover = async (scheme: string) =>
  `failover:(${scheme}://127.0.0.1:${await peer()},${scheme}://127.0.0.1:${await peer()})`;
const connections = () => sockets.length;

describe.each([
  ['stompclt', CLI, 'stomp'],
  ['amqpclt', AMQPCLT, 'amqp'],
])('%s - bounded shutdown', (name, cli, scheme) => {
  test(`${name} - SIGTERM while connecting through a silent failover list (queue -> broker): exits, spool untouched`, async () => {
    const bodies = await fill(join(dir.path, 'a'), 5);
    const uri = await silentFailover(scheme);
    const run = start(
      ['--incoming-queue', q('a'), '--outgoing-broker-uri', uri, '--reliable', '--loop', '--remove'],
      dir.path,
      cli,
    );
    const r = await terminate(run, () => connections() >= 1, 'a connection attempt');
    expect(r.err).toMatch(/stopping \(signal\)/);
    expect(r.status).not.toBeNull();
    await expectSpoolIntact('a', bodies);
  });

  test(`${name} - SIGTERM while connecting through a silent failover list (broker -> queue): exits`, async () => {
    const uri = await silentFailover(scheme);
    const run = start(
      ['--incoming-broker-uri', uri, '--subscribe', 'destination=/queue/x', '--outgoing-queue', q('b'), '--reliable'],
      dir.path,
      cli,
    );
    const r = await terminate(run, () => connections() >= 1, 'a connection attempt');
    expect(r.err).toMatch(/stopping \(signal\)/);
    expect(r.status).not.toBeNull();
    expect(await readAll(join(dir.path, 'b'), 'DQS')).toEqual([]);
  });
});

describe('stompclt - bounded shutdown with a broker that answers CONNECTED then goes silent', () => {
  test('stompclt - SIGTERM while draining unconfirmed SENDs: exits within the linger bound, every element back, unlocked', async () => {
    const bodies = await fill(join(dir.path, 'a'), 20);
    const port = await connectedThenSilent();
    const run = start(
      [
        '--incoming-queue',
        q('a'),
        '--outgoing-broker-uri',
        `stomp://127.0.0.1:${port}`,
        '--reliable',
        '--loop',
        '--remove',
        '--timeout-linger',
        '1',
        '--timeout-broker',
        '3600',
      ],
      dir.path,
    );
    const r = await terminate(run, () => traffic.includes('SEND\n') && locks(join(dir.path, 'a')).length > 0, 'SENDs');
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/stopping \(signal\)/);
    await expectSpoolIntact('a', bodies);
  });

  test('stompclt - SIGTERM with the default linger while subscribed to a silent broker (broker -> queue): exits', async () => {
    const port = await connectedThenSilent();
    const run = start(
      [
        '--incoming-broker-uri',
        `stomp://127.0.0.1:${port}`,
        '--subscribe',
        'destination=/queue/x',
        '--outgoing-queue',
        q('b'),
        '--reliable',
        '--timeout-disconnect',
        '3600',
      ],
      dir.path,
    );
    const r = await terminate(run, () => traffic.includes('SUBSCRIBE\n'), 'the SUBSCRIBE');
    expect(r.err).toMatch(/stopping \(signal\): finishing the messages in flight for at most 10 s/);
    expect(r.status).not.toBeNull();
    expect(await readAll(join(dir.path, 'b'), 'DQS')).toEqual([]);
  });
});

describe('amqpclt - bounded shutdown with a peer that opens the connection then never settles', () => {
  test('amqpclt - SIGTERM while draining unsettled transfers: exits within the linger bound, every element back, unlocked', async () => {
    const bodies = await fill(join(dir.path, 'a'), 20);
    // rhea as the peer: it answers open, begin and attach, and never settles a transfer.
    const rhea = require('rhea') as typeof import('rhea');
    const container = rhea.create_container({ autoaccept: false } as never);
    const listener = container.listen({ port: 0, host: '127.0.0.1' });
    servers.push(listener as unknown as net.Server);
    await new Promise((r) => listener.once('listening', r));
    const port = (listener.address() as net.AddressInfo).port;
    container.sasl_server_mechanisms.enable_anonymous();
    container.on('connection_open', (ctx) => sockets.push((ctx.connection as unknown as { socket: net.Socket }).socket));
    const run = start(
      [
        '--incoming-queue',
        q('a'),
        '--outgoing-broker-uri',
        `amqp://127.0.0.1:${port}`,
        '--reliable',
        '--loop',
        '--remove',
        '--timeout-linger',
        '1',
      ],
      dir.path,
      AMQPCLT,
    );
    const r = await terminate(run, () => locks(join(dir.path, 'a')).length > 0, 'elements in flight');
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/stopping \(signal\)/);
    await expectSpoolIntact('a', bodies);
  });
});
