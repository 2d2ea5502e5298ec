import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { errnoOf, errorOf } from '@msgbricks/errors';
import { CvmfsConfigError, PublicKeyError } from './errors';

/** What a cvmfs client's configuration says about one repository, and where each value came from. */
export interface CvmfsClientConfig {
  repository: string;
  /** CVMFS_SERVER_URL split on `;`, with @fqrn@ and @org@ replaced, in order (the first is tried first). */
  serverUrls: string[];
  /** The master public key files: CVMFS_PUBLIC_KEY (`:`-separated), else CVMFS_KEYS_DIR's *.pub, else <root>/keys/*.pub. */
  keyFiles: string[];
  /** Which rule gave keyFiles, and from which file, for messages. */
  keysFrom: string;
  /** Parameter -> the file that set it last, for messages. */
  sources: Record<string, string>;
  /** The files read, in order. */
  files: string[];
}

const PARAMETERS = ['CVMFS_SERVER_URL', 'CVMFS_KEYS_DIR', 'CVMFS_PUBLIC_KEY'] as const;

/**
 * Sources the files as cvmfs's OptionsManager::ParseDefault does, least specific first, each by /bin/sh from its own
 * directory with CVMFS_FQRN set (cvmfs feeds each line to a shell, so the files may use parameters, `if` and shell
 * arithmetic). The config repository's files are read where CVMFS_CONFIG_REPOSITORY says at that point, and cannot
 * change it (cvmfs protects it from them); the local files can (default.local usually sets it).
 * Last, a publisher's `repositories.d/<repository>/client.conf`, what `cvmfs_swissknife notify -s` reads, so msgnotify
 * -s works on a stratum 0 too. After each file the parameters we need go to fd 3 (a file may print on stdout), NUL-separated.
 */
const SCRIPT = `
__mn_src() {
  [ -f "$1" ] || return 0
  cd "\${1%/*}" || return 0
  . "$1" >&2
  printf '%s\\0%s\\0%s\\0%s\\0' "$1" "\${CVMFS_SERVER_URL-}" "\${CVMFS_KEYS_DIR-}" "\${CVMFS_PUBLIC_KEY-}" >&3
}
__mn_ext() {
  __mn_cr=\${CVMFS_CONFIG_REPOSITORY-}
  [ -n "$__mn_cr" ] || return 0
  __mn_src "\${CVMFS_MOUNT_DIR:-/cvmfs}/$__mn_cr/etc/cvmfs/$1"
  CVMFS_CONFIG_REPOSITORY=$__mn_cr
}
__mn_src "$__MN_ROOT/default.conf"
for __mn_f in "$__MN_ROOT"/default.d/*.conf; do __mn_src "$__mn_f"; done
__mn_ext default.conf
__mn_src "$__MN_ROOT/default.local"
__mn_ext "domain.d/$__MN_DOMAIN.conf"
__mn_src "$__MN_ROOT/domain.d/$__MN_DOMAIN.conf"
__mn_src "$__MN_ROOT/domain.d/$__MN_DOMAIN.local"
__mn_ext "config.d/$CVMFS_FQRN.conf"
__mn_src "$__MN_ROOT/config.d/$CVMFS_FQRN.conf"
__mn_src "$__MN_ROOT/config.d/$CVMFS_FQRN.local"
__mn_src "$__MN_ROOT/repositories.d/$CVMFS_FQRN/client.conf"
`;

/** A CVMFS_SERVER_URL entry for `repository`: @fqrn@ is the repository, @org@ its first label. */
export function expandServerUrl(template: string, repository: string): string {
  const org = repository.split('.')[0] as string;
  return template.replaceAll('@fqrn@', repository).replaceAll('@org@', org);
}

async function pubFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return [];
    throw new CvmfsConfigError(`cannot list ${dir} (readdir: ${errnoOf(err) ?? errorOf(err).message})`, { cause: err });
  }
  return names
    .filter((n) => n.endsWith('.pub'))
    .sort()
    .map((n) => `${dir.replace(/\/+$/, '')}/${n}`);
}

