// The notify gateway against a real RabbitMQ: the cvmfs gateway and cvmfs-notify APIs, two nodes on one broker, a
// node restart (cache and missed publishes kept), Last-Event-ID resume, and a stalled subscriber.
import { createHmac } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as path from 'node:path';
import { Gateway, type GatewayOptions, StompBackend, type StompBackendOptions } from '@msgbricks/notify';
import { StompConnection } from '@msgbricks/stomp';
import type { Broker } from '@msgbricks/test-support';
import { layout, makeTlsMaterial, removeDir, startRabbitMQ, tempDir } from '@msgbricks/test-support';
import WebSocket from 'ws';
import { body, publish, request, Subscriber } from './helpers';
import { makeSignedRepo } from './signed-repo';

jest.setTimeout(300_000);

let rabbit: Broker;
let tmp: string;
const gateways: Gateway[] = [];
const subscribers: Subscriber[] = [];

beforeAll(async () => {
  rabbit = await startRabbitMQ({ exchanges: ['repository.activity'] });
  tmp = tempDir('notify-gateway-');
});

afterEach(async () => {
  for (const s of subscribers.splice(0)) s.close();
  for (const g of gateways.splice(0)) await g.close();
});

afterAll(async () => {
  await rabbit?.stop();
  if (tmp) removeDir(tmp);
});

async function gateway(
  node: string,
  { backendOptions, ...extra }: Partial<GatewayOptions> & { backendOptions?: Partial<StompBackendOptions> } = {},
): Promise<Gateway> {
  const backend = new StompBackend({
    uri: `stomp://${rabbit.host}:${rabbit.ports.stomp}`,
    user: rabbit.user,
    password: rabbit.password,
    node,
    ...backendOptions,
  });
  const g = await Gateway.start({
    port: 0,
    cacheDir: path.join(tmp, node),
    backend,
    publish: { '*': { tokens: { ci: 'secret-token' }, hmac: { key1: 'hmac-secret' } } },
    rateLimit: { rate: 0, burst: 0 },
    ...extra,
  });
  gateways.push(g);
  await until(() => backend.connected, 'broker connection');
  return g;
}

function subscribe(api: string, repository: string, opts: ConstructorParameters<typeof Subscriber>[2] = {}): Subscriber {
  const s = new Subscriber(api, repository, opts);
  subscribers.push(s);
  return s;
}

