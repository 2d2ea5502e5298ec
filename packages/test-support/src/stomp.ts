import * as net from 'node:net';
import * as tls from 'node:tls';
import { HOST } from './util';

// A minimal STOMP 1.2 client over a raw socket: enough for the brokers' readiness probes and for tests that must not
// depend on the code they test.

export interface StompFrame {
  command: string;
  headers: Record<string, string>;
  body: string;
}

export type StompSend = (command: string, headers?: Record<string, string | number>, body?: string) => void;

export interface StompConnection {
  /** The CONNECTED frame. */
  connected: StompFrame;
  /** Writes one frame. */
  send: StompSend;
  /** The next frame received (MESSAGE, RECEIPT, ERROR...). */
  next(timeoutMs?: number): Promise<StompFrame>;
  /** DISCONNECT (with a receipt), then closes the socket. */
  close(): Promise<void>;
  socket: net.Socket;
}

export interface StompConnectOptions {
  /** Default 127.0.0.1. */
  host?: string;
  port: number;
  login?: string;
  passcode?: string;
  /** The CONNECT `host` header (RabbitMQ's virtual host); default `/`. */
  vhost?: string;
  /** Connect with TLS using these options. */
  tls?: tls.ConnectionOptions | undefined;
  /** Default 10 s. */
  timeoutMs?: number;
}

const escapeHeader = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/:/g, '\\c').replace(/\r/g, '\\r');
const unescapes: Record<string, string> = { n: '\n', c: ':', r: '\r', '\\': '\\' };
const unescapeHeader = (v: string) => v.replace(/\\(.)/g, (_m, c: string) => unescapes[c] ?? c);

interface Waiter {
  resolve: (f: StompFrame) => void;
  reject: (e: Error) => void;
}

/** Connects, sends CONNECT and resolves once CONNECTED arrives; rejects on ERROR, close or timeout. */
export function stompConnect(opts: StompConnectOptions): Promise<StompConnection> {
  const host = opts.host ?? HOST;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const socket: net.Socket = opts.tls
      ? tls.connect({ host, port: opts.port, servername: 'localhost', ...opts.tls })
      : net.connect({ host, port: opts.port });
    let buf = Buffer.alloc(0);
    const frames: StompFrame[] = [];
    const waiters: Waiter[] = [];
    let closedWith: Error | undefined;
    let settled = false;
    const timer = setTimeout(
      () => fail(new Error(`STOMP CONNECT to ${host}:${opts.port}: no CONNECTED within ${timeoutMs} ms`)),
      timeoutMs,
    );

    function fail(err: Error): void {
      closedWith = closedWith ?? err;
      for (const w of waiters.splice(0)) w.reject(err);
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      }
    }

    function deliver(frame: StompFrame): void {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        if (frame.command === 'CONNECTED') resolve(connection(frame));
        else {
          socket.destroy();
          reject(new Error(`STOMP CONNECT refused: ${frame.command} ${frame.headers.message ?? ''} ${frame.body}`.trim()));
        }
        return;
      }
      const w = waiters.shift();
      if (w) w.resolve(frame);
      else frames.push(frame);
    }

    function parse(): void {
      for (;;) {
        let start = 0;
        while (start < buf.length && (buf[start] === 0x0a || buf[start] === 0x0d)) start++;
        buf = buf.subarray(start);
        const headEnd = buf.indexOf('\n\n');
        if (headEnd < 0) return;
        const lines = buf.subarray(0, headEnd).toString('utf8').replace(/\r/g, '').split('\n');
        const command = lines[0] ?? '';
        const headers: Record<string, string> = {};
        for (const line of lines.slice(1)) {
          const i = line.indexOf(':');
          const k = unescapeHeader(line.slice(0, i));
          if (!(k in headers)) headers[k] = unescapeHeader(line.slice(i + 1));
        }
        const bodyStart = headEnd + 2;
        let bodyEnd: number;
        if (headers['content-length'] !== undefined) {
          bodyEnd = bodyStart + Number(headers['content-length']);
          if (buf.length < bodyEnd + 1) return;
        } else {
          bodyEnd = buf.indexOf(0, bodyStart);
          if (bodyEnd < 0) return;
        }
        const body = buf.subarray(bodyStart, bodyEnd).toString('utf8');
        buf = buf.subarray(bodyEnd + 1);
        deliver({ command, headers, body });
      }
    }

    const send: StompSend = (command, headers = {}, body = '') => {
      const head = Object.entries(headers)
        .map(([k, v]) => (command === 'CONNECT' ? `${k}:${v}` : `${escapeHeader(k)}:${escapeHeader(String(v))}`))
        .join('\n');
      const len = command === 'SEND' ? `content-length:${Buffer.byteLength(body)}\n` : '';
      socket.write(`${command}\n${len}${head}${head ? '\n' : ''}\n${body}\0`);
    };

    function connection(connected: StompFrame): StompConnection {
      return {
        connected,
        socket,
        send,
        next(ms = 10_000) {
          const f = frames.shift();
          if (f) return Promise.resolve(f);
          if (closedWith) return Promise.reject(closedWith);
          return new Promise((res, rej) => {
            const w: Waiter = {
              resolve: (frame) => {
                clearTimeout(t);
                res(frame);
              },
              reject: (e) => {
                clearTimeout(t);
                rej(e);
              },
            };
            const t = setTimeout(() => {
              waiters.splice(waiters.indexOf(w), 1);
              rej(new Error(`no STOMP frame within ${ms} ms`));
            }, ms);
            waiters.push(w);
          });
        },
        async close() {
          if (!closedWith) {
            try {
              send('DISCONNECT', { receipt: 'bye' });
              await this.next(3000);
            } catch {
              // the broker may close first
            }
          }
          socket.destroy();
        },
      };
    }

    socket.on(opts.tls ? 'secureConnect' : 'connect', () => {
      send('CONNECT', {
        'accept-version': '1.2',
        host: opts.vhost ?? '/',
        ...(opts.login !== undefined ? { login: opts.login } : {}),
        ...(opts.passcode !== undefined ? { passcode: opts.passcode } : {}),
        'heart-beat': '0,0',
      });
    });
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      try {
        parse();
      } catch (e) {
        fail(e as Error);
      }
    });
    socket.on('error', (e) => fail(e));
    socket.on('close', () => fail(new Error('STOMP connection closed')));
  });
}
