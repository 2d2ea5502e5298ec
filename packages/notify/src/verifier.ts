import * as fs from 'node:fs/promises';
import { inflateSync } from 'node:zlib';
import { errnoOf, errorOf } from '@msgbricks/errors';
import { RepositoryFetchError } from './errors';
import type { Manifest } from './manifest';
import { certificatePath, SignatureError, verifyManifestSignature, verifyWhitelist } from './signature';

export interface ManifestVerifierOptions {
  /** The repository's master public keys (PEM): the whitelist must be signed by one of them. */
  masterKeys: readonly (string | Buffer)[];
  /** Where the repository is: http(s) URLs (a stratum 0 or 1) or local directories, tried in order. */
  locations: readonly string[];
  /** Per download (default 60 s, as the cvmfs client's). */
  timeoutMs?: number;
}

/**
 * Verifies manifests as the cvmfs client does (the whitelist signed by a master key, not expired, naming the
 * repository; the certificate listed in it; the manifest signed by the certificate), fetching the whitelist and the
 * certificate from the repository's locations. The whitelist is fetched each time (it is re-signed every few weeks
 * and may be revoked); a certificate is named by its hash, so it is kept once it verified.
 */
export class ManifestVerifier {
  private readonly certificates = new Map<string, Buffer>();

  constructor(private readonly options: ManifestVerifierOptions) {
    if (options.locations.length === 0) throw new TypeError('a ManifestVerifier needs a location');
  }

  /** Resolves when `manifest` verifies; SignatureError when it does not, RepositoryFetchError when it cannot tell. */
  async verify(manifest: Manifest): Promise<void> {
    const whitelist = verifyWhitelist(await this.file('.cvmfswhitelist'), this.options.masterKeys, manifest.repository);
    const rel = certificatePath(manifest);
    let certificate = this.certificates.get(rel);
    if (certificate === undefined) {
      try {
        certificate = inflateSync(await this.file(rel));
      } catch (err) {
        if (err instanceof RepositoryFetchError) throw err;
        throw new SignatureError(`the certificate ${rel} cannot be decompressed`, { cause: err });
      }
    }
    verifyManifestSignature(manifest, certificate, whitelist);
    this.certificates.set(rel, certificate);
  }

  /** The file from the first location that has it. */
  private async file(rel: string): Promise<Buffer> {
    const problems: string[] = [];
    for (const location of this.options.locations) {
      const base = location.replace(/\/+$/, '');
      if (/^https?:\/\//.test(base)) {
        const url = `${base}/${rel}`;
        try {
          const res = await fetch(url, { signal: AbortSignal.timeout(this.options.timeoutMs ?? 60_000) });
          if (res.status === 200) return Buffer.from(await res.arrayBuffer());
          // Read to the end so that the connection can be reused for the next location or file.
          await res.arrayBuffer().catch(() => undefined);
          problems.push(`${url}: HTTP ${res.status}`);
        } catch (err) {
          problems.push(
            `${url}: ${errorOf(err).cause !== undefined ? errorOf(errorOf(err).cause).message : errorOf(err).message}`,
          );
        }
      } else {
        const file = `${base}/${rel}`;
        try {
          return await fs.readFile(file);
        } catch (err) {
          problems.push(`open(${file}): ${errnoOf(err) ?? errorOf(err).message}`);
        }
      }
    }
    throw new RepositoryFetchError(`cannot get ${rel}: ${problems.join('; ')}`);
  }
}
