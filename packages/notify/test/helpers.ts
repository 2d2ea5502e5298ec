// Clients for the notify suites: a publisher, an SSE subscriber (GET with a body, as the cvmfs client sends it, or
// with ?repository=) and cvmfs-style notification bodies.
import * as http from 'node:http';
import { formatManifest, type SseEvent, SseParser } from '@msgbricks/notify';

/** A publish body for `repository` at `revision`, as cvmfs_swissknife notify -p builds it. */
export function body(repository: string, revision: number, extra: Record<string, unknown> = {}): string {
  const manifest = formatManifest({
    C: 'a'.repeat(40),
    B: 4096,
    R: 'd41d8cd98f00b204e9800998ecf8427e',
    D: 240,
    S: revision,
    N: repository,
    T: 1700000000 + revision,
  });
  return JSON.stringify({
    version: 1,
    timestamp: `Mon Jan 1 00:00:${String(revision % 60).padStart(2, '0')} 2024`,
    type: 'activity',
    repository,
    manifest: manifest.toString('base64'),
    ...extra,
  });
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** One request; `chunks` sends the body in several writes, a tick apart. */
export function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; chunks?: number } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(parts).toString() }));
    });
    req.on('error', reject);
    const data = opts.body === undefined ? undefined : Buffer.from(opts.body);
    if (data === undefined) return void req.end();
    const n = opts.chunks ?? 1;
    if (n <= 1) return void req.end(data);
    req.flushHeaders();
    const size = Math.ceil(data.length / n);
    let i = 0;
    const next = () => {
      if (i >= data.length) return void req.end();
      req.write(data.subarray(i, i + size));
      i += size;
      setTimeout(next, 5);
    };
    next();
  });
}

export function publish(api: string, payload: string, token = 'secret-token', path = '/notifications/publish'): Promise<Answer> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (token !== '') headers.Authorization = `Bearer ${token}`;
  return request(`${api}${path}`, { method: 'POST', headers, body: payload });
}

/** An open SSE subscription: the events so far, and a wait for more. */
export class Subscriber {
  readonly events: SseEvent[] = [];
  status = 0;
  headers: http.IncomingHttpHeaders = {};
  readonly parser = new SseParser();
  private readonly req: http.ClientRequest;
  private waiters: (() => void)[] = [];
  closed = false;

  constructor(api: string, repository: string, opts: { query?: boolean; lastEventId?: string; path?: string } = {}) {
    const path = opts.path ?? '/notifications/subscribe';
    const url = opts.query ? `${api}${path}?repository=${encodeURIComponent(repository)}` : `${api}${path}`;
    const headers: Record<string, string> = { Accept: 'text/event-stream' };
    if (opts.lastEventId !== undefined) headers['Last-Event-ID'] = opts.lastEventId;
    // As curl sends it (the cvmfs client): Node's client would send a GET body with no length at all.
    const subscription = JSON.stringify({ version: 1, repository });
    if (!opts.query) headers['Content-Length'] = String(Buffer.byteLength(subscription));
    this.req = http.request(url, { method: 'GET', headers }, (res) => {
      this.status = res.statusCode ?? 0;
      if (this.status !== 200) this.closed = true;
      this.headers = res.headers;
      res.on('data', (c: Buffer) => {
        this.events.push(...this.parser.push(c));
        this.wake();
      });
      res.on('close', () => {
        this.closed = true;
        this.wake();
      });
      this.wake();
    });
    this.req.on('error', () => {
      this.closed = true;
      this.wake();
    });
    if (opts.query) this.req.end();
    else this.req.end(subscription);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits until `pred` holds (checked on every event), at most `ms`. */
  async until(pred: () => boolean, ms = 20_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; revisions: ${this.revisions().join(' ')}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  revisions(): number[] {
    return this.events.map((e) => Number(e.id));
  }

  close(): void {
    this.req.destroy();
  }
}
