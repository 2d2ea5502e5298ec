import { createHmac, createPublicKey, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto';
import { errors as joseErrors, jwtVerify } from 'jose';

/** The credentials that may publish to a repository (any one of them will do). */
export interface PublisherAuth {
  /** Publisher name -> bearer token. */
  tokens?: Readonly<Record<string, string>>;
  /** Key id -> secret, for `Authorization: <key id> <base64 HMAC-SHA1 of the body>` (the cvmfs gateway's lease API). */
  hmac?: Readonly<Record<string, string>>;
  /**
   * JWTs as bearer tokens: signed with `secret` (HS256/384/512) or with the key of `publicKey` (PEM); `issuer` and
   * `audience` checked when given. A `repositories` claim, when present, must list the repository (or `*`).
   */
  jwt?: { secret?: string; publicKey?: string; issuer?: string; audience?: string };
  /** Anyone may publish (the cvmfs gateway's behaviour; for a trusted network only). */
  open?: boolean;
}

/** Per repository, `*` for every other one. A repository with no entry (and no `*`) accepts no publish. */
export type PublishPolicy = Readonly<Record<string, PublisherAuth>>;

export type AuthResult = { ok: true; publisher: string } | { ok: false; status: 401 | 403; reason: string };

interface Compiled {
  tokens: [string, Buffer][];
  hmac: Map<string, string>;
  jwtKey: KeyObject | undefined;
  jwt: PublisherAuth['jwt'];
  open: boolean;
}

function same(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Checks publish credentials against a PublishPolicy. */
export class Authorizer {
  private readonly compiled = new Map<string, Compiled>();

  constructor(policy: PublishPolicy) {
    for (const [repository, auth] of Object.entries(policy)) {
      let jwtKey: KeyObject | undefined;
      if (auth.jwt?.publicKey !== undefined) jwtKey = createPublicKey(auth.jwt.publicKey);
      else if (auth.jwt?.secret !== undefined) jwtKey = createSecretKey(Buffer.from(auth.jwt.secret, 'utf8'));
      this.compiled.set(repository, {
        tokens: Object.entries(auth.tokens ?? {}).map(([name, token]) => [name, Buffer.from(token, 'utf8')]),
        hmac: new Map(Object.entries(auth.hmac ?? {})),
        jwtKey,
        jwt: auth.jwt,
        open: auth.open === true,
      });
    }
  }

  /** Whether `authorization` (the header, if any) may publish `body` to `repository`, and who the publisher is. */
  async check(repository: string, authorization: string | undefined, body: Buffer): Promise<AuthResult> {
    const c = this.compiled.get(repository) ?? this.compiled.get('*');
    if (c === undefined) return { ok: false, status: 403, reason: `no publisher is allowed for ${repository}` };
    if (authorization === undefined || authorization === '') {
      return c.open ? { ok: true, publisher: 'anonymous' } : { ok: false, status: 401, reason: 'a credential is required' };
    }
    const m = /^(\S+) +(\S+)$/.exec(authorization.trim());
    if (m === null) return { ok: false, status: 401, reason: 'malformed Authorization header' };
    const [, scheme, value] = m as unknown as [string, string, string];
    if (scheme.toLowerCase() === 'bearer') {
      const given = Buffer.from(value, 'utf8');
      for (const [name, token] of c.tokens) if (same(given, token)) return { ok: true, publisher: `token:${name}` };
      if (c.jwtKey !== undefined && value.split('.').length === 3) return this.checkJwt(c, repository, value);
      return { ok: false, status: 403, reason: 'invalid token' };
    }
    const secret = c.hmac.get(scheme);
    if (secret !== undefined) {
      const expected = createHmac('sha1', secret).update(body).digest();
      if (same(Buffer.from(value, 'base64'), expected)) return { ok: true, publisher: `hmac:${scheme}` };
      return { ok: false, status: 403, reason: 'invalid HMAC' };
    }
    return { ok: false, status: 403, reason: 'unknown credential' };
  }

  private async checkJwt(c: Compiled, repository: string, token: string): Promise<AuthResult> {
    try {
      const { payload } = await jwtVerify(token, c.jwtKey as KeyObject, {
        ...(c.jwt?.issuer !== undefined ? { issuer: c.jwt.issuer } : {}),
        ...(c.jwt?.audience !== undefined ? { audience: c.jwt.audience } : {}),
      });
      const repos = payload.repositories;
      if (repos !== undefined && !(Array.isArray(repos) && (repos.includes(repository) || repos.includes('*')))) {
        return { ok: false, status: 403, reason: `the token does not allow ${repository}` };
      }
      return { ok: true, publisher: `jwt:${payload.sub ?? 'unnamed'}` };
    } catch (err) {
      const why = err instanceof joseErrors.JOSEError ? err.code : 'invalid';
      return { ok: false, status: 403, reason: `invalid token (${why})` };
    }
  }
}

/** Token buckets per publisher: `rate` publishes per second, bursts of `burst`. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {}

  /** Takes a token for `who`; false when it has none left. */
  take(who: string, now = Date.now()): boolean {
    if (this.rate <= 0) return true;
    const b = this.buckets.get(who) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate);
    b.at = now;
    if (this.buckets.size > 10_000) this.buckets.clear();
    this.buckets.set(who, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
