import type { CachedNotification } from './cache';

const sse = new WeakMap<CachedNotification, Buffer>();
const feed = new WeakMap<CachedNotification, Buffer>();
const chunks = new WeakMap<Buffer, Buffer>();
const CRLF = Buffer.from('\r\n');

/**
 * The SSE event of a notification, made once for all subscribers: `id:` is the revision (revisions only grow, so
 * `Last-Event-ID` says exactly what a client has), `data:` the published JSON as the cvmfs gateway sends it.
 */
export function sseFrame(n: CachedNotification): Buffer {
  let f = sse.get(n);
  if (f === undefined) {
    // A published body is JSON, so it has no raw newline that would end the data line early... unless pretty-printed:
    // each line then becomes a `data:` line, which an SSE client joins back with newlines.
    const data = n.body.toString('utf8').replace(/\r\n?/g, '\n').split('\n').join('\ndata: ');
    f = Buffer.from(`id: ${n.revision}\ndata: ${data}\n\n`);
    sse.set(n, f);
  }
  return f;
}

/** What the web page's feed knows of a notification. */
export function summaryOf(n: CachedNotification): {
  repository: string;
  revision: number;
  timestamp: string;
  receivedAt: string;
} {
  return {
    repository: n.repository,
    revision: n.revision,
    timestamp: n.timestamp,
    receivedAt: new Date(n.receivedAt).toISOString(),
  };
}

/** The feed's SSE event (every repository): `event: activity`, the summary as data. */
export function feedFrame(n: CachedNotification): Buffer {
  let f = feed.get(n);
  if (f === undefined) {
    f = Buffer.from(`event: activity\ndata: ${JSON.stringify(summaryOf(n))}\n\n`);
    feed.set(n, f);
  }
  return f;
}

/**
 * `frame` as one HTTP/1.1 chunk (hex length, CRLF, the bytes, CRLF: what node:http's `res.write` sends on a chunked
 * response), made once per frame. Writing it straight to the socket is one `write` per subscriber instead of
 * `res.write`'s four pieces, cork and uncork on the next tick; the fan-out's cost per delivery is mostly that.
 */
export function httpChunk(frame: Buffer): Buffer {
  let c = chunks.get(frame);
  if (c === undefined) {
    c = Buffer.concat([Buffer.from(`${frame.length.toString(16)}\r\n`, 'latin1'), frame, CRLF]);
    chunks.set(frame, c);
  }
  return c;
}
