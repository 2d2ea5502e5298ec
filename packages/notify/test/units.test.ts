// The gateway's parts without a broker: manifests, bodies, the SSE parser, credentials, rate limits, the fan-out's
// congestion handling and the last-value cache on disk.
import { constants, generateKeyPairSync, privateEncrypt } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { inflateSync } from 'node:zlib';
import { QueueSimple } from '@msgbricks/dirq';
import {
  Authorizer,
  type CachedNotification,
  certificatePath,
  formatManifest,
  Hub,
  InvalidMessageError,
  LastValueCache,
  manifestHashMatches,
  parseManifest,
  parseNotification,
  parseSubscription,
  RateLimiter,
  type SignatureError,
  type Sink,
  SseParser,
  sseFrame,
  verifyManifestSignature,
  verifyWhitelist,
} from '@msgbricks/notify';
import { layout, useTempDir } from '@msgbricks/test-support';
import { SignJWT } from 'jose';
import { body } from './helpers';
import { makeSignedRepo, signedText } from './signed-repo';

const tmp = useTempDir('notify-units-');

describe('manifest', () => {
  test('manifest - fields, revision, name, hash line and signature are read', () => {
    const raw = formatManifest({ C: 'c'.repeat(40), S: 42, N: 'm.example.org', T: 1700000000 });
    const m = parseManifest(raw);
    expect(m.repository).toBe('m.example.org');
    expect(m.revision).toBe(42);
    expect(m.publishedAt).toBe(1700000000);
    expect(m.hash).toMatch(/^[0-9a-f]{40}$/);
    expect([...m.signature]).toEqual([0x8f, 0x00, 0x2d, 0x2d, 0x0a]);
    expect(manifestHashMatches(m)).toBe(true);
    const unsigned = parseManifest(formatManifest({ S: 1, N: 'u.org' }, false));
    expect(unsigned.hash).toBeUndefined();
    expect(manifestHashMatches(unsigned)).toBeUndefined();
  });

  test('manifest - a changed field no longer matches its hash line; missing N or S is an error', () => {
    const raw = formatManifest({ S: 5, N: 'h.org' });
    raw[1] = '6'.charCodeAt(0);
    expect(manifestHashMatches(parseManifest(raw))).toBe(false);
    expect(() => parseManifest(Buffer.from('S1\n'))).toThrow('no repository name');
    expect(() => parseManifest(Buffer.from('Nx.org\nSabc\n'))).toThrow('no valid revision');
  });
});

