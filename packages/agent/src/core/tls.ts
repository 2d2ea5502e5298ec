/**
 * The TLS settings of a broker connection, one shape for every protocol (cert, key, ca, passphrase, verify, and
 * the name to check), merged with what an `x509` credential says, resolved once (files read) into Node's
 * tls.connect options.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { errnoOf } from '@msgbricks/errors';
import type { Credential } from './credential';
import { TlsError } from './errors';

/** A PEM file's path, or PEM contents. */
export type Pem = string | Buffer;

export interface TlsSettings {
  /** The client certificate (an `x509` credential's `cert` replaces it). */
  cert?: Pem;
  /** Its private key (an `x509` credential's `key` replaces it). */
  key?: Pem;
  /** The key's passphrase (an `x509` credential's `pass` replaces it). */
  passphrase?: string;
  /**
   * The CAs to trust instead of Node's: PEM files, directories of `*.pem` / `*.crt` files (Authen::Credential's
   * `ca`), or PEM contents. An `x509` credential's `ca` and `ca_file` add to them.
   */
  ca?: Pem | readonly Pem[];
  /** Whether the broker's certificate must be signed by a trusted CA and name the broker (default true). */
  verify?: boolean;
  /** The name the broker's certificate must carry (default: the URI's host when it is a name, not an address). */
  servername?: string;
}

/** TLS settings read and merged: what tls.connect gets for every server of a connection. */
export interface ResolvedTls {
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly passphrase?: string;
  readonly ca?: readonly Buffer[];
  readonly verify: boolean;
  readonly servername?: string;
  /** True when a client certificate is presented (SASL EXTERNAL for AMQP). */
  readonly clientCertificate: boolean;
}

function readPem(what: string, pem: Pem): Buffer {
  if (Buffer.isBuffer(pem)) return pem;
  try {
    return readFileSync(pem);
  } catch (err) {
    throw new TlsError(`cannot read the TLS ${what} ${pem}: ${errnoOf(err) ?? (err as Error).message}`, pem, { cause: err });
  }
}

/** A CA setting: a file, a directory of `*.pem` and `*.crt` files, or contents. */
function readCa(pem: Pem): Buffer[] {
  if (Buffer.isBuffer(pem)) return [pem];
  let entries: string[];
  try {
    if (!statSync(pem).isDirectory()) return [readPem('CA file', pem)];
    entries = readdirSync(pem);
  } catch (err) {
    if (err instanceof TlsError) throw err;
    throw new TlsError(`cannot read the TLS CA ${pem}: ${errnoOf(err) ?? (err as Error).message}`, pem, { cause: err });
  }
  return entries
    .filter((f) => /\.(pem|crt)$/i.test(f))
    .sort()
    .map((f) => readPem('CA file', join(pem, f)));
}

/** Reads the settings' files and merges in the `x509` credential, if any; TlsError when a file cannot be read. */
export function resolveTls(settings: TlsSettings | undefined, x509: Credential | undefined): ResolvedTls {
  const s = settings ?? {};
  const cas: Pem[] = s.ca === undefined ? [] : Array.isArray(s.ca) ? [...(s.ca as readonly Pem[])] : [s.ca as Pem];
  let cert = s.cert;
  let key = s.key;
  let passphrase = s.passphrase;
  if (x509 !== undefined) {
    cert = x509.cert;
    key = x509.key;
    if (x509.pass !== undefined) passphrase = x509.pass;
    if (x509.ca_file !== undefined) cas.push(x509.ca_file);
    if (x509.ca !== undefined) cas.push(x509.ca);
  }
  const ca = cas.flatMap(readCa);
  return {
    cert: cert === undefined ? undefined : readPem('certificate', cert),
    key: key === undefined ? undefined : readPem('key', key),
    passphrase,
    ca: ca.length > 0 ? ca : undefined,
    verify: s.verify ?? true,
    servername: s.servername,
    clientCertificate: cert !== undefined,
  };
}

/**
 * tls.connect's options for one server. The name checked (and sent as SNI) is the given servername, else the
 * host when it is a name: an IP address in SNI is not allowed (Node warns), so then none is sent (the empty string,
 * which rhea would otherwise replace with the host).
 */
export function tlsConnectOptions(t: ResolvedTls, host: string): ConnectionOptions {
  const o: ConnectionOptions = {
    servername: t.servername ?? (isIP(host) ? '' : host),
    rejectUnauthorized: t.verify,
  };
  if (t.cert !== undefined) o.cert = t.cert;
  if (t.key !== undefined) o.key = t.key;
  if (t.passphrase !== undefined) o.passphrase = t.passphrase;
  if (t.ca !== undefined) o.ca = [...t.ca];
  return o;
}
