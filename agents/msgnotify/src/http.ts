import * as http from 'node:http';
import * as https from 'node:https';

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Milliseconds for the whole exchange. */
  timeoutMs?: number;
  /** Redirects followed (curl's default in cvmfs_swissknife: 50). */
  maxRedirects?: number;
}

const USER_AGENT = 'msgnotify/0.1.0';

/** Starts a request (http or https by the URL); the body, when any, goes with its Content-Length. */
export function open(url: URL, opts: RequestOptions, onResponse: (res: http.IncomingMessage) => void): http.ClientRequest {
  const body = opts.body === undefined ? undefined : Buffer.from(opts.body);
  const headers: Record<string, string> = { 'User-Agent': USER_AGENT, ...opts.headers };
  if (body !== undefined) headers['Content-Length'] = String(body.length);
  const mod = url.protocol === 'https:' ? https : http;
  const req = mod.request(url, { method: opts.method ?? 'GET', headers }, onResponse);
  req.end(body);
  return req;
}

/** One request, its whole answer read; follows redirects; rejects on a network error or the time-out. */
export async function fetchAll(url: URL, opts: RequestOptions = {}): Promise<Response> {
  let target = url;
  for (let redirects = 0; ; redirects++) {
    const res = await new Promise<Response>((resolve, reject) => {
      const req = open(target, opts, (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, body: Buffer.concat(chunks) }));
        r.on('error', reject);
      });
      req.on('error', reject);
      if (opts.timeoutMs !== undefined) {
        req.setTimeout(opts.timeoutMs, () =>
          req.destroy(new Error(`no answer from ${target.origin} within ${opts.timeoutMs} ms`)),
        );
      }
    });
    const location = res.headers.location;
    if (res.status >= 300 && res.status < 400 && location !== undefined && redirects < (opts.maxRedirects ?? 50)) {
      target = new URL(location, target);
      continue;
    }
    return res;
  }
}