async function until(pred: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('gateway - cvmfs gateway API', () => {
  test('gateway - publish answers {"status":"ok"} byte for byte and the subscriber gets the body unchanged', async () => {
    const g = await gateway('api1');
    const sub = subscribe(g.url, 'api.example.org');
    await sub.until(() => sub.status === 200, 20_000, 'SSE headers');
    expect(sub.closed).toBe(false);
    expect(sub.headers['content-type']).toBe('text/event-stream');
    const payload = body('api.example.org', 7);
    const r = await publish(g.url, payload);
    expect(r.status).toBe(200);
    expect(r.text).toBe('{"status":"ok"}');
    await sub.until(() => sub.events.length === 1);
    expect(sub.events[0]).toEqual({ event: 'message', data: payload, id: '7' });
    expect(sub.parser.retry).toBe(3000);
  });

  test('gateway - invalid bodies get 400 with a reason, other methods 405', async () => {
    const g = await gateway('api2');
    const bad: [string, string][] = [
      ['not json', 'not valid JSON'],
      ['[1]', 'not a JSON object'],
      [JSON.stringify({ ...JSON.parse(body('r.org', 1)), type: 'other' }), '"type"'],
      [JSON.stringify({ ...JSON.parse(body('r.org', 1)), repository: 'other.org' }), 'not "other.org"\'s'],
      [
        JSON.stringify({ ...JSON.parse(body('r.org', 1)), manifest: Buffer.from('Cabc\nN r.org\n').toString('base64') }),
        'revision',
      ],
      [JSON.stringify({ ...JSON.parse(body('r.org', 1)), manifest: '***' }), 'base64'],
      [JSON.stringify({ version: 1, type: 'activity', repository: 'r.org', manifest: 'AA==' }), '"timestamp"'],
    ];
    for (const [payload, detail] of bad) {
      const r = await publish(g.url, payload);
      expect(r.status).toBe(400);
      const answer = JSON.parse(r.text);
      expect(answer.status).toBe('error');
      expect(answer.reason).toBe('invalid_message');
      expect(answer.detail).toContain(detail);
    }
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const r = await request(`${g.url}/notifications/publish`, { method });
      expect(r.status).toBe(405);
      expect(r.headers.allow).toBe('POST');
    }
    expect((await request(`${g.url}/notifications/subscribe`, { method: 'POST', body: '{}' })).status).toBe(405);
    // A hash line that does not match the content is refused too.
    const tampered = JSON.parse(body('r.org', 3));
    const m = Buffer.from(tampered.manifest, 'base64');
    m[1] = 'b'.charCodeAt(0);
    tampered.manifest = m.toString('base64');
    const r = await publish(g.url, JSON.stringify(tampered));
    expect(r.status).toBe(400);
    expect(JSON.parse(r.text).detail).toContain('hash');
  });

  test('gateway - a missing credential is 401, a wrong one 403, an HMAC of the body is accepted', async () => {
    const g = await gateway('api3');
    const payload = body('auth.example.org', 1);
    const none = await publish(g.url, payload, '');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toContain('Bearer');
    expect((await publish(g.url, payload, 'wrong')).status).toBe(403);
    const mac = createHmac('sha1', 'hmac-secret').update(payload).digest('base64');
    const wrongMac = createHmac('sha1', 'other').update(payload).digest('base64');
    const post = (auth: string) =>
      request(`${g.url}/notifications/publish`, { method: 'POST', headers: { Authorization: auth }, body: payload });
    expect((await post(`key1 ${wrongMac}`)).status).toBe(403);
    expect((await post(`key1 ${mac}`)).status).toBe(200);
  });

  test('gateway - a body in several chunks, the legacy publish path and ?repository= subscriptions', async () => {
    const g = await gateway('api4');
    const sub = subscribe(g.url, 'chunks.example.org', { query: true });
    await sub.until(() => sub.status === 200);
    const payload = body('chunks.example.org', 12, { padding: 'x'.repeat(20_000) });
    const r = await request(`${g.url}/publish`, {
      method: 'POST',
      headers: { Authorization: 'Bearer secret-token' },
      body: payload,
      chunks: 6,
    });
    expect(r.text).toBe('{"status":"ok"}');
    await sub.until(() => sub.events.length === 1);
    expect(sub.events[0]?.data).toBe(payload);
  });

  test('gateway - an identical republish is dropped, a new subscriber gets the last value, Last-Event-ID skips it', async () => {
    const g = await gateway('api5');
    const sub = subscribe(g.url, 'dup.example.org');
    await sub.until(() => sub.status === 200);
    await publish(g.url, body('dup.example.org', 1));
    await sub.until(() => sub.events.length === 1);
    expect((await publish(g.url, body('dup.example.org', 1))).text).toBe('{"status":"ok"}');
    await publish(g.url, body('dup.example.org', 2));
    await sub.until(() => sub.events.length === 2);
    expect(sub.revisions()).toEqual([1, 2]);
    const late = subscribe(g.url, 'dup.example.org');
    await late.until(() => late.events.length === 1);
    expect(late.revisions()).toEqual([2]);
    const resumed = subscribe(g.url, 'dup.example.org', { lastEventId: '2' });
    await resumed.until(() => resumed.status === 200);
    const metrics = await request(`${g.url.replace('/api/v1', '')}/metrics`);
    expect(metrics.text).toMatch(/msgnotify_publishes_total\{outcome="duplicate"\} 1/);
    expect(metrics.text).toMatch(/msgnotify_subscribers 3/);
    expect(resumed.events).toEqual([]);
    const health = await request(`${g.url.replace('/api/v1', '')}/healthz`);
    expect(health.status).toBe(200);
    expect(JSON.parse(health.text)).toMatchObject({ status: 'ok', broker: 'connected', subscribers: 3 });
  });
});