/**
 * Reads the cvmfs client configuration of `repository` under `root` (/etc/cvmfs): default.conf, default.d/*.conf,
 * the config repository's default.conf, default.local, then domain.d/<domain>.conf and .local, then
 * config.d/<repository>.conf and .local (with the config repository's copy before each of ours), and a stratum 0's
 * repositories.d/<repository>/client.conf, later files overriding earlier ones. Neither a URL nor a key is required here: the caller says what it misses.
 */
export async function readCvmfsClientConfig(repository: string, root = '/etc/cvmfs'): Promise<CvmfsClientConfig> {
  const domain = repository.split('.').slice(1).join('.');
  const { out, err, code } = await new Promise<{ out: Buffer; err: string; code: number | null }>((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', SCRIPT], {
      cwd: '/',
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        LC_ALL: 'C',
        CVMFS_FQRN: repository,
        __MN_ROOT: root,
        __MN_DOMAIN: domain,
      },
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    });
    const outs: Buffer[] = [];
    const errs: Buffer[] = [];
    child.stdio[3]?.on('data', (c: Buffer) => outs.push(c));
    child.stderr?.on('data', (c: Buffer) => errs.push(c));
    child.on('error', reject);
    child.on('close', (c) => resolve({ out: Buffer.concat(outs), err: Buffer.concat(errs).toString('utf8'), code: c }));
  }).catch((e: unknown) => {
    throw new CvmfsConfigError(`cannot run /bin/sh to read ${root}: ${errorOf(e).message}`, { cause: e });
  });
  if (code !== 0) {
    throw new CvmfsConfigError(`cannot read the cvmfs configuration under ${root}: ${err.trim() || `/bin/sh exited ${code}`}`);
  }
  const fields = out.toString('utf8').split('\0');
  const values: Record<string, string> = {};
  const sources: Record<string, string> = {};
  const files: string[] = [];
  for (let i = 0; i + PARAMETERS.length < fields.length; i += PARAMETERS.length + 1) {
    const file = fields[i] as string;
    files.push(file);
    PARAMETERS.forEach((p, j) => {
      const v = fields[i + j + 1] as string;
      if (v !== (values[p] ?? '')) sources[p] = file;
      values[p] = v;
    });
  }
  const serverUrls = (values.CVMFS_SERVER_URL ?? '')
    .split(';')
    .map((u) => u.trim())
    .filter((u) => u !== '')
    .map((u) => expandServerUrl(u, repository));
  let keyFiles: string[];
  let keysFrom: string;
  if ((values.CVMFS_PUBLIC_KEY ?? '') !== '') {
    keyFiles = (values.CVMFS_PUBLIC_KEY as string).split(':').filter((f) => f !== '');
    keysFrom = `CVMFS_PUBLIC_KEY in ${sources.CVMFS_PUBLIC_KEY}`;
  } else if ((values.CVMFS_KEYS_DIR ?? '') !== '') {
    keyFiles = await pubFiles(values.CVMFS_KEYS_DIR as string);
    keysFrom = `CVMFS_KEYS_DIR in ${sources.CVMFS_KEYS_DIR}`;
  } else {
    keyFiles = await pubFiles(`${root.replace(/\/+$/, '')}/keys`);
    keysFrom = `the default ${root.replace(/\/+$/, '')}/keys/*.pub`;
  }
  return { repository, serverUrls, keyFiles, keysFrom, sources, files };
}

/** Reads master public keys (PEM) from files or directories of *.pub; a file that cannot be read is named. */
export async function readMasterKeys(paths: readonly string[]): Promise<string[]> {
  const keys: string[] = [];
  for (const p of paths) {
    try {
      if ((await fs.stat(p)).isDirectory()) {
        const files = await pubFiles(p);
        if (files.length === 0) throw new PublicKeyError(`${p}: no .pub file`);
        for (const f of files) keys.push(await fs.readFile(f, 'utf8'));
      } else keys.push(await fs.readFile(p, 'utf8'));
    } catch (err) {
      if (err instanceof PublicKeyError) throw err;
      throw new PublicKeyError(`cannot read the public key ${p} (${errnoOf(err) ?? errorOf(err).message})`, { cause: err });
    }
  }
  return keys;
}
