// A signed cvmfs repository on disk, as cvmfs_server lays it out: a master key pair (its public half is what clients
// keep in /etc/cvmfs/keys), a certificate and its key, `.cvmfswhitelist` signed by the master key, the certificate
// zlib-compressed under data/, and `.cvmfspublished` manifests signed with the certificate's key.
import { constants, createHash, generateKeyPairSync, privateEncrypt, sign, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { deflateSync } from 'node:zlib';
import { makeTlsMaterial } from '@msgbricks/test-support';

export interface SignedRepo {
  dir: string;
  repository: string;
  /** PEM of the master public key (a `.pub` file's content). */
  masterPub: string;
  masterPubFile: string;
  /** Writes `.cvmfspublished` at `revision` (signed; `badSignature` flips a byte of the signature). */
  publish(revision: number, badSignature?: boolean, algorithm?: HashAlgorithm): Buffer;
}

/** A repository's hash algorithm (CVMFS_HASH_ALGORITHM): its hash lines carry a suffix unless SHA-1. */
export type HashAlgorithm = 'sha1' | 'rmd160' | 'shake128';

/** A cvmfs signed text: the letter, `--`, its hash line (with the algorithm's suffix), then the signature of that line. */
export function signedText(letter: string, signature: (hash: string) => Buffer, algorithm: HashAlgorithm = 'sha1'): Buffer {
  const digest =
    algorithm === 'sha1'
      ? createHash('sha1').update(letter).digest('hex')
      : algorithm === 'rmd160'
        ? `${createHash('ripemd160').update(letter).digest('hex')}-rmd160`
        : `${createHash('shake128', { outputLength: 20 }).update(letter).digest('hex')}-shake128`;
  return Buffer.concat([Buffer.from(`${letter}--\n${digest}\n`), signature(digest)]);
}

export function makeSignedRepo(
  root: string,
  repository: string,
  opts: { expired?: boolean; otherMaster?: boolean } = {},
): SignedRepo {
  const dir = path.join(root, repository);
  fs.mkdirSync(dir, { recursive: true });
  const tls = makeTlsMaterial(path.join(root, `${repository}-tls`));
  const certPem = fs.readFileSync(tls.certFile, 'utf8');
  const certKey = fs.readFileSync(tls.keyFile, 'utf8');
  const master = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signer = opts.otherMaster ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : master;
  const masterPub = master.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const masterPubFile = path.join(root, `${repository}.pub`);
  fs.writeFileSync(masterPubFile, masterPub);
  const fingerprint = new X509Certificate(certPem).fingerprint;
  const whitelist = `20261201000000\nE${opts.expired ? '20200101000000' : '20991231000000'}\nN${repository}\n${fingerprint}\n`;
  fs.writeFileSync(
    path.join(dir, '.cvmfswhitelist'),
    signedText(whitelist, (hash) =>
      privateEncrypt({ key: signer.privateKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.from(hash)),
    ),
  );
  const certHash = createHash('sha1').update(certPem).digest('hex');
  fs.mkdirSync(path.join(dir, 'data', certHash.slice(0, 2)), { recursive: true });
  fs.writeFileSync(path.join(dir, 'data', certHash.slice(0, 2), `${certHash.slice(2)}X`), deflateSync(certPem));
  return {
    dir,
    repository,
    masterPub,
    masterPubFile,
    publish(revision, badSignature = false, algorithm = 'sha1') {
      const letter = `C${'c'.repeat(40)}\nB4096\nD240\nS${revision}\nN${repository}\nX${certHash}\nT${1700000000 + revision}\n`;
      const data = signedText(
        letter,
        (hash) => {
          const sig = sign('sha1', Buffer.from(hash), certKey);
          if (badSignature) sig[10] = (sig[10] as number) ^ 0xff;
          return sig;
        },
        algorithm,
      );
      fs.writeFileSync(path.join(dir, '.cvmfspublished'), data);
      return data;
    },
  };
}
