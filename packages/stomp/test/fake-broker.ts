/**
 * A scripted STOMP 1.2 broker on a loopback port, for unit tests that need to see or shape the frames exactly (receipts
 * held back, a broker that stops reading...). It answers CONNECT with CONNECTED, a frame carrying `receipt` with a
 * RECEIPT (unless `holdReceipt` says not to) and DISCONNECT with its RECEIPT, and records every frame it got.
 */
import * as net from 'node:net';

export interface FakeFrame {
  readonly command: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  /** Which connection it came on: 1, 2... */
  readonly session: number;
}

export interface FakeBrokerOptions {
  /** Return true to leave the frame without its RECEIPT. */
  holdReceipt?: (frame: FakeFrame) => boolean;
  /** Return true to drop the connection on this frame, without an ERROR or a RECEIPT (as ActiveMQ on a bad header). */
  dropOn?: (frame: FakeFrame) => boolean;
  /**
   * After each drop of dropOn, close the next this many connections at once, before CONNECT (a broker restarting:
   * the client's reconnection needs more than one attempt). They are not counted as sessions.
   */
  downAfterDrop?: number;
  /** Stop reading from clients once CONNECTED is sent (their writes pile up). */
  stopReading?: boolean;
  /** Close each connection this many milliseconds after its CONNECTED (a broker that accepts, then changes its mind). */
  closeAfterConnectedMs?: number;
}

function unescapeHeader(s: string): string {
  return s.replace(/\\([\\cnr])/g, (_, c: string) => ({ '\\': '\\', c: ':', n: '\n', r: '\r' })[c] as string);
}

export class FakeBroker {
  readonly frames: FakeFrame[] = [];
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private sessions = 0;
  /** Connections still to refuse (downAfterDrop). */
  private down = 0;
  port = 0;

  constructor(private readonly options: FakeBrokerOptions = {}) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  get uri(): string {
    return `tcp://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  commands(): string[] {
    return this.frames.map((f) => f.command);
  }

  private accept(socket: net.Socket): void {
    if (this.down > 0) {
      this.down--;
      socket.destroy();
      return;
    }
    const session = ++this.sessions;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    let data = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      for (;;) {
        // Heart-beats and frame separators.
        let start = 0;
        while (start < data.length && (data[start] === 10 || data[start] === 13)) start++;
        data = data.subarray(start);
        const end = data.indexOf('\n\n');
        if (end < 0) return;
        const lines = data.subarray(0, end).toString('utf8').split('\n');
        const command = lines.shift() ?? '';
        const headers: Record<string, string> = {};
        for (const line of lines) {
          const colon = line.indexOf(':');
          const key = unescapeHeader(line.slice(0, colon));
          if (!(key in headers)) headers[key] = unescapeHeader(line.slice(colon + 1));
        }
        const length = headers['content-length'];
        const bodyEnd = length === undefined ? data.indexOf(0, end + 2) : end + 2 + Number(length);
        if (bodyEnd < 0 || data.length < bodyEnd + 1) return;
        const frame = { command, headers, body: Buffer.from(data.subarray(end + 2, bodyEnd)), session };
        data = data.subarray(bodyEnd + 1);
        this.frames.push(frame);
        if (this.options.dropOn?.(frame)) {
          this.down = this.options.downAfterDrop ?? 0;
          socket.destroy();
          return;
        }
        this.answer(socket, frame);
      }
    });
  }

  private answer(socket: net.Socket, frame: FakeFrame): void {
    if (frame.command === 'CONNECT') {
      socket.write(`CONNECTED\nversion:1.2\nserver:FakeMQ/1.0\nsession:fake-${frame.session}\nheart-beat:0,0\n\n\0`);
      if (this.options.stopReading) socket.pause();
      const ms = this.options.closeAfterConnectedMs;
      if (ms !== undefined) setTimeout(() => socket.destroy(), ms);
      return;
    }
    const receipt = frame.headers.receipt;
    if (receipt !== undefined && !this.options.holdReceipt?.(frame)) socket.write(`RECEIPT\nreceipt-id:${receipt}\n\n\0`);
    if (frame.command === 'DISCONNECT') socket.end();
  }
}