/** A raw-socket SSE subscription: every byte the gateway sends, headers included. */
function rawSubscribe(api: string, repository: string, version: '1.0' | '1.1'): { bytes: () => string; close: () => void } {
  const u = new URL(api);
  const parts: Buffer[] = [];
  const socket = net.connect(Number(u.port), u.hostname, () => {
    socket.write(`GET ${u.pathname}/notifications/subscribe?repository=${repository} HTTP/${version}\r\nHost: x\r\n\r\n`);
  });
  socket.on('data', (c: Buffer) => parts.push(c));
  socket.on('error', () => undefined);
  return { bytes: () => Buffer.concat(parts).toString('latin1'), close: () => socket.destroy() };
}

/** The chunks of a chunked body, strictly: a malformed one throws. */
function dechunk(body: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < body.length) {
    const m = /^([0-9a-f]+)\r\n/.exec(body.slice(i));
    if (m === null) throw new Error(`not a chunk at ${i}: ${JSON.stringify(body.slice(i, i + 20))}`);
    const size = Number.parseInt(m[1] as string, 16);
    const start = i + m[0].length;
    if (body.length < start + size + 2) break; // the last one is still arriving
    if (body.slice(start + size, start + size + 2) !== '\r\n') throw new Error(`chunk at ${i} not ended by CRLF`);
    out.push(body.slice(start, start + size));
    i = start + size + 2;
  }
  return out;
}

describe('gateway - SSE on the wire', () => {
  test('gateway - each event is one well-formed HTTP/1.1 chunk, heartbeats too; an HTTP/1.0 client gets the same events unframed', async () => {
    const g = await gateway('wire1', { heartbeatMs: 100 });
    const v11 = rawSubscribe(g.url, 'wire.example.org', '1.1');
    const v10 = rawSubscribe(g.url, 'wire.example.org', '1.0');
    try {
      await until(() => g.hub.subscribers === 2, 'two subscribers');
      const payload = body('wire.example.org', 7);
      expect((await publish(g.url, payload)).status).toBe(200);
      const frame = `id: 7\ndata: ${payload}\n\n`;
      const bodyOf = (raw: string) => raw.slice(raw.indexOf('\r\n\r\n') + 4);
      await until(() => v11.bytes().includes(frame) && v10.bytes().includes(frame), 'the event on both');
      await until(() => bodyOf(v11.bytes()).split(':\n\n').length > 2, 'heartbeats');
      expect(v11.bytes()).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*Transfer-Encoding: chunked\r\n/);
      const chunks = dechunk(bodyOf(v11.bytes()));
      expect(chunks.filter((c) => c !== ':\n\n')).toEqual(['retry: 3000\n\n', frame]);
      expect(chunks.filter((c) => c === ':\n\n').length).toBeGreaterThan(0);
      expect(v10.bytes()).not.toMatch(/Transfer-Encoding/i);
      expect(bodyOf(v10.bytes()).replaceAll(':\n\n', '')).toBe(`retry: 3000\n\n${frame}`);
    } finally {
      v11.close();
      v10.close();
    }
  });
});

describe('gateway - cvmfs-notify WebSocket API', () => {
  function open(api: string, protocols?: string[]): Promise<WebSocket> {
    const ws = new WebSocket(`${api.replace('http', 'ws')}/subscribe`, protocols);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }
  function next(ws: WebSocket): Promise<{ data: Buffer; binary: boolean }> {
    return new Promise((resolve) => ws.once('message', (data: Buffer, binary: boolean) => resolve({ data, binary })));
  }

  test('gateway - json subprotocol, binary subscription frame, binary notifications, error replies', async () => {
    const g = await gateway('ws1');
    await expect(open(g.url, ['xml'])).rejects.toThrow('HTTP 400');
    expect((await request(`${g.url}/subscribe`)).status).toBe(426);
    await publish(g.url, body('ws.example.org', 4));
    await until(() => g.cache.get('ws.example.org') !== undefined, 'cache');
    const ws = await open(g.url, ['json']);
    expect(ws.protocol).toBe('json');
    let m = next(ws);
    ws.send(Buffer.from('{not json'), { binary: true });
    expect(JSON.parse((await m).data.toString())).toEqual({ status: 'error', reason: 'message is not valid JSON' });
    m = next(ws);
    ws.send(Buffer.from('{"version":1}'), { binary: true });
    expect(JSON.parse((await m).data.toString())).toEqual({ status: 'error', reason: 'invalid subscription message' });
    // A text frame crashed cvmfs-notify's handler: here it is answered like any other bad frame.
    m = next(ws);
    ws.send('{"version":1}');
    expect((await m).binary).toBe(true);
    m = next(ws);
    ws.send(Buffer.from(JSON.stringify({ version: 1, repository: 'ws.example.org' })), { binary: true });
    const cached = await m;
    expect(cached.binary).toBe(true);
    expect(cached.data.toString()).toBe(body('ws.example.org', 4));
    m = next(ws);
    await publish(g.url, body('ws.example.org', 5));
    expect((await m).data.toString()).toBe(body('ws.example.org', 5));
    // Without a subprotocol offer it is accepted too (the header is optional).
    const plain = await open(g.url);
    plain.close();
    ws.close();
  });
});

