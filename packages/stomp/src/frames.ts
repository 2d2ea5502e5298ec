import { EventEmitter } from 'node:events';
import type { Writable } from 'node:stream';
import { corkPerTick } from '@msgbricks/agent';

/**
 * The outgoing side of a stompit `Client` (its `outgoingFrameStream` option), in place of stompit's
 * OutgoingFrameStream.
 *
 * Why: stompit writes a frame as three socket writes (headers, body, NUL) and starts each only after the
 * previous one's callback, so a frame takes three system calls spread over three ticks, and the broker reads
 * three TCP segments. Here a frame is encoded into one buffer when it ends, and the socket is corked until the
 * end of the tick, so the frames a burst of sends makes (the pipeline sends what its window allows in one go)
 * leave in one writev. Frames still leave in the order they were created, and the encoding is stompit's: no
 * escaping before CONNECTED (STOMP 1.0, and CONNECT must not be escaped), then the negotiated version's.
 */

type Encoder = (value: string) => string;

const ENCODERS: Record<string, Encoder> = {
  '1.0': (v) => v,
  '1.1': (v) => v.replace(/[\\\n:]/g, (c) => (c === '\\' ? '\\\\' : c === '\n' ? '\\n' : '\\c')),
  '1.2': (v) => v.replace(/[\\\r\n:]/g, (c) => (c === '\\' ? '\\\\' : c === '\r' ? '\\r' : c === '\n' ? '\\n' : '\\c')),
};

const NEEDS_ESCAPE = /[\\\r\n:]/;
const FRAME_END = Buffer.from('\0\n', 'latin1');

type Callback = (err?: Error | null) => void;

/** One frame being written: a writable in the shape stompit's Client and Socket use (write, end, 'error'). */
export class OutgoingFrame extends EventEmitter {
  private readonly chunks: Buffer[] = [];
  private readonly callbacks: Callback[] = [];
  ended = false;

  constructor(
    private readonly writer: FrameWriter,
    readonly command: string,
    readonly headers: Record<string, unknown>,
  ) {
    super();
  }

  write(chunk: Buffer | string, encoding?: BufferEncoding | Callback, cb?: Callback): boolean {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (this.ended) {
      const err = new Error('write after end');
      process.nextTick(() => {
        cb?.(err);
        this.emit('error', err);
      });
      return false;
    }
    this.chunks.push(typeof chunk === 'string' ? Buffer.from(chunk, encoding ?? 'utf8') : chunk);
    if (cb) this.callbacks.push(cb);
    return true;
  }

  end(chunk?: Buffer | string | Callback | null, encoding?: BufferEncoding | Callback, cb?: Callback): this {
    if (typeof chunk === 'function') {
      cb = chunk;
      chunk = undefined;
    } else if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (chunk !== undefined && chunk !== null) this.write(chunk, encoding as BufferEncoding | undefined);
    if (cb) this.callbacks.push(cb);
    this.ended = true;
    this.writer.flush();
    return this;
  }

  /** The whole frame: command, headers, blank line, body, NUL and an EOL, as one buffer. */
  encode(encoder: Encoder): Buffer {
    let head = `${this.command}\n`;
    for (const key in this.headers) {
      const value = this.headers[key];
      if (value === null || value === undefined) continue;
      const k = NEEDS_ESCAPE.test(key) ? encoder(key) : key;
      const s = `${value}`;
      head += `${k}:${NEEDS_ESCAPE.test(s) ? encoder(s) : s}\n`;
    }
    head += '\n';
    const body = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    const headLength = Buffer.byteLength(head);
    const out = Buffer.allocUnsafe(headLength + body.length + FRAME_END.length);
    out.write(head, 0, 'utf8');
    body.copy(out, headLength);
    FRAME_END.copy(out, headLength + body.length);
    return out;
  }

  /** Written (err null) or not (err): the callbacks, and an 'error' event on failure as stompit's frames do. */
  done(err: Error | null): void {
    for (const cb of this.callbacks) cb(err);
    if (err) this.emit('error', err);
  }
}

export class FrameWriter {
  /** Frames created and not yet written: only the first ones that have ended can go (creation order is kept). */
  private readonly queue: OutgoingFrame[] = [];
  private encoder: Encoder = ENCODERS['1.0'] as Encoder;
  private finished = false;

  constructor(private readonly socket: Writable) {
    corkPerTick(socket);
    const finish = () => this.finish();
    socket.on('error', finish);
    socket.on('close', finish);
    socket.on('finish', finish);
  }

  setVersion(version: string): boolean {
    const encoder = ENCODERS[version];
    if (encoder === undefined) return false;
    this.encoder = encoder;
    return true;
  }

  frame(command: string, headers: Record<string, unknown> | undefined): OutgoingFrame {
    const frame = new OutgoingFrame(this, command, headers ?? {});
    this.queue.push(frame);
    return frame;
  }

  /** An EOL as a heart-beat, unless a frame is being written (stompit's rule: it would land inside the frame). */
  heartbeat(): void {
    if (this.queue.length > 0 || this.finished) return;
    this.socket.write('\n');
  }

  finish(): void {
    this.finished = true;
  }

  hasFinished(): boolean {
    return this.finished;
  }

  /** Frames not yet handed to the socket. */
  get pendingFrames(): number {
    return this.queue.length;
  }

  /** Writes the frames at the head of the queue that have ended. */
  flush(): void {
    while (this.queue.length > 0 && (this.queue[0] as OutgoingFrame).ended) {
      const frame = this.queue.shift() as OutgoingFrame;
      if (this.finished) {
        const err = new Error('cannot send frame on closed stream');
        process.nextTick(() => frame.done(err));
        continue;
      }
      this.socket.write(frame.encode(this.encoder), (err) => frame.done(err ?? null));
    }
  }
}