describe('messages', () => {
  test('messages - a valid body keeps its bytes; each broken key is named', () => {
    const b = Buffer.from(body('v.example.org', 3));
    const n = parseNotification(b);
    expect(n.body).toBe(b);
    expect(n.revision).toBe(3);
    const o = JSON.parse(b.toString());
    const broken: [unknown, string][] = [
      [{ ...o, version: 'x' }, '"version"'],
      [{ ...o, repository: 'bad name!' }, '"repository"'],
      [{ ...o, timestamp: 5 }, '"timestamp"'],
      [{ ...o, manifest: '' }, '"manifest"'],
    ];
    for (const [v, what] of broken) {
      const err = (() => {
        try {
          parseNotification(Buffer.from(JSON.stringify(v)));
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(InvalidMessageError);
      expect((err as InvalidMessageError).code).toBe('ERR_NOTIFY_INVALID_MESSAGE');
      expect((err as Error).message).toContain(what);
    }
  });

  test('messages - subscriptions, with the cvmfs-notify reasons', () => {
    expect(parseSubscription(Buffer.from('{"version":1,"repository":"s.org"}'))).toBe('s.org');
    expect(() => parseSubscription(Buffer.from('{'))).toThrow('message is not valid JSON');
    expect(() => parseSubscription(Buffer.from('{"version":1}'))).toThrow('invalid subscription message');
    expect(() => parseSubscription(Buffer.from('null'))).toThrow('invalid subscription message');
  });
});

describe('sse parser', () => {
  const stream = 'retry: 1500\r\n\r\n: hb\n\nid: 7\ndata: {"a":\ndata: 1}\n\nevent: activity\ndata: é€😀\r\rid: 8\rdata:x\n\n';

  test('sse parser - the same events whatever the chunking, every line ending, UTF-8 split anywhere', () => {
    const whole = new SseParser();
    const expected = whole.push(Buffer.from(stream));
    expect(expected).toEqual([
      { event: 'message', data: '{"a":\n1}', id: '7' },
      { event: 'activity', data: 'é€😀', id: '7' },
      { event: 'message', data: 'x', id: '8' },
    ]);
    expect(whole.retry).toBe(1500);
    expect(whole.comments).toBe(1);
    const bytes = Buffer.from(stream);
    for (let size = 1; size <= 7; size++) {
      const p = new SseParser();
      const got = [];
      for (let i = 0; i < bytes.length; i += size) got.push(...p.push(bytes.subarray(i, i + size)));
      expect(got).toEqual(expected);
      expect(p.lastEventId).toBe('8');
    }
  });

  test('sse parser - a BOM is skipped, a field without colon and an event without data dispatch nothing', () => {
    const p = new SseParser();
    expect(p.push('\ufeffdata\n\nevent: x\n\nid: 3\n\n')).toEqual([{ event: 'message', data: '', id: '' }]);
    expect(p.lastEventId).toBe('3');
  });

  test('sse parser - the gateway frame of a pretty-printed body comes back as the body', () => {
    const text = '{\n  "a": 1\r\n}';
    const frame = sseFrame({ body: Buffer.from(text), revision: 4 } as CachedNotification);
    const [e] = new SseParser().push(frame);
    expect(e).toEqual({ event: 'message', data: '{\n  "a": 1\n}', id: '4' });
  });
});

describe('credentials', () => {
  const payload = Buffer.from('{}');

  test('credentials - tokens per repository, `*` for the others, none configured refuses', async () => {
    const a = new Authorizer({ 'a.org': { tokens: { alice: 't-a' } }, '*': { tokens: { ops: 't-ops' } } });
    expect(await a.check('a.org', 'Bearer t-a', payload)).toEqual({ ok: true, publisher: 'token:alice' });
    expect(await a.check('a.org', 'Bearer t-ops', payload)).toMatchObject({ ok: false, status: 403 });
    expect(await a.check('b.org', 'Bearer t-ops', payload)).toEqual({ ok: true, publisher: 'token:ops' });
    expect(await a.check('b.org', undefined, payload)).toMatchObject({ ok: false, status: 401 });
    expect(await a.check('b.org', 'garbage', payload)).toMatchObject({ ok: false, status: 401 });
    expect(await new Authorizer({}).check('x.org', 'Bearer t', payload)).toMatchObject({ ok: false, status: 403 });
    expect(await new Authorizer({ '*': { open: true } }).check('x.org', undefined, payload)).toEqual({
      ok: true,
      publisher: 'anonymous',
    });
  });

  test('credentials - JWTs: HS256 and RS256, issuer, expiry and the repositories claim', async () => {
    const secret = 'jwt-secret-of-enough-length-0123456789';
    const hs = new Authorizer({ '*': { jwt: { secret, issuer: 'ci' } } });
    const key = new TextEncoder().encode(secret);
    const good = await new SignJWT({ repositories: ['j.org'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('pub1')
      .setIssuer('ci')
      .setExpirationTime('1h')
      .sign(key);
    expect(await hs.check('j.org', `Bearer ${good}`, payload)).toEqual({ ok: true, publisher: 'jwt:pub1' });
    expect(await hs.check('k.org', `Bearer ${good}`, payload)).toMatchObject({
      ok: false,
      status: 403,
      reason: 'the token does not allow k.org',
    });
    const expired = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('ci')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(key);
    expect(await hs.check('j.org', `Bearer ${expired}`, payload)).toMatchObject({
      ok: false,
      reason: 'invalid token (ERR_JWT_EXPIRED)',
    });
    const otherIssuer = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('else').sign(key);
    expect(await hs.check('j.org', `Bearer ${otherIssuer}`, payload)).toMatchObject({ ok: false, status: 403 });
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rs = new Authorizer({ '*': { jwt: { publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString() } } });
    const signed = await new SignJWT({ repositories: ['*'] }).setProtectedHeader({ alg: 'RS256' }).sign(privateKey);
    expect(await rs.check('any.org', `Bearer ${signed}`, payload)).toEqual({ ok: true, publisher: 'jwt:unnamed' });
    expect(await rs.check('any.org', `Bearer ${good}`, payload)).toMatchObject({ ok: false, status: 403 });
  });

  test('credentials - rate limits per publisher: a burst, then the rate', () => {
    const r = new RateLimiter(2, 3);
    const t = 1_000_000;
    expect([r.take('p', t), r.take('p', t), r.take('p', t), r.take('p', t)]).toEqual([true, true, true, false]);
    expect(r.take('q', t)).toBe(true);
    expect(r.take('p', t + 499)).toBe(false);
    expect(r.take('p', t + 500)).toBe(true);
  });
});

describe('fan-out', () => {
  class FakeSink implements Sink {
    got: number[] = [];
    size = 0;
    killed = false;
    buffered(): number {
      return this.size;
    }
    write(n: CachedNotification): void {
      this.got.push(n.revision);
    }
    kill(): void {
      this.killed = true;
    }
  }
  const note = (repository: string, revision: number) => ({ repository, revision }) as CachedNotification;
  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

  test('fan-out - a congested subscriber gets the latest revision per repository when it drains; the others everything', async () => {
    const hub = new Hub({ maxBufferedBytes: 100, stallTimeoutMs: 10_000, checkIntervalMs: 10 });
    const slow = new FakeSink();
    const fast = new FakeSink();
    hub.add('r.org', slow);
    hub.add('r.org', fast);
    hub.add('s.org', slow);
    slow.size = 1000;
    for (let rev = 1; rev <= 5; rev++) hub.publish(note('r.org', rev));
    hub.publish(note('s.org', 1));
    expect(fast.got).toEqual([1, 2, 3, 4, 5]);
    expect(slow.got).toEqual([]);
    slow.size = 0;
    await wait(50);
    expect(slow.got.sort()).toEqual([1, 5]);
    expect(hub.stats.coalesced).toBe(4);
    hub.close();
  });

  test('fan-out - one that stays congested is disconnected, and counted', async () => {
    const hub = new Hub({ maxBufferedBytes: 100, stallTimeoutMs: 30, checkIntervalMs: 10 });
    const stuck = new FakeSink();
    hub.add('r.org', stuck);
    hub.publish(note('r.org', 1));
    stuck.size = 1000;
    hub.publish(note('r.org', 2));
    await wait(150);
    expect(stuck.killed).toBe(true);
    expect(hub.stats.dropped).toBe(1);
    hub.remove('r.org', stuck);
    expect(hub.subscribers).toBe(0);
    hub.close();
  });
});

describe('last-value cache', () => {
  const files = (dir: string) => layout(dir).filter((f) => !f.endsWith('/'));

  test('last-value cache - one element per repository on disk; duplicates and older revisions dropped; reopened as it was', async () => {
    const dir = path.join(tmp.path, 'lvc');
    const cache = await LastValueCache.open(dir);
    const put = async (repo: string, rev: number) => (await cache.put(parseNotification(Buffer.from(body(repo, rev))))).outcome;
    expect(await put('a.org', 1)).toBe('stored');
    expect(await put('a.org', 2)).toBe('stored');
    expect(await put('a.org', 2)).toBe('duplicate');
    expect(await put('a.org', 1)).toBe('stale');
    expect(await put('b.org', 9)).toBe('stored');
    const onDisk = files(dir);
    expect(onDisk).toHaveLength(2);
    expect(onDisk.every((f) => /^[0-9a-f]{8}\/[0-9a-f]{14}$/.test(f))).toBe(true);
    const contents = onDisk.map((f) => fs.readFileSync(path.join(dir, f), 'utf8')).sort();
    expect(contents).toEqual([body('a.org', 2), body('b.org', 9)].sort());
    const again = await LastValueCache.open(dir);
    expect(again.get('a.org')?.revision).toBe(2);
    expect(again.get('b.org')?.body.toString()).toBe(body('b.org', 9));
    expect(again.size).toBe(2);
  });

  test('last-value cache - a crash between add and remove leaves two elements: open keeps the newer and removes the older', async () => {
    const dir = path.join(tmp.path, 'crash');
    const q = new QueueSimple(dir);
    await q.add(body('c.org', 5));
    await q.add(body('c.org', 4));
    await q.add('not a notification');
    const cache = await LastValueCache.open(dir);
    expect(cache.get('c.org')?.revision).toBe(5);
    expect(cache.unreadable).toBe(1);
    const left = files(dir)
      .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'))
      .sort();
    expect(left).toEqual([body('c.org', 5), 'not a notification'].sort());
  });
});

describe('signatures', () => {
  test('signatures - a manifest signed by a whitelisted certificate verifies; every broken link is named', () => {
    const repo = makeSignedRepo(tmp.path, 'sig.example.org');
    const read = (f: string) => fs.readFileSync(path.join(repo.dir, f));
    const manifest = parseManifest(repo.publish(7));
    const whitelist = verifyWhitelist(read('.cvmfswhitelist'), [repo.masterPub], 'sig.example.org');
    const cert = inflateSync(read(certificatePath(manifest)));
    expect(() => verifyManifestSignature(manifest, cert, whitelist)).not.toThrow();
    const forged = parseManifest(repo.publish(8, true));
    expect(() => verifyManifestSignature(forged, cert, whitelist)).toThrow('does not verify');
    expect(() => verifyWhitelist(read('.cvmfswhitelist'), [repo.masterPub], 'other.org')).toThrow("not other.org's");
    const other = makeSignedRepo(tmp.path, 'other.example.org');
    const otherCert = inflateSync(fs.readFileSync(path.join(other.dir, certificatePath(parseManifest(other.publish(1))))));
    expect(() => verifyManifestSignature(manifest, otherCert, whitelist)).toThrow('not in the whitelist');
    expect(() => verifyWhitelist(read('.cvmfswhitelist'), [other.masterPub], 'sig.example.org')).toThrow(
      'not signed by any of the master keys',
    );
    const expired = makeSignedRepo(tmp.path, 'old.example.org', { expired: true });
    expect(() =>
      verifyWhitelist(fs.readFileSync(path.join(expired.dir, '.cvmfswhitelist')), [expired.masterPub], 'old.example.org'),
    ).toThrow('expired');
    const err = (() => {
      try {
        verifyManifestSignature(forged, cert, whitelist);
      } catch (e) {
        return e as SignatureError;
      }
    })();
    expect(err?.code).toBe('ERR_NOTIFY_SIGNATURE');
  });

  test('signatures - repositories hashing with RIPEMD-160 or SHAKE-128 (a suffixed hash line) verify too', () => {
    const repo = makeSignedRepo(tmp.path, 'algo.example.org');
    const read = (f: string) => fs.readFileSync(path.join(repo.dir, f));
    const whitelist = verifyWhitelist(read('.cvmfswhitelist'), [repo.masterPub], 'algo.example.org');
    for (const algorithm of ['rmd160', 'shake128'] as const) {
      const manifest = parseManifest(repo.publish(3, false, algorithm));
      expect(manifest.hash).toMatch(new RegExp(`^[0-9a-f]{40}-${algorithm}$`));
      const cert = inflateSync(read(certificatePath(manifest)));
      expect(() => verifyManifestSignature(manifest, cert, whitelist)).not.toThrow();
      expect(() => verifyManifestSignature(parseManifest(repo.publish(4, true, algorithm)), cert, whitelist)).toThrow(
        'does not verify',
      );
    }
    const master = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const text = signedText(
      '20261201000000\nE20991231000000\nNalgo.example.org\n',
      (hash) => privateEncrypt({ key: master.privateKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.from(hash)),
      'rmd160',
    );
    const pub = master.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(verifyWhitelist(text, [pub], 'algo.example.org').repository).toBe('algo.example.org');
  });

  test('signatures - a whitelisted fingerprint that starts with E is a fingerprint, not the expiry line', () => {
    const master = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const fingerprint = `E0:${Array.from({ length: 19 }, (_, i) => (i + 16).toString(16).toUpperCase()).join(':')}`;
    const text = signedText(`20261201000000\nE20991231000000\nNfp.example.org\n${fingerprint}\n`, (hash) =>
      privateEncrypt({ key: master.privateKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.from(hash)),
    );
    const publicPem = master.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const whitelist = verifyWhitelist(text, [publicPem], 'fp.example.org');
    expect(whitelist.expires.toISOString()).toBe('2099-12-31T00:00:00.000Z');
    expect([...whitelist.fingerprints]).toEqual([fingerprint]);
  });
});
