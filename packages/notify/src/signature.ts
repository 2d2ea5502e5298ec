import { constants, publicDecrypt, verify, X509Certificate } from 'node:crypto';
import { NotifyError } from './errors';
import { hashLineMatches, type Manifest } from './manifest';

/** A manifest, whitelist or certificate that does not verify: `message` says which check failed. */
export class SignatureError extends NotifyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_NOTIFY_SIGNATURE', message, options);
  }
}

/** A repository's `.cvmfswhitelist`, verified: the certificates (SHA-1 fingerprints) allowed to sign its manifests. */
export interface Whitelist {
  readonly repository: string;
  readonly expires: Date;
  /** Upper-case hex with colons, as X509Certificate.fingerprint. */
  readonly fingerprints: ReadonlySet<string>;
}

/** `YYYYMMDDHHMMSS`, UTC. */
function timeOf(s: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(s);
  if (m === null) return undefined;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  return new Date(Date.UTC(y, mo - 1, d, h, mi, se));
}

/** Splits a signed cvmfs text (manifest, whitelist) into its letter, hash line and signature. */
function splitSigned(data: Buffer): { letter: Buffer; hash: string; signature: Buffer } | undefined {
  const at = data.subarray(0, 3).toString() === '--\n' ? 0 : data.indexOf('\n--\n') + 1;
  if (at <= 0 && data.subarray(0, 3).toString() !== '--\n') return undefined;
  const rest = data.subarray(at + 3);
  const nl = rest.indexOf('\n');
  if (nl < 0) return undefined;
  return { letter: data.subarray(0, at), hash: rest.subarray(0, nl).toString('latin1'), signature: rest.subarray(nl + 1) };
}

/**
 * Verifies a `.cvmfswhitelist` as the cvmfs client does: its hash line is the hash of its text (SHA-1, RIPEMD-160
 * or SHAKE-128, by its suffix), one of the master
 * public keys (`/etc/cvmfs/keys/*.pub`) recovers that hash line from the signature (RSA, PKCS#1 padding), it names
 * `repository` and has not expired at `now`.
 */
export function verifyWhitelist(
  data: Buffer,
  masterKeys: readonly (string | Buffer)[],
  repository: string,
  now = new Date(),
): Whitelist {
  const signed = splitSigned(data);
  if (signed === undefined) throw new SignatureError('the whitelist is not signed');
  if (hashLineMatches(signed.letter, signed.hash) !== true) {
    throw new SignatureError("the whitelist's hash line does not match its content");
  }
  const trusted = masterKeys.some((key) => {
    try {
      return publicDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, signed.signature).toString('latin1') === signed.hash;
    } catch {
      return false;
    }
  });
  if (!trusted) throw new SignatureError('the whitelist is not signed by any of the master keys');
  const lines = signed.letter.toString('utf8').split('\n');
  let expires: Date | undefined;
  let name: string | undefined;
  const fingerprints = new Set<string>();
  for (const line of lines.slice(1)) {
    // A fingerprint first: one that starts with E (one certificate in sixteen) is no expiry line.
    const fp = /^([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){19})\b/.exec(line);
    if (fp) fingerprints.add((fp[1] as string).toUpperCase());
    else if (line.startsWith('E')) expires = timeOf(line.slice(1));
    else if (line.startsWith('N')) name = line.slice(1);
  }
  if (name !== repository) throw new SignatureError(`the whitelist is ${JSON.stringify(name)}'s, not ${repository}'s`);
  if (expires === undefined || expires.getTime() < now.getTime()) throw new SignatureError('the whitelist has expired');
  return { repository, expires, fingerprints };
}

/**
 * Verifies a manifest's signature as the cvmfs client does: its hash line matches its content (whatever the
 * repository's hash algorithm), the certificate is in the whitelist, and the certificate's key signed the hash line
 * (RSA with SHA-1 over the line, suffix included).
 */
export function verifyManifestSignature(manifest: Manifest, certificatePem: string | Buffer, whitelist: Whitelist): void {
  if (manifest.hash === undefined) throw new SignatureError('the manifest is not signed');
  if (hashLineMatches(manifest.letter, manifest.hash) !== true) {
    throw new SignatureError("the manifest's hash line does not match its content");
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certificatePem);
  } catch (err) {
    throw new SignatureError('the certificate cannot be read', { cause: err });
  }
  if (!whitelist.fingerprints.has(cert.fingerprint))
    throw new SignatureError(`the certificate ${cert.fingerprint} is not in the whitelist`);
  if (!verify('sha1', Buffer.from(manifest.hash, 'latin1'), cert.publicKey, manifest.signature)) {
    throw new SignatureError("the manifest's signature does not verify with its certificate");
  }
}

/** Where a repository keeps the certificate whose hash is the manifest's X field (zlib-compressed PEM). */
export function certificatePath(manifest: Manifest): string {
  const x = manifest.fields.get('X');
  if (x === undefined || !/^[0-9a-f]{40}/.test(x)) throw new SignatureError('the manifest names no certificate (X line)');
  return `data/${x.slice(0, 2)}/${x.slice(2)}X`;
}
