import { Writable } from 'node:stream';
import { FrameWriter } from '../src/frames';

/** A socket stand-in that records each system-call-sized write: one entry per _write, one per _writev batch. */
function sink(): { socket: Writable; writes: string[][] } {
  const writes: string[][] = [];
  const socket = new Writable({
    write(chunk: Buffer, _enc, cb) {
      writes.push([chunk.toString('latin1')]);
      cb();
    },
    writev(chunks, cb) {
      writes.push(chunks.map((c) => (c.chunk as Buffer).toString('latin1')));
      cb();
    },
  });
  return { socket, writes };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('stomp frames', () => {
  test('stomp frames - a frame is one buffer: command, headers, blank line, body, NUL, EOL', async () => {
    const { socket, writes } = sink();
    const w = new FrameWriter(socket);
    w.frame('SEND', { destination: '/queue/a', 'content-length': 5, skipped: undefined }).end(Buffer.from('hello'));
    await tick();
    expect(writes).toEqual([['SEND\ndestination:/queue/a\ncontent-length:5\n\nhello\0\n']]);
  });

  test('stomp frames - the frames of one tick leave in one writev, in creation order', async () => {
    const { socket, writes } = sink();
    const w = new FrameWriter(socket);
    const first = w.frame('SEND', { n: '1' });
    w.frame('SEND', { n: '2' }).end('b');
    // The second has ended but waits for the first, created before it.
    expect(w.pendingFrames).toBe(2);
    first.write('a');
    first.end();
    w.frame('ACK', { id: '7' }).end();
    expect(w.pendingFrames).toBe(0);
    await tick();
    expect(writes).toEqual([['SEND\nn:1\n\na\0\n', 'SEND\nn:2\n\nb\0\n', 'ACK\nid:7\n\n\0\n']]);
    w.frame('SEND', { n: '3' }).end('c');
    await tick();
    expect(writes).toHaveLength(2);
  });

  test('stomp frames - escaping: none before CONNECTED (1.0), then the negotiated version', async () => {
    const { socket, writes } = sink();
    const w = new FrameWriter(socket);
    const h = { 'a:b': 'x\ny:z\\\r' };
    w.frame('CONNECT', h).end();
    expect(w.setVersion('1.1')).toBe(true);
    w.frame('SEND', h).end();
    w.setVersion('1.2');
    w.frame('SEND', h).end();
    expect(w.setVersion('2.0')).toBe(false);
    await tick();
    expect(writes[0]).toEqual([
      'CONNECT\na:b:x\ny:z\\\r\n\n\0\n',
      'SEND\na\\cb:x\\ny\\cz\\\\\r\n\n\0\n',
      'SEND\na\\cb:x\\ny\\cz\\\\\\r\n\n\0\n',
    ]);
  });

  test('stomp frames - UTF-8 headers and a body written in pieces', async () => {
    const { socket, writes } = sink();
    const w = new FrameWriter(socket);
    const f = w.frame('SEND', { 'x-é': 'ü€' });
    f.write(Buffer.from([0, 255]));
    f.write('é', 'utf8');
    f.end();
    await tick();
    expect(Buffer.from(writes[0]?.[0] ?? '', 'latin1')).toEqual(
      Buffer.concat([Buffer.from('SEND\nx-é:ü€\n\n'), Buffer.from([0, 255]), Buffer.from('é'), Buffer.from('\0\n')]),
    );
  });

  test('stomp frames - callbacks after the write; a heart-beat waits while a frame is unfinished', async () => {
    const { socket, writes } = sink();
    const w = new FrameWriter(socket);
    const f = w.frame('SEND', {});
    w.heartbeat();
    const done = new Promise((resolve) => f.end('x', resolve));
    expect(await done).toBeNull();
    w.heartbeat();
    await tick();
    expect(writes.flat()).toEqual(['SEND\n\nx\0\n', '\n']);
  });

  test('stomp frames - after the socket finished, a frame fails with an error event and its callback', async () => {
    const { socket, writes } = sink();
    const w = new FrameWriter(socket);
    socket.end();
    await tick();
    expect(w.hasFinished()).toBe(true);
    const f = w.frame('SEND', {});
    const events: unknown[] = [];
    f.on('error', (e) => events.push(e));
    const err = await new Promise((resolve) => f.end('x', resolve));
    expect(err).toBeInstanceOf(Error);
    expect(events).toEqual([err]);
    expect(writes).toEqual([]);
    w.heartbeat();
    expect(writes).toEqual([]);
  });
});