describe('gateway - nodes on one broker', () => {
  test('gateway - a publish on one node reaches the subscribers of both', async () => {
    const a = await gateway('node-a');
    const b = await gateway('node-b');
    const sa = subscribe(a.url, 'two.example.org');
    const sb = subscribe(b.url, 'two.example.org', { query: true });
    await sa.until(() => sa.status === 200);
    await sb.until(() => sb.status === 200);
    await publish(a.url, body('two.example.org', 1));
    await publish(b.url, body('two.example.org', 2));
    await sa.until(() => sa.events.length === 2);
    await sb.until(() => sb.events.length === 2);
    expect(sa.revisions()).toEqual([1, 2]);
    expect(sb.revisions()).toEqual([1, 2]);
  });

  test('gateway - a node bound to listed repositories hears a publisher that sends with their key only (cvmfs-notify), even while it was down; each revision once', async () => {
    const legacy = new StompConnection({
      uri: `stomp://${rabbit.host}:${rabbit.ports.stomp}`,
      auth: [{ scheme: 'plain', name: rabbit.user, pass: rabbit.password }],
    });
    await legacy.open();
    // What a cvmfs-notify node does: the published body, to the exchange, with the repository as routing key only.
    const legacySend = (repository: string, revision: number) =>
      legacy.send(
        { destination: `/exchange/repository.activity/${repository}`, 'content-type': 'application/json' },
        Buffer.from(body(repository, revision)),
      );
    try {
      const options = { repositories: ['legacy.example.org'] };
      let g = await gateway('legacy-a', { backendOptions: options });
      const sub = subscribe(g.url, 'legacy.example.org');
      await sub.until(() => sub.status === 200);
      await legacySend('legacy.example.org', 1);
      await legacySend('unbound.example.org', 1);
      await sub.until(() => sub.events.length === 1, 20_000, 'the legacy publish');
      // A msgnotify publish comes twice (its key and #all): subscribers get it once.
      expect((await publish(g.url, body('legacy.example.org', 2))).status).toBe(200);
      await sub.until(() => sub.events.length === 2, 20_000, 'revision 2');
      // A barrier: once revision 1 of barrier.example.org (#all, queued after them) is in, the queue is drained.
      expect((await publish(g.url, body('barrier.example.org', 1))).status).toBe(200);
      await until(() => g.cache.get('barrier.example.org') !== undefined, 'the barrier');
      expect(g.cache.get('unbound.example.org')).toBeUndefined();
      expect(sub.revisions()).toEqual([1, 2]);
      expect(g.stats().received).toMatchObject({ stored: 3, duplicate: 1 });
      // Down, then back: the binding is the durable queue's, what came meanwhile waits there.
      await g.close();
      gateways.splice(gateways.indexOf(g), 1);
      await legacySend('legacy.example.org', 3);
      g = await gateway('legacy-a', { backendOptions: options });
      await until(() => g.cache.get('legacy.example.org')?.revision === 3, 'revision 3 after the restart');
    } finally {
      await legacy.close();
    }
  });

  test('gateway - a restarted node keeps its cache, gets what was published while it was down, and a client resumes by Last-Event-ID', async () => {
    const a = await gateway('restart-a');
    let b = await gateway('restart-b');
    const sb = subscribe(b.url, 'resume.example.org');
    await sb.until(() => sb.status === 200);
    await publish(a.url, body('kept.example.org', 1));
    await publish(a.url, body('resume.example.org', 10));
    await sb.until(() => sb.events.length === 1);
    await until(() => b.cache.get('kept.example.org') !== undefined, 'kept.example.org on node b');
    const lastId = sb.parser.lastEventId;
    expect(lastId).toBe('10');
    const port = b.port;
    await b.close();
    gateways.splice(gateways.indexOf(b), 1);
    await sb.until(() => sb.closed);
    // The cache is on disk: one dirq element per repository, the published bodies as they were.
    const spool = path.join(tmp, 'restart-b');
    const elements = () => layout(spool).filter((f) => !f.endsWith('/'));
    expect(
      elements()
        .map((f) => fs.readFileSync(path.join(spool, f), 'utf8'))
        .sort(),
    ).toEqual([body('kept.example.org', 1), body('resume.example.org', 10)].sort());
    // Published while node b is down: its durable queue keeps it.
    await publish(a.url, body('resume.example.org', 11));
    b = await gateway('restart-b', { port });
    // Loaded from the spool (nothing more comes from the broker for it).
    expect(b.cache.get('kept.example.org')?.revision).toBe(1);
    const kept = subscribe(b.url, 'kept.example.org');
    await kept.until(() => kept.events.length === 1);
    expect(kept.events[0]?.data).toBe(body('kept.example.org', 1));
    await until(() => b.cache.get('resume.example.org')?.revision === 11, 'node b catching up');
    const again = subscribe(b.url, 'resume.example.org', { lastEventId: lastId });
    await again.until(() => again.events.length === 1);
    expect(again.revisions()).toEqual([11]);
    await publish(a.url, body('resume.example.org', 12));
    await again.until(() => again.events.length === 2);
    expect(again.revisions()).toEqual([11, 12]);
    expect(elements()).toHaveLength(2);
  });
});

