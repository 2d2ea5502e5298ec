// Frame limits of the STOMP parser (issue 11, item 2): stompit's defaults (a 1024-byte header line, 64 headers)
// refused messages that RabbitMQ and ActiveMQ accept and deliver, and the agent reconnected for ever. A peer sends
// what a broker would deliver: one message with a 4 KiB header, one with 100 headers; both must land intact.
import * as net from 'node:net';
import { join } from 'node:path';
import { readAll, start, useTempDir } from './helpers';

jest.setTimeout(60_000);
const dir = useTempDir();

test('stompclt - a message with a 4 KiB header and one with 100 headers go broker -> queue intact', async () => {
  const long = 'x'.repeat(4096);
  const many: Record<string, string> = {};
  for (let i = 0; i < 100; i++) many[`h${i}`] = `v${i}`;
  const frame = (sub: string, id: string, headers: Record<string, string>, body: string) =>
    `MESSAGE\ndestination:/queue/x\nsubscription:${sub}\nmessage-id:${id}\nack:${id}\n${Object.entries(headers)
      .map(([k, v]) => `${k}:${v}\n`)
      .join('')}content-length:${body.length}\n\n${body}\0`;
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    let seen = '';
    socket.on('error', () => undefined);
    // Frames one by one: CONNECTED to CONNECT, a RECEIPT to every frame asking for one (SUBSCRIBE, DISCONNECT),
    // and the two messages once subscribed.
    socket.on('data', (d: Buffer) => {
      seen += d.toString('latin1');
      for (let end = seen.indexOf('\0'); end >= 0; end = seen.indexOf('\0')) {
        const f = seen.slice(0, end).replace(/^\n+/, '');
        seen = seen.slice(end + 1);
        const command = f.slice(0, f.indexOf('\n'));
        if (command === 'CONNECT' || command === 'STOMP') socket.write('CONNECTED\nversion:1.2\nserver:RabbitMQ/3.10.0\n\n\0');
        const receipt = /\nreceipt:([^\n]+)/.exec(f);
        if (receipt !== null) socket.write(`RECEIPT\nreceipt-id:${receipt[1]}\n\n\0`);
        if (command === 'SUBSCRIBE') {
          const sub = /\nid:([^\n]+)/.exec(f)?.[1] ?? '';
          socket.write(frame(sub, 'm1', { big: long }, 'one') + frame(sub, 'm2', many, 'two'));
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const run = start(
      [
        '--incoming-broker-uri',
        `stomp://127.0.0.1:${port}`,
        '--subscribe',
        'destination=/queue/x',
        '--outgoing-queue',
        `path=${join(dir.path, 'b')} type=DQS`,
        '--count',
        '2',
        '--reliable',
      ],
      dir.path,
    );
    const r = await run.done;
    expect(r.err).not.toMatch(/lost|fatal|error/i);
    expect(r.status).toBe(0);
    expect(connections).toBe(1);
    const got = (await readAll(join(dir.path, 'b'), 'DQS')).sort((a, b) => a.body.toString().localeCompare(b.body.toString()));
    expect(got.map((m) => m.body.toString())).toEqual(['one', 'two']);
    expect(got[0]?.header.big).toBe(long);
    expect(Object.keys(got[1]?.header ?? {}).filter((k) => /^h\d+$/.test(k))).toHaveLength(100);
  } finally {
    await new Promise((r) => server.close(r));
  }
});
