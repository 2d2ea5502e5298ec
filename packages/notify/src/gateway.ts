import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { errorOf } from '@msgbricks/errors';
import { type WebSocket, WebSocketServer } from 'ws';
import { Authorizer, type PublishPolicy, RateLimiter } from './auth';
import type { NotifyBackend } from './broker';
import { type CachedNotification, LastValueCache, storeReceived } from './cache';
import { expandServerUrl } from './cvmfs-config';
import { BrokerUnavailableError, InvalidMessageError, RepositoryFetchError } from './errors';
import { feedFrame, httpChunk, sseFrame, summaryOf } from './frames';
import { EVERY_REPOSITORY, Hub, type HubOptions, type Sink } from './hub';
import { parseNotification, parseSubscription, REPOSITORY_RE } from './message';
import { PAGE_HTML } from './page';
import { SignatureError } from './signature';
import { ManifestVerifier } from './verifier';

export interface GatewayOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 4929 (the cvmfs gateway's); 0 for any free port. */
  port?: number;
  /** HTTPS with this certificate and key (PEM). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /**
   * The last-value cache's dirq spool. Without it the cache is in memory only: a cluster worker's, fed through its
   * backend (a RelayBackend) by the primary, which keeps the spool.
   */
  cacheDir?: string;
  backend: NotifyBackend;
  /** Who may publish where (default: nobody). */
  publish?: PublishPolicy;
  /**
   * When set, subscribing (SSE, WebSocket, the feed, the repository list) needs one of these bearer tokens: in the
   * Authorization header, or as `?token=` (what an EventSource, which cannot set headers, can send).
   */
  subscribeTokens?: readonly string[];
  /**
   * Signature checks of publishes (default: none, hash lines only), per repository or `*`: the master keys, and
   * where the repository's whitelist and certificate are (http(s) URLs or directories, tried in order; `@fqrn@` and
   * `@org@` replaced, as in CVMFS_SERVER_URL). A manifest that does not verify is refused with 400.
   */
  verify?: Readonly<Record<string, VerifySpec>>;
  /** Per publisher (default 10/s, bursts of 20; rate 0: no limit). */
  rateLimit?: { rate: number; burst: number };
  /** Largest publish body (default 1 MiB) and subscription body (64 KiB). */
  maxBodyBytes?: number;
  /** Most subscribers at once (default 100000). */
  maxSubscribers?: number;
  /** SSE heartbeat comment interval (default 15 s). */
  heartbeatMs?: number;
  /** SSE `retry:` advice (default 3 s). */
  retryMs?: number;
  hub?: HubOptions;
  /**
   * A cluster worker's: the figures of the whole cluster, given this worker's own, for /metrics and /healthz
   * (RelayBackend.clusterStats). Alone, a gateway reports its own.
   */
  clusterStats?: (own: GatewayStats) => Promise<GatewayStats>;
  onEvent?: (event: GatewayEvent) => void;
}

/** One repository's (or `*`'s) signature check: see GatewayOptions.verify. */
export interface VerifySpec {
  masterKeys: readonly (string | Buffer)[];
  locations: readonly string[];
}

/** What /metrics and /healthz report: one gateway's figures, or a cluster's added up (sumStats). */
export interface GatewayStats {
  subscribers: number;
  /** Publish requests by outcome. */
  publishes: Record<string, number>;
  /** Notifications from the broker by outcome. */
  received: Record<string, number>;
  deliveries: number;
  coalesced: number;
  dropped: number;
  brokerConnected: boolean;
  cachedRepositories: number;
  /** Worker processes whose figures these are (1 without a cluster). */
  workers: number;
}

export type GatewayEvent =
  | { type: 'listening'; url: string }
  | { type: 'publish'; repository: string; revision: number; publisher: string }
  | { type: 'refused'; status: number; reason: string; detail?: string }
  | { type: 'received'; repository: string; revision: number; outcome: string }
  | { type: 'invalid-from-broker'; error: Error }
  | { type: 'error'; error: Error };