describe('gateway - slow subscribers', () => {
  test('gateway - a subscriber that never reads does not delay the others; it is coalesced, then disconnected', async () => {
    const g = await gateway('stall', { hub: { maxBufferedBytes: 1024 * 1024, stallTimeoutMs: 20_000, checkIntervalMs: 50 } });
    const repo = 'stall.example.org';
    const stalled = net.connect(g.port, '127.0.0.1');
    stalled.write(`GET /api/v1/notifications/subscribe?repository=${repo} HTTP/1.1\r\nHost: x\r\n\r\n`);
    stalled.pause();
    let stalledClosed = false;
    stalled.on('close', () => {
      stalledClosed = true;
    });
    const fast = subscribe(g.url, repo);
    await fast.until(() => fast.status === 200);
    await until(() => g.hub.subscribers === 2, 'two subscribers');
    const t0 = Date.now();
    // 8 MB in all: more than a socket that is never read holds (its receive window, the sender's buffer).
    const padding = 'p'.repeat(10_000);
    const count = 800;
    for (let rev = 1; rev <= count; rev++) {
      const r = await publish(g.url, body(repo, rev, { padding }));
      expect(r.status).toBe(200);
    }
    await fast.until(() => fast.events.length === count, 60_000);
    const elapsed = Date.now() - t0;
    expect(fast.revisions()).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    // Everything arrived while the stalled subscriber was still connected (before its 20 s time-out).
    expect(stalledClosed).toBe(false);
    expect(g.hub.stats.dropped).toBe(0);
    expect(elapsed).toBeLessThan(20_000);
    expect(g.hub.stats.coalesced).toBeGreaterThan(0);
    await until(() => g.hub.stats.dropped === 1, 'stalled subscriber dropped', 30_000);
    // Its connection is gone: once it reads again it finds the end (or a reset).
    stalled.on('error', () => undefined);
    stalled.resume();
    await until(() => stalledClosed, 'stalled subscriber disconnected', 30_000);
    expect(g.hub.subscribers).toBe(1);
  });
});

