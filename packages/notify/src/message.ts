import { InvalidMessageError, ManifestError } from './errors';
import { type Manifest, manifestHashMatches, parseManifest } from './manifest';

/** What a repository name may be: a cvmfs fully qualified name (letters, digits, `.`, `-`, `_`), up to 255 bytes. */
export const REPOSITORY_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;

/** A validated `activity` notification: the body exactly as published, and what the gateway read from it. */
export interface Notification {
  readonly repository: string;
  readonly revision: number;
  /** The published JSON, byte for byte: what subscribers receive. */
  readonly body: Buffer;
  readonly timestamp: string;
  readonly manifest: Manifest;
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

function fail(detail: string, cause?: unknown): never {
  throw new InvalidMessageError(detail, 'invalid_message', cause === undefined ? undefined : { cause });
}

/**
 * Validates a published body: `{version, timestamp, type: "activity", repository, manifest}` with a base64
 * `.cvmfspublished` whose name (N) is the repository and whose revision (S) is readable, and whose hash line, if
 * any, matches. The cvmfs gateway checks none of this; cvmfs-notify only the keys.
 */
export function parseNotification(body: Buffer): Notification {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch (err) {
    fail('the body is not valid JSON', err);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail('the body is not a JSON object');
  const o = v as Record<string, unknown>;
  for (const key of ['version', 'timestamp', 'type', 'repository', 'manifest']) {
    if (!(key in o)) fail(`the body has no "${key}"`);
  }
  if (typeof o.version !== 'number' || !Number.isInteger(o.version) || o.version < 1) fail('"version" is not a positive integer');
  if (o.type !== 'activity') fail(`"type" is ${JSON.stringify(o.type)}, not "activity"`);
  if (typeof o.repository !== 'string' || !REPOSITORY_RE.test(o.repository)) fail('"repository" is not a repository name');
  if (typeof o.timestamp !== 'string') fail('"timestamp" is not a string');
  if (typeof o.manifest !== 'string' || o.manifest === '' || !BASE64_RE.test(o.manifest)) fail('"manifest" is not base64');
  let manifest: Manifest;
  try {
    manifest = parseManifest(Buffer.from(o.manifest, 'base64'));
  } catch (err) {
    if (err instanceof ManifestError) fail(`"manifest": ${err.message}`, err);
    throw err;
  }
  if (manifest.repository !== o.repository) {
    fail(`the manifest is repository ${JSON.stringify(manifest.repository)}'s, not ${JSON.stringify(o.repository)}'s`);
  }
  if (manifestHashMatches(manifest) === false) fail("the manifest's hash line does not match its content");
  return { repository: o.repository, revision: manifest.revision, body, timestamp: o.timestamp, manifest };
}

/**
 * A subscription request, `{"version":1,"repository":"..."}` (the cvmfs client's GET body, cvmfs-notify's WebSocket
 * frame): the repository.
 */
export function parseSubscription(body: Buffer): string {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new InvalidMessageError('message is not valid JSON', 'message is not valid JSON', { cause: err });
  }
  const o = (v ?? {}) as Record<string, unknown>;
  if (
    typeof v !== 'object' ||
    typeof o.version !== 'number' ||
    typeof o.repository !== 'string' ||
    !REPOSITORY_RE.test(o.repository)
  ) {
    throw new InvalidMessageError('invalid subscription message', 'invalid subscription message');
  }
  return o.repository;
}