/** Counters for /metrics. */
interface Counters {
  publishes: Record<string, number>;
  received: Record<string, number>;
}

const API = '/api/v1';
const PUBLISH_PATHS = new Set([`${API}/notifications/publish`, `${API}/publish`]);
const SSE_HEADERS = {
  'Content-Type': 'text/event-stream',
  'Cache-Control': 'no-cache',
  Connection: 'keep-alive',
  // Proxies that buffer (nginx) would hold the events back.
  'X-Accel-Buffering': 'no',
};

const HEARTBEAT = Buffer.from(':\n\n');

class BodyTooLargeError extends Error {}

/**
 * Writes an SSE frame. Once node:http has handed the socket all it had (the headers, the retry advice) and the body
 * is chunked, the frame goes straight to the socket as one pre-framed chunk, made once per notification: the same
 * bytes as `res.write`, in one write instead of four and without its cork, uncork and next tick per subscriber
 * (docs/benchmarks.md, notify). Otherwise (a HEAD, an HTTP/1.0 client, output still queued in the response)
 * `res.write` keeps the order and the framing.
 */
function writeSse(res: http.ServerResponse, frame: Buffer): void {
  const socket = res.socket;
  // RACE: the peer may have gone since the sink was added; a write to a destroyed socket only fails through the
  // socket's own error path (node:http handles it), and the response's `close` takes the sink out of the hub.
  if (socket !== null && res.chunkedEncoding && res.writableLength === socket.writableLength) socket.write(httpChunk(frame));
  else res.write(frame);
}

/** An SSE response as a hub subscriber: no closures of its own, the frame made once per notification. */
class SseSink implements Sink {
  constructor(
    private readonly res: http.ServerResponse,
    private readonly frame: (n: CachedNotification) => Buffer,
  ) {}

  buffered(): number {
    return this.res.writableLength;
  }

  write(n: CachedNotification): void {
    writeSse(this.res, this.frame(n));
  }