describe('gateway - signature verification', () => {
  /** The publish body of what `publish()` just wrote to the repository's .cvmfspublished. */
  const signedBody = (repository: string, manifest: Buffer) =>
    JSON.stringify({
      version: 1,
      timestamp: 'Mon Jan 1 00:00:00 2024',
      type: 'activity',
      repository,
      manifest: manifest.toString('base64'),
    });

  test('gateway - with master keys configured, a forged manifest is refused (400 invalid_signature) and reaches nobody', async () => {
    const root = path.join(tmp, 'signed');
    const good = makeSignedRepo(root, 'sig.example.org');
    // Its whitelist signed by a master key the gateway does not trust.
    const rogue = makeSignedRepo(root, 'rogue.example.org', { otherMaster: true });
    const g = await gateway('verify', {
      verify: {
        // @fqrn@ as in CVMFS_SERVER_URL: the first location does not exist, the second does.
        '*': {
          masterKeys: [good.masterPub, rogue.masterPub],
          locations: [path.join(root, 'none', '@fqrn@'), path.join(root, '@fqrn@')],
        },
        'unsigned.example.org': { masterKeys: [good.masterPub], locations: [path.join(root, 'missing')] },
      },
    });
    const sub = subscribe(g.url, 'sig.example.org');
    await sub.until(() => sub.status === 200, 20_000, 'SSE headers');
    expect((await publish(g.url, signedBody('sig.example.org', good.publish(1)))).status).toBe(200);
    await sub.until(() => sub.events.length === 1, 20_000, 'revision 1');
    const forged = await publish(g.url, signedBody('sig.example.org', good.publish(2, true)));
    expect(forged.status).toBe(400);
    expect(JSON.parse(forged.text)).toEqual({
      status: 'error',
      reason: 'invalid_signature',
      detail: "the manifest's signature does not verify with its certificate",
    });
    const rogueAnswer = await publish(g.url, signedBody('rogue.example.org', rogue.publish(1)));
    expect(rogueAnswer.status).toBe(400);
    expect(JSON.parse(rogueAnswer.text).detail).toBe('the whitelist is not signed by any of the master keys');
    // A hash-only manifest (no certificate) is no longer enough.
    const unsigned = await publish(g.url, body('sig.example.org', 3));
    expect(unsigned.status).toBe(400);
    expect(JSON.parse(unsigned.text).reason).toBe('invalid_signature');
    // The whitelist cannot be had: not the publisher's fault, 503 and try again.
    const away = await publish(g.url, body('unsigned.example.org', 1));
    expect(away.status).toBe(503);
    expect(away.headers['retry-after']).toBe('5');
    expect((await publish(g.url, signedBody('sig.example.org', good.publish(4)))).status).toBe(200);
    await sub.until(() => sub.events.length === 2, 20_000, 'revision 4');
    expect(sub.events.map((e) => e.id)).toEqual(['1', '4']);
    expect(g.cache.get('sig.example.org')?.revision).toBe(4);
    expect(g.cache.get('rogue.example.org')).toBeUndefined();
    const metrics = g.metrics();
    expect(metrics).toContain('msgnotify_publishes_total{outcome="bad-signature"} 3');
    expect(metrics).toContain('msgnotify_publishes_total{outcome="unverifiable"} 1');
    expect(metrics).toContain('msgnotify_publishes_total{outcome="ok"} 2');
  });

  test('gateway - the whitelist and certificate over HTTP from the first location that answers', async () => {
    const root = path.join(tmp, 'signed-http');
    const repo = makeSignedRepo(root, 'web.example.org');
    const served: string[] = [];
    const stratum = http.createServer((req, res) => {
      served.push(req.url ?? '');
      fs.readFile(path.join(root, (req.url ?? '/').replace(/^\/cvmfs\//, '')), (err, data) =>
        err ? res.writeHead(404).end() : res.end(data),
      );
    });
    await new Promise<void>((r) => stratum.listen(0, '127.0.0.1', r));
    try {
      const port = (stratum.address() as net.AddressInfo).port;
      const g = await gateway('verify-http', {
        verify: {
          'web.example.org': {
            masterKeys: [repo.masterPub],
            locations: [`http://127.0.0.1:${port}/gone/@fqrn@`, `http://127.0.0.1:${port}/cvmfs/@fqrn@`],
          },
        },
      });
      expect((await publish(g.url, signedBody('web.example.org', repo.publish(1)))).status).toBe(200);
      expect((await publish(g.url, signedBody('web.example.org', repo.publish(2, true)))).status).toBe(400);
      expect((await publish(g.url, signedBody('web.example.org', repo.publish(3)))).status).toBe(200);
      // The certificate is fetched once (content-addressed); the whitelist every time.
      expect(served.filter((u) => u.startsWith('/cvmfs/') && u.endsWith('X'))).toHaveLength(1);
      expect(served.filter((u) => u === '/cvmfs/web.example.org/.cvmfswhitelist')).toHaveLength(3);
      expect(served.filter((u) => u.startsWith('/gone/web.example.org/'))).not.toHaveLength(0);
      // Repositories not configured keep the hash-line check only.
      expect((await publish(g.url, body('other.example.org', 1))).status).toBe(200);
    } finally {
      stratum.close();
    }
  });
});

describe('gateway - limits and transport security', () => {
  test('gateway - HTTPS, subscription tokens, per-publisher rate limits (429) and body size (413)', async () => {
    const tls = makeTlsMaterial(path.join(tmp, 'tls'));
    const g = await gateway('limits', {
      tls: { cert: fs.readFileSync(tls.certFile), key: fs.readFileSync(tls.keyFile) },
      subscribeTokens: ['reader-token'],
      rateLimit: { rate: 1, burst: 2 },
      maxBodyBytes: 4096,
    });
    expect(g.url).toMatch(/^https:/);
    const ca = fs.readFileSync(tls.caFile);
    const call = (p: string, opts: https.RequestOptions = {}, payload?: string) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = https.request(`${g.url}${p}`, { ca, ...opts }, (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString() }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(payload);
      });
    const post = (payload: string) =>
      call('/notifications/publish', { method: 'POST', headers: { Authorization: 'Bearer secret-token' } }, payload);
    expect((await post(body('limits.example.org', 1))).status).toBe(200);
    expect((await post(body('limits.example.org', 2))).status).toBe(200);
    const limited = await post(body('limits.example.org', 3));
    expect(limited.status).toBe(429);
    expect(JSON.parse(limited.text)).toEqual({ status: 'error', reason: 'too many publishes' });
    expect((await post(body('limits.example.org', 4, { padding: 'x'.repeat(5000) }))).status).toBe(413);
    expect((await call('/notifications/subscribe?repository=limits.example.org')).status).toBe(401);
    // With the token (EventSource cannot set headers: ?token= too) the stream opens and starts with the cached revision.
    const first = await new Promise<string>((resolve, reject) => {
      const req = https.get(
        `${g.url}/notifications/subscribe?repository=limits.example.org&token=reader-token`,
        { ca },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => {
            text += c.toString();
            if (text.includes('\n\nid: ')) {
              req.destroy();
              resolve(text);
            }
          });
        },
      );
      req.on('error', reject);
    });
    expect(first).toContain('id: 2\ndata: ');
  });
});

