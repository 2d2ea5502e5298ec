import { createHash } from 'node:crypto';
import { ManifestError } from './errors';

/**
 * A CernVM-FS manifest (`.cvmfspublished`): one `K<value>` line per field (C root catalog hash, S revision, N
 * repository name, T publish time, X certificate hash...), then `--`, the hex hash of everything before the `--`
 * line, and the binary signature of that hash string.
 */
export interface Manifest {
  /** Field letter -> value, in file order. */
  readonly fields: ReadonlyMap<string, string>;
  /** N: the fully qualified repository name. */
  readonly repository: string;
  /** S: the revision, which only grows. */
  readonly revision: number;
  /** T: publish time, seconds since the epoch, when present. */
  readonly publishedAt: number | undefined;
  /** The hash line after `--` (hex, with an algorithm suffix such as `-rmd160` for non-SHA-1), when signed. */
  readonly hash: string | undefined;
  /** The signature bytes after the hash line (empty when unsigned). */
  readonly signature: Buffer;
  /** The bytes the hash covers: everything before the `--` line. */
  readonly letter: Buffer;
}

const SEPARATOR = Buffer.from('--\n');

/** Parses a manifest; a ManifestError says what is missing or malformed. */
export function parseManifest(data: Buffer): Manifest {
  let end = data.length;
  let rest: Buffer | undefined;
  // The separator is at the start of a line; the signature after it is binary and may contain anything.
  if (data.subarray(0, 3).equals(SEPARATOR)) end = 0;
  else {
    const at = data.indexOf('\n--\n');
    if (at >= 0) end = at + 1;
  }
  if (end < data.length) rest = data.subarray(end + SEPARATOR.length);
  const letter = data.subarray(0, end);
  const fields = new Map<string, string>();
  for (const line of letter.toString('utf8').split('\n')) {
    if (line === '') continue;
    fields.set(line[0] as string, line.slice(1));
  }
  const repository = fields.get('N');
  if (repository === undefined || repository === '') throw new ManifestError('manifest has no repository name (N line)');
  const s = fields.get('S');
  if (s === undefined || !/^\d{1,15}$/.test(s))
    throw new ManifestError(`manifest has no valid revision (S line): ${JSON.stringify(s)}`);
  const t = fields.get('T');
  const publishedAt = t !== undefined && /^\d{1,15}$/.test(t) ? Number(t) : undefined;
  let hash: string | undefined;
  let signature: Buffer = Buffer.alloc(0);
  if (rest !== undefined) {
    const nl = rest.indexOf('\n');
    hash = (nl < 0 ? rest : rest.subarray(0, nl)).toString('latin1');
    signature = nl < 0 ? Buffer.alloc(0) : rest.subarray(nl + 1);
  }
  return { fields, repository, revision: Number(s), publishedAt, hash, signature, letter };
}

const ALGORITHMS: Readonly<Record<string, string>> = { '': 'sha1', '-rmd160': 'ripemd160', '-shake128': 'shake128' };

/**
 * Whether the manifest's hash line is the hash of its content (cvmfs's VerifyLetter, before the signature check):
 * true or false, or undefined when the manifest carries no hash or one of an unknown algorithm.
 */
export function manifestHashMatches(m: Manifest): boolean | undefined {
  return m.hash === undefined ? undefined : hashLineMatches(m.letter, m.hash);
}

/**
 * Whether a signed text's hash line (hex, with cvmfs's algorithm suffix: none for SHA-1, `-rmd160`, `-shake128`) is
 * the hash of `letter`; undefined for a line of another form or algorithm.
 */
export function hashLineMatches(letter: Buffer, hashLine: string): boolean | undefined {
  const match = /^([0-9a-f]+)(-[a-z0-9]+)?$/.exec(hashLine);
  const algorithm = match ? ALGORITHMS[match[2] ?? ''] : undefined;
  if (match === null || algorithm === undefined) return undefined;
  const opts = algorithm === 'shake128' ? { outputLength: 20 } : undefined;
  return createHash(algorithm, opts).update(letter).digest('hex') === match[1];
}

/** Writes a manifest (tests, benchmarks): the fields, and with `sign` the `--` line and the SHA-1 hash line. */
export function formatManifest(fields: Readonly<Record<string, string | number>>, sign = true): Buffer {
  const letter = Buffer.from(
    Object.entries(fields)
      .map(([k, v]) => `${k}${v}\n`)
      .join(''),
  );
  if (!sign) return letter;
  const hash = createHash('sha1').update(letter).digest('hex');
  return Buffer.concat([letter, SEPARATOR, Buffer.from(`${hash}\n`), Buffer.from([0x8f, 0x00, 0x2d, 0x2d, 0x0a])]);
}