  kill(): void {
    this.res.destroy();
  }
}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new BodyTooLargeError(`the body is larger than ${limit} bytes`));
        req.pause();
        return;
      }
      // In arrival order (cvmfs-notify put each chunk in front of the others).
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function json(res: http.ServerResponse, status: number, value: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function refuse(res: http.ServerResponse, status: number, reason: string, headers: http.OutgoingHttpHeaders = {}): void {
  json(res, status, { status: 'error', reason }, headers);
}

/** The Prometheus text exposition of `stats`. */
export function metricsText(stats: GatewayStats): string {
  const lines: string[] = [];
  const metric = (name: string, type: string, help: string, samples: [string, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) lines.push(`${name}${labels} ${v}`);
  };
  const labelled = (label: string, m: Record<string, number>): [string, number][] =>
    Object.entries(m).map(([k, v]) => [`{${label}="${k}"}`, v]);
  metric('msgnotify_subscribers', 'gauge', 'Subscriptions now open.', [['', stats.subscribers]]);
  metric('msgnotify_publishes_total', 'counter', 'Publish requests, by outcome.', labelled('outcome', stats.publishes));
  metric(
    'msgnotify_received_total',
    'counter',
    'Notifications from the broker, by outcome.',
    labelled('outcome', stats.received),
  );
  metric('msgnotify_deliveries_total', 'counter', 'Notifications written to subscribers.', [['', stats.deliveries]]);
  metric('msgnotify_coalesced_total', 'counter', 'Notifications a slow subscriber skipped for a newer revision.', [
    ['', stats.coalesced],
  ]);
  metric('msgnotify_dropped_subscribers_total', 'counter', 'Subscribers disconnected for staying congested.', [
    ['', stats.dropped],
  ]);
  metric('msgnotify_broker_connected', 'gauge', '1 when the broker session is up.', [['', stats.brokerConnected ? 1 : 0]]);
  metric('msgnotify_cached_repositories', 'gauge', 'Repositories in the last-value cache.', [['', stats.cachedRepositories]]);
  metric('msgnotify_workers', 'gauge', 'Worker processes counted in these figures.', [['', stats.workers]]);
  return `${lines.join('\n')}\n`;
}

/**
 * The notify gateway: the cvmfs gateway's API (publish, SSE subscribe) and cvmfs-notify's (publish, WebSocket
 * subscribe), joined to other nodes through a broker (NotifyBackend), with a persistent last-value cache, SSE
 * resume by revision, heartbeats, bounded per-subscriber buffers, publish credentials, /healthz, /metrics and a page.
 */
export class Gateway {
  readonly hub: Hub;
  private readonly server: http.Server;
  private readonly wss: WebSocketServer;
  private readonly auth: Authorizer;
  private readonly limiter: RateLimiter;
  private readonly sse = new Set<http.ServerResponse>();
  private readonly heartbeat: NodeJS.Timeout;
  private readonly counters: Counters = { publishes: {}, received: {} };
  private readonly startedAt = Date.now();
  /** Per repository, made on its first publish; each keeps the certificates it verified. */
  private readonly verifiers = new Map<string, ManifestVerifier>();
  private closed = false;

  private constructor(
    private readonly options: GatewayOptions,
    readonly cache: LastValueCache,
  ) {
    this.hub = new Hub(options.hub);
    this.auth = new Authorizer(options.publish ?? {});
    this.limiter = new RateLimiter(options.rateLimit?.rate ?? 10, options.rateLimit?.burst ?? 20);
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.route(req, res).catch((err) => {
        this.emit({ type: 'error', error: errorOf(err) });
        if (!res.headersSent) refuse(res, 500, 'internal error');
        else res.destroy();
      });
    };
    this.server = options.tls
      ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, handler)
      : http.createServer(handler);
    // SSE streams live for hours; the request itself is read at once.
    this.server.requestTimeout = 60_000;
    this.server.keepAliveTimeout = 300_000;
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: 64 * 1024,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has('json') ? 'json' : false),
    });
    this.server.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
    this.heartbeat = setInterval(() => this.beat(), options.heartbeatMs ?? 15_000);
    this.heartbeat.unref();
  }

  /** Opens the cache, starts consuming from the broker and listens. */
  static async start(options: GatewayOptions): Promise<Gateway> {
    const cache = options.cacheDir === undefined ? LastValueCache.inMemory() : await LastValueCache.open(options.cacheDir);
    const gw = new Gateway(options, cache);
    try {
      await options.backend.start((body) => gw.received(body));
      await new Promise<void>((resolve, reject) => {
        gw.server.once('error', reject);
        gw.server.listen(options.port ?? 4929, options.host ?? '127.0.0.1', () => {
          gw.server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      // A port taken (or a backend that cannot start) must not leave the broker session reconnecting and the
      // heartbeat timer running: the command reported the failure and would otherwise never exit.
      await gw.close();
      throw err;
    }
    gw.emit({ type: 'listening', url: gw.url });
    return gw;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** The API root, e.g. http://127.0.0.1:4929/api/v1 (what `msgnotify -u` and CVMFS_NOTIFICATION_SERVER take). */
  get url(): string {
    const a = this.server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `${this.options.tls ? 'https' : 'http'}://${host}:${a.port}${API}`;
  }

  private emit(event: GatewayEvent): void {
    this.options.onEvent?.(event);
  }

  private count(map: Record<string, number>, key: string): void {
    map[key] = (map[key] ?? 0) + 1;
  }

  /** A message from the broker: stored, then fanned out; resolved once on disk (the broker's ack waits for it). */
  private async received(body: Buffer): Promise<void> {
    const entry = await storeReceived(this.cache, body, this.counters.received, (e) => this.emit(e));
    if (entry !== undefined) this.hub.publish(entry);
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://gateway');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (PUBLISH_PATHS.has(path)) {
      if (method !== 'POST') return refuse(res, 405, 'method not allowed', { Allow: 'POST' });
      return this.publish(req, res);
    }
    if (path === `${API}/notifications/subscribe`) {
      if (method !== 'GET') return refuse(res, 405, 'method not allowed', { Allow: 'GET' });
      return this.subscribeSse(req, res, url);
    }
    if (path === `${API}/subscribe`) {
      if (method !== 'GET') return refuse(res, 405, 'method not allowed', { Allow: 'GET' });
      return refuse(res, 426, 'a WebSocket upgrade is required', { Upgrade: 'websocket' });
    }
    if (method !== 'GET' && method !== 'HEAD') return refuse(res, 405, 'method not allowed', { Allow: 'GET' });
    switch (path) {
      case `${API}/notifications/feed`:
        return this.subscribeFeed(req, res, url);
      case `${API}/repositories`:
        // What the feed tells, so the same credential.
        if (!this.mayRead(req, url))
          return this.refused(res, 401, 'a credential is required', undefined, { 'WWW-Authenticate': 'Bearer' });
        return json(res, 200, { repositories: this.cache.entries().map(summaryOf) });
      case '/healthz':
        return this.healthz(res, await this.clusterStats());
      case '/metrics': {
        const text = metricsText(await this.clusterStats());
        res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' });
        return void res.end(text);
      }
      case '/':
      case '/index.html':
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache' });
        return void res.end(PAGE_HTML);
      default:
        return refuse(res, 404, 'not found');
    }
  }

  private async publish(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let body: Buffer;
    try {
      body = await readBody(req, this.options.maxBodyBytes ?? 1024 * 1024);
    } catch (err) {
      if (err instanceof BodyTooLargeError) return this.refused(res, 413, 'body too large', err.message, { Connection: 'close' });
      throw err;
    }
    let n: ReturnType<typeof parseNotification>;
    try {
      n = parseNotification(body);
    } catch (err) {
      if (!(err instanceof InvalidMessageError)) throw err;
      this.count(this.counters.publishes, 'invalid');
      this.emit({ type: 'refused', status: 400, reason: err.reason, detail: err.message });
      return json(res, 400, { status: 'error', reason: err.reason, detail: err.message });
    }
    const verdict = await this.auth.check(n.repository, req.headers.authorization, body);
    if (!verdict.ok) {
      this.count(this.counters.publishes, verdict.status === 401 ? 'unauthenticated' : 'forbidden');
      const h: http.OutgoingHttpHeaders = verdict.status === 401 ? { 'WWW-Authenticate': 'Bearer realm="msgnotify"' } : {};
      return this.refused(res, verdict.status, verdict.reason, undefined, h);
    }
    if (!this.limiter.take(verdict.publisher)) {
      this.count(this.counters.publishes, 'rate-limited');
      return this.refused(res, 429, 'too many publishes', undefined, { 'Retry-After': '1' });
    }
    const cached = this.cache.get(n.repository);
    if (cached !== undefined && cached.revision >= n.revision) {
      // Every node has seen it (this one got it from the broker): an identical republish goes no further.
      this.count(this.counters.publishes, 'duplicate');
      return json(res, 200, { status: 'ok' });
    }
    const verifier = this.verifierFor(n.repository);
    if (verifier !== undefined) {
      try {
        await verifier.verify(n.manifest);
      } catch (err) {
        if (err instanceof SignatureError) {
          this.count(this.counters.publishes, 'bad-signature');
          this.emit({ type: 'refused', status: 400, reason: 'invalid_signature', detail: err.message });
          return json(res, 400, { status: 'error', reason: 'invalid_signature', detail: err.message });
        }
        // Not the publisher's fault: it may try again (msgnotify -p does).
        if (!(err instanceof RepositoryFetchError)) throw err;
        this.count(this.counters.publishes, 'unverifiable');
        return this.refused(res, 503, 'cannot verify now', err.message, { 'Retry-After': '5' });
      }
    }
    try {
      await this.options.backend.publish(n.repository, body);
    } catch (err) {
      if (!(err instanceof BrokerUnavailableError)) throw err;
      this.count(this.counters.publishes, 'broker-unavailable');
      return this.refused(res, 503, 'broker unavailable', err.message, { 'Retry-After': '1' });
    }
    this.count(this.counters.publishes, 'ok');
    this.emit({ type: 'publish', repository: n.repository, revision: n.revision, publisher: verdict.publisher });
    json(res, 200, { status: 'ok' });
  }

  private verifierFor(repository: string): ManifestVerifier | undefined {
    const spec = this.options.verify?.[repository] ?? this.options.verify?.['*'];
    if (spec === undefined) return undefined;
    let verifier = this.verifiers.get(repository);
    if (verifier === undefined) {
      const locations = spec.locations.map((l) => expandServerUrl(l, repository));
      verifier = new ManifestVerifier({ masterKeys: spec.masterKeys, locations });
      // Only publishers that passed the credential check get here: the map grows with their repositories only.
      this.verifiers.set(repository, verifier);
    }
    return verifier;
  }

  private refused(
    res: http.ServerResponse,
    status: number,
    reason: string,
    detail?: string,
    headers: http.OutgoingHttpHeaders = {},
  ): void {
    this.emit({ type: 'refused', status, reason, ...(detail !== undefined ? { detail } : {}) });
    refuse(res, status, reason, headers);
  }

  /** Subscribing is open unless subscribeTokens is set. */
  private mayRead(req: http.IncomingMessage, url: URL): boolean {
    const tokens = this.options.subscribeTokens;
    if (tokens === undefined) return true;
    const m = /^Bearer +(\S+)$/i.exec(req.headers.authorization ?? '');
    const given = m?.[1] ?? url.searchParams.get('token') ?? '';
    return tokens.includes(given);
  }

  private full(res: http.ServerResponse): boolean {
    if (this.hub.subscribers < (this.options.maxSubscribers ?? 100_000)) return false;
    this.refused(res, 503, 'too many subscribers', undefined, { 'Retry-After': '5' });
    return true;
  }

  private async subscribeSse(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    if (!this.mayRead(req, url))
      return this.refused(res, 401, 'a credential is required', undefined, { 'WWW-Authenticate': 'Bearer' });
    let body: Buffer;
    try {
      body = await readBody(req, 64 * 1024);
    } catch (err) {
      if (err instanceof BodyTooLargeError) return this.refused(res, 413, 'body too large', err.message, { Connection: 'close' });
      throw err;
    }
    let repository = url.searchParams.get('repository') ?? '';
    if (body.length > 0) {
      // The cvmfs client's GET carries {"version":1,"repository":...} as its body.
      try {
        repository = parseSubscription(body);
      } catch (err) {
        if (err instanceof InvalidMessageError) return this.refused(res, 400, err.reason);
        throw err;
      }
    }
    if (!REPOSITORY_RE.test(repository)) return this.refused(res, 400, 'invalid subscription message', 'no repository');
    if (this.full(res)) return;
    const last = Number(req.headers['last-event-id'] ?? url.searchParams.get('lastEventId') ?? -1);
    const sink = this.openSse(res, sseFrame);
    this.hub.add(repository, sink);
    res.on('close', () => this.hub.remove(repository, sink));
    const cached = this.cache.get(repository);
    // What a resuming client already has (its Last-Event-ID revision, or a newer one) it does not get again.
    if (cached !== undefined && !(Number.isFinite(last) && last >= cached.revision)) this.hub.deliverTo(sink, cached);
  }

  private subscribeFeed(req: http.IncomingMessage, res: http.ServerResponse, url: URL): void {
    if (!this.mayRead(req, url)) {
      this.refused(res, 401, 'a credential is required', undefined, { 'WWW-Authenticate': 'Bearer' });
      return;
    }
    if (this.full(res)) return;
    const sink = this.openSse(res, feedFrame);
    this.hub.add(EVERY_REPOSITORY, sink);
    res.on('close', () => this.hub.remove(EVERY_REPOSITORY, sink));
  }

  private openSse(res: http.ServerResponse, frame: (n: CachedNotification) => Buffer): Sink {
    res.writeHead(200, SSE_HEADERS);
    res.write(`retry: ${this.options.retryMs ?? 3000}\n\n`);
    res.socket?.setNoDelay(true);
    this.sse.add(res);
    res.on('close', () => this.sse.delete(res));
    return new SseSink(res, frame);
  }

  /** A comment on every idle-looking stream, instead of the cvmfs gateway's 2-hour cut with a bare JSON line. */
  private beat(): void {
    for (const res of this.sse) if (res.writableLength === 0) writeSse(res, HEARTBEAT);
  }

  private upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = new URL(req.url ?? '/', 'http://gateway').pathname;
    const offered = req.headers['sec-websocket-protocol'];
    let refusal: string | undefined;
    if (path !== `${API}/subscribe`) refusal = '404 Not Found';
    // cvmfs-notify: a client that offers subprotocols must offer `json`.
    else if (offered !== undefined && !offered.split(',').some((p) => p.trim() === 'json')) refusal = '400 Bad Request';
    else if (!this.mayRead(req, new URL(req.url ?? '/', 'http://gateway'))) refusal = '401 Unauthorized';
    else if (this.hub.subscribers >= (this.options.maxSubscribers ?? 100_000)) refusal = '503 Service Unavailable';
    if (refusal !== undefined) {
      socket.end(`HTTP/1.1 ${refusal}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.webSocket(ws));
  }

  private webSocket(ws: WebSocket): void {
    const repositories = new Set<string>();
    const sink: Sink = {
      buffered: () => ws.bufferedAmount,
      write: (n) => ws.send(n.body, { binary: true }),
      kill: () => ws.terminate(),
    };
    const error = (reason: string) => ws.send(Buffer.from(JSON.stringify({ status: 'error', reason })), { binary: true });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      // cvmfs-notify handles binary frames only, and crashed on a text frame: here a text frame is answered too.
      let repository: string;
      try {
        repository = parseSubscription(isBinary ? data : Buffer.from(data));
      } catch (err) {
        if (err instanceof InvalidMessageError) return error(err.reason);
        throw err;
      }
      if (repositories.has(repository)) return;
      repositories.add(repository);
      this.hub.add(repository, sink);
      const cached = this.cache.get(repository);
      if (cached !== undefined) this.hub.deliverTo(sink, cached);
    });
    ws.on('close', () => {
      for (const r of repositories) this.hub.remove(r, sink);
    });
    ws.on('error', () => ws.terminate());
  }

  private healthz(res: http.ServerResponse, stats: GatewayStats): void {
    const broker = stats.brokerConnected ? 'connected' : 'disconnected';
    json(res, stats.brokerConnected ? 200 : 503, {
      status: stats.brokerConnected ? 'ok' : 'degraded',
      broker,
      subscribers: stats.subscribers,
      repositories: stats.cachedRepositories,
      ...(stats.workers > 1 ? { workers: stats.workers } : {}),
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
    });
  }

  /** This gateway's own figures. */
  stats(): GatewayStats {
    const s = this.hub.stats;
    return {
      subscribers: this.hub.subscribers,
      publishes: { ...this.counters.publishes },
      received: { ...this.counters.received },
      deliveries: s.deliveries,
      coalesced: s.coalesced,
      dropped: s.dropped,
      brokerConnected: this.options.backend.connected,
      cachedRepositories: this.cache.size,
      workers: 1,
    };
  }

  private clusterStats(): Promise<GatewayStats> {
    const own = this.stats();
    return this.options.clusterStats?.(own) ?? Promise.resolve(own);
  }

  /** The Prometheus text exposition of this gateway's own state. */
  metrics(): string {
    return metricsText(this.stats());
  }

  /** Stops listening, ends every subscription and closes the broker session. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.hub.close();
    for (const ws of this.wss.clients) ws.terminate();
    for (const res of this.sse) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.options.backend.close().catch(() => undefined);
  }
}