describe('gateway - broker away', () => {
  test('gateway - while the broker is down publishes get 503 and /healthz says so; it reconnects by itself and nothing is lost', async () => {
    const g = await gateway('away');
    const sub = subscribe(g.url, 'away.example.org');
    await sub.until(() => sub.status === 200);
    expect((await publish(g.url, body('away.example.org', 1))).status).toBe(200);
    await sub.until(() => sub.events.length === 1);
    const health = () => request(`${g.url.replace('/api/v1', '')}/healthz`);
    await rabbit.kill();
    let h = await health();
    for (const deadline = Date.now() + 30_000; h.status !== 503 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 50));
      h = await health();
    }
    expect(h.status).toBe(503);
    expect(JSON.parse(h.text)).toMatchObject({ status: 'degraded', broker: 'disconnected' });
    const refused = await publish(g.url, body('away.example.org', 2));
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    // Subscribers stay connected meanwhile.
    expect(sub.closed).toBe(false);
    await rabbit.restart();
    for (const deadline = Date.now() + 60_000; h.status !== 200 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 100));
      h = await health();
    }
    expect(h.status).toBe(200);
    expect((await publish(g.url, body('away.example.org', 2))).status).toBe(200);
    await sub.until(() => sub.events.length === 2);
    expect(sub.revisions()).toEqual([1, 2]);
  });
});
