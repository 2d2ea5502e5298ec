// Frame limits of the STOMP parser (issue 11, item 2): stompit's defaults (a 1024-byte header line, 64 headers)
// refused messages that RabbitMQ and ActiveMQ accept and deliver, and the agent reconnected for ever. A peer sends
// what a broker would deliver: one message with a 4 KiB header, one with 100 headers; both must land intact. Over the
// limits given, a message is refused as a message: dead-lettered whole and acked (or NACKed without a dead-letter
// spool), on the same connection.
import * as net from 'node:net';
import { join } from 'node:path';
import { readAll, start, useTempDir } from './helpers';

jest.setTimeout(60_000);
const dir = useTempDir();

const long = 'x'.repeat(4096);
const many: Record<string, string> = {};
for (let i = 0; i < 100; i++) many[`h${i}`] = `v${i}`;

/**
 * A peer that answers CONNECT and receipts, and once subscribed delivers `one` (a 4 KiB header), `two` (100 headers)
 * and `three` (plain); records the connections and the ACK and NACK frames it got (their `id`).
 */
async function peer(): Promise<{
  port: number;
  connections: () => number;
  acks: string[];
  nacks: string[];
  close(): Promise<void>;
}> {
  const frame = (sub: string, id: string, headers: Record<string, string>, body: string) =>
    `MESSAGE\ndestination:/queue/x\nsubscription:${sub}\nmessage-id:${id}\nack:${id}\n${Object.entries(headers)
      .map(([k, v]) => `${k}:${v}\n`)
      .join('')}content-length:${body.length}\n\n${body}\0`;
  let connections = 0;
  const acks: string[] = [];
  const nacks: string[] = [];
  const server = net.createServer((socket) => {
    connections++;
    let seen = '';
    socket.on('error', () => undefined);
    // Frames one by one: CONNECTED to CONNECT, a RECEIPT to every frame asking for one (SUBSCRIBE, DISCONNECT),
    // and the messages once subscribed.
    socket.on('data', (d: Buffer) => {
      seen += d.toString('latin1');
      for (let end = seen.indexOf('\0'); end >= 0; end = seen.indexOf('\0')) {
        const f = seen.slice(0, end).replace(/^\n+/, '');
        seen = seen.slice(end + 1);
        const command = f.slice(0, f.indexOf('\n'));
        if (command === 'CONNECT' || command === 'STOMP') socket.write('CONNECTED\nversion:1.2\nserver:RabbitMQ/3.10.0\n\n\0');
        const receipt = /\nreceipt:([^\n]+)/.exec(f);
        if (receipt !== null) socket.write(`RECEIPT\nreceipt-id:${receipt[1]}\n\n\0`);
        const id = /\nid:([^\n]+)/.exec(f)?.[1] ?? '';
        if (command === 'ACK') acks.push(id);
        if (command === 'NACK') nacks.push(id);
        if (command === 'SUBSCRIBE') {
          socket.write(frame(id, 'm1', { big: long }, 'one') + frame(id, 'm2', many, 'two') + frame(id, 'm3', {}, 'three'));
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    acks,
    nacks,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

const receive = (port: number, ...more: string[]) =>
  start(
    [
      '--incoming-broker-uri',
      `stomp://127.0.0.1:${port}`,
      '--subscribe',
      'destination=/queue/x',
      '--outgoing-queue',
      `path=${join(dir.path, 'b')} type=DQS`,
      '--count',
      '3',
      '--reliable',
      ...more,
    ],
    dir.path,
  ).done;

const byBody = (a: { body: Buffer | string }, b: { body: Buffer | string }) => a.body.toString().localeCompare(b.body.toString());

test('stompclt - a message with a 4 KiB header and one with 100 headers go broker -> queue intact', async () => {
  const p = await peer();
  try {
    const r = await receive(p.port);
    expect(r.err).not.toMatch(/lost|fatal|error/i);
    expect(r.status).toBe(0);
    expect(p.connections()).toBe(1);
    const got = (await readAll(join(dir.path, 'b'), 'DQS')).sort(byBody);
    expect(got.map((m) => m.body.toString())).toEqual(['one', 'three', 'two']);
    expect(got[0]?.header.big).toBe(long);
    expect(Object.keys(got[2]?.header ?? {}).filter((k) => /^h\d+$/.test(k))).toHaveLength(100);
    expect(p.acks.sort()).toEqual(['m1', 'm2', 'm3']);
  } finally {
    await p.close();
  }
});

test('stompclt - over --max-header-length or --max-headers: dead-lettered whole with the reason and acked, on the same connection', async () => {
  const p = await peer();
  try {
    const r = await receive(
      p.port,
      '--max-header-length',
      '1024',
      '--max-headers',
      '50',
      '--dead-letter-queue',
      `path=${join(dir.path, 'dl')} type=DQS`,
    );
    expect(r.status).toBe(0);
    expect(r.err).not.toMatch(/lost|pipeline error/i);
    expect(p.connections()).toBe(1);
    expect(p.acks.sort()).toEqual(['m1', 'm2', 'm3']);
    expect(p.nacks).toEqual([]);
    expect((await readAll(join(dir.path, 'b'), 'DQS')).map((m) => m.body.toString())).toEqual(['three']);
    const dead = (await readAll(join(dir.path, 'dl'), 'DQS')).sort(byBody);
    expect(dead.map((m) => m.body.toString())).toEqual(['one', 'two']);
    expect(dead[0]?.header.big).toBe(long);
    expect(dead[0]?.header['x-msgbricks-dead-letter-reason']).toBe(
      'refused: over the frame limits: a header line of 4100 bytes (big; more than --max-header-length 1024)',
    );
    expect(Object.keys(dead[1]?.header ?? {}).filter((k) => /^h\d+$/.test(k))).toHaveLength(100);
    expect(dead[1]?.header['x-msgbricks-dead-letter-reason']).toMatch(
      /^refused: over the frame limits: 105 headers \(more than --max-headers 50\)$/,
    );
    expect(r.err).toMatch(/transfer finished received=3 sent=1 dropped=0 deadLettered=2 released=0 /);
  } finally {
    await p.close();
  }
});

test('stompclt - over the limits without a dead-letter spool: NACKed (the broker keeps it), the others go', async () => {
  const p = await peer();
  try {
    const r = await receive(p.port, '--max-header-length', '1024', '--max-headers', '50');
    expect(r.status).toBe(0);
    expect(p.connections()).toBe(1);
    expect(p.nacks.sort()).toEqual(['m1', 'm2']);
    expect(p.acks).toEqual(['m3']);
    expect((await readAll(join(dir.path, 'b'), 'DQS')).map((m) => m.body.toString())).toEqual(['three']);
    expect(r.err).toMatch(/message released: it will be delivered again.*over the frame limits/);
  } finally {
    await p.close();
  }
});
