import * as fs from 'node:fs/promises';
import type * as http from 'node:http';
import { errnoOf, errorOf, UsageError } from '@msgbricks/errors';
import {
  CvmfsConfigError,
  type Manifest,
  ManifestError,
  ManifestVerifier,
  manifestHashMatches,
  PublicKeyError,
  parseManifest,
  RepositoryFetchError,
  readCvmfsClientConfig,
  readMasterKeys,
  SseParser,
} from '@msgbricks/notify';
import { fetchAll, open } from './http';
import { Logger } from './logger';

/** cvmfs_swissknife notify's exit codes (swissknife_notify.cc), which scripts test. */
export const EXIT = { ok: 0, usage: 1, config: 2, download: 6, open: 7, read: 8, publish: 9 } as const;

const USAGE = `usage: msgnotify -p -u URL -r REPOSITORY_URL_OR_PATH [-T TOKEN] [-v]
       msgnotify -s -u URL -t REPOSITORY [-m MIN_REVISION] [-c] [-k KEYS] [-r REPOSITORY_URL_OR_PATH]
                 [--no-verify] [-T TOKEN] [-v]

cvmfs_swissknife notify compatible. URL is the gateway API root (e.g. http://gw:4929/api/v1).
  -p         publish the repository's .cvmfspublished (downloaded from an http(s) URL, or read from a
             directory or the file itself)
  -s         subscribe: print "repository R is now at revision N" for each newer revision
  -t NAME    the repository to subscribe to
  -m N       report only revisions greater than N (default 0)
  -c         continuous: keep going after the first revision reported
  -k KEYS    the master public key (.pub) or a directory of them that signed the whitelist; by default
             the cvmfs client configuration's (CVMFS_PUBLIC_KEY, CVMFS_KEYS_DIR, /etc/cvmfs/keys/*.pub)
  -r WHERE   with -s: where the whitelist and certificate are (a URL or a directory); by default the cvmfs
             client configuration's CVMFS_SERVER_URL (each tried in turn)
  --no-verify  check each manifest's hash line only, not its signature
  -T TOKEN   bearer token for an authenticated gateway (also MSGNOTIFY_TOKEN)
  -v         verbose
Every manifest's signature is verified as the cvmfs client does (the configuration root is /etc/cvmfs, or
MSGNOTIFY_CVMFS_CONFIG_DIR). Exit codes: 0 ok, 1 bad arguments, refused or no key or URL found, 2 a cvmfs
configuration file the shell refused, 6 download failed, 7/8 local file open/read failed, 9 publish failed.`;

export interface ClientArgs {
  mode: 'publish' | 'subscribe';
  url: URL;
  repository?: string;
  topic?: string;
  minRevision: number;
  continuous: boolean;
  verbose: boolean;
  token?: string;
  /** -k: master public key file or directory (else the cvmfs client configuration's). */
  keys?: string;
  /** --no-verify: hash lines only. */
  noVerify: boolean;
  /** The cvmfs client configuration root (/etc/cvmfs; MSGNOTIFY_CVMFS_CONFIG_DIR). */
  cvmfsConfigDir: string;
}

/** The exit code travels with the error: the top-level catch maps it. */
export class ClientError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ClientError';
  }
}

const WITH_VALUE = new Set(['u', 'r', 't', 'm', 'T', 'k']);

/** getopt-style: `-u URL` or `-uURL`, switches grouped (`-sc`), `--` ends the options; every problem at once. */
export function parseClientArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ClientArgs {
  const flags = new Set<string>();
  const values = new Map<string, string>();
  const problems: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') {
      if (i + 1 < argv.length) problems.push(`unexpected argument ${JSON.stringify(argv[i + 1])}`);
      break;
    }
    if (a === '--help') {
      flags.add('h');
      continue;
    }
    if (a === '--no-verify') {
      flags.add('n');
      continue;
    }
    if (a === '--token') {
      if (i + 1 >= argv.length) problems.push('--token needs a value');
      else values.set('T', argv[++i] as string);
      continue;
    }
    if (!a.startsWith('-') || a === '-' || a.startsWith('--')) {
      problems.push(`unexpected argument ${JSON.stringify(a)}`);
      continue;
    }
    for (let j = 1; j < a.length; j++) {
      const f = a[j] as string;
      if (WITH_VALUE.has(f)) {
        const rest = a.slice(j + 1);
        const v = rest !== '' ? rest : argv[++i];
        if (v === undefined) problems.push(`-${f} needs a value`);
        else if (values.has(f)) problems.push(`-${f} given more than once`);
        else values.set(f, v);
        break;
      }
      if (!'pscvh'.includes(f)) problems.push(`unknown option -${f}`);
      else flags.add(f);
    }
  }
  if (flags.has('h')) throw new UsageError(USAGE, { exitCode: 0 });
  if (flags.has('p') === flags.has('s')) problems.push('exactly one of -p and -s is needed');
  const u = values.get('u');
  let url: URL | undefined;
  if (u === undefined) problems.push('-u URL is needed');
  else {
    try {
      url = new URL(u.replace(/\/+$/, ''));
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      problems.push(`-u ${JSON.stringify(u)} is not an http(s) URL`);
    }
  }
  if (flags.has('p') && !values.has('r')) problems.push('-p needs -r REPOSITORY_URL_OR_PATH');
  if (flags.has('s') && !values.has('t')) problems.push('-s needs -t REPOSITORY');
  if (flags.has('n') && values.has('k')) problems.push('--no-verify and -k contradict each other');
  const m = values.get('m') ?? '0';
  if (!/^\d{1,15}$/.test(m)) problems.push(`-m ${JSON.stringify(m)} is not a revision number`);
  if (problems.length > 0) throw new UsageError(`${problems.join('; ')}\n${USAGE}`, { exitCode: EXIT.usage });
  const token = values.get('T') ?? env.MSGNOTIFY_TOKEN;
  return {
    mode: flags.has('p') ? 'publish' : 'subscribe',
    url: url as URL,
    ...(values.has('r') ? { repository: values.get('r') as string } : {}),
    ...(values.has('t') ? { topic: values.get('t') as string } : {}),
    minRevision: Number(m),
    continuous: flags.has('c'),
    verbose: flags.has('v'),
    ...(token !== undefined && token !== '' ? { token } : {}),
    ...(values.has('k') ? { keys: values.get('k') as string } : {}),
    noVerify: flags.has('n'),
    cvmfsConfigDir: env.MSGNOTIFY_CVMFS_CONFIG_DIR || '/etc/cvmfs',
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The manifest, as cmd_pub.cc gets it: downloaded (60 s time-out, one retry after 0.5-2 s) or read from disk. */
async function loadManifest(source: string, log: Logger): Promise<Buffer> {
  if (/^https?:\/\//.test(source)) {
    const url = new URL(`${source.replace(/\/+$/, '')}/.cvmfspublished`);
    let last: Error | undefined;
    for (let attempt = 0; attempt < 2; attempt++) {
      if (attempt > 0) await sleep(500 + Math.random() * 1500);
      try {
        const res = await fetchAll(url, { timeoutMs: 60_000 });
        if (res.status === 200) return res.body;
        last = new Error(`HTTP ${res.status}`);
      } catch (err) {
        last = errorOf(err);
      }
      log.debug(`download of ${url} failed: ${last.message}`);
    }
    throw new ClientError(`cannot download ${url}: ${last?.message}`, EXIT.download);
  }
  let file = source;
  let handle: fs.FileHandle;
  try {
    if ((await fs.stat(source)).isDirectory()) file = `${source.replace(/\/+$/, '')}/.cvmfspublished`;
    handle = await fs.open(file, 'r');
  } catch (err) {
    throw new ClientError(`cannot open ${file}: ${errnoOf(err) ?? errorOf(err).message}`, EXIT.open, { cause: err });
  }
  try {
    return await handle.readFile();
  } catch (err) {
    throw new ClientError(`cannot read ${file}: ${errnoOf(err) ?? errorOf(err).message}`, EXIT.read, { cause: err });
  } finally {
    await handle.close();
  }
}

/**
 * -s's signature check, as cvmfs_swissknife notify -s and the cvmfs client: the master keys from -k or the cvmfs
 * client configuration, the whitelist and certificate from -r or its CVMFS_SERVER_URL. Undefined with --no-verify.
 */
export async function verifierFor(args: ClientArgs, log: Logger): Promise<ManifestVerifier | undefined> {
  if (args.noVerify) return undefined;
  const topic = args.topic as string;
  const root = args.cvmfsConfigDir;
  try {
    const config =
      args.keys === undefined || args.repository === undefined ? await readCvmfsClientConfig(topic, root) : undefined;
    const keyFiles = args.keys !== undefined ? [args.keys] : (config?.keyFiles ?? []);
    const locations = args.repository !== undefined ? [args.repository] : (config?.serverUrls ?? []);
    const missing: string[] = [];
    if (keyFiles.length === 0)
      missing.push(
        `no public key for ${topic}: give -k KEYS, or set CVMFS_PUBLIC_KEY or CVMFS_KEYS_DIR, or put it in ${root}/keys/`,
      );
    if (locations.length === 0)
      missing.push(`no server URL for ${topic}: give -r REPOSITORY_URL_OR_PATH, or set CVMFS_SERVER_URL`);
    if (missing.length > 0) {
      const read =
        config !== undefined && config.files.length > 0 ? config.files.join(', ') : `no configuration file under ${root}`;
      throw new ClientError(`${missing.join('; ')} (read: ${read}; --no-verify checks hash lines only)`, EXIT.usage);
    }
    log.debug(`verifying ${topic} with ${keyFiles.join(', ')} (${args.keys !== undefined ? '-k' : config?.keysFrom})`);
    const urlsFrom = args.repository !== undefined ? '-r' : `CVMFS_SERVER_URL in ${config?.sources.CVMFS_SERVER_URL}`;
    log.debug(`whitelist and certificate from ${locations.join(', ')} (${urlsFrom})`);
    return new ManifestVerifier({ masterKeys: await readMasterKeys(keyFiles), locations });
  } catch (err) {
    // A file the shell refused is a configuration error; an unreadable key is a bad argument, as -k's always was.
    if (err instanceof CvmfsConfigError) throw new ClientError(err.message, EXIT.config, { cause: err });
    if (err instanceof PublicKeyError) throw new ClientError(err.message, EXIT.usage, { cause: err });
    throw err;
  }
}

/**
 * Why the manifest does not verify, or undefined when it does. A repository that cannot be reached (a stratum
 * restarting) is tried again, 1, 2, 4 and 8 s later: the next revision may be hours away, so ignoring this one
 * at once would leave the subscriber behind; a bad signature is final.
 */
async function verifyPatiently(
  verifier: ManifestVerifier,
  manifest: Manifest,
  log: Logger,
  done: () => boolean,
): Promise<string | undefined> {
  for (let attempt = 0; ; attempt++) {
    try {
      await verifier.verify(manifest);
      return undefined;
    } catch (err) {
      if (!(err instanceof RepositoryFetchError) || attempt === 4 || done()) return errorOf(err).message;
      log.info(`cannot check revision ${manifest.revision} yet (${errorOf(err).message}): again in ${2 ** attempt} s`);
      await sleep(1000 * 2 ** attempt);
    }
  }
}

function authHeaders(args: ClientArgs): Record<string, string> {
  return args.token !== undefined ? { Authorization: `Bearer ${args.token}` } : {};
}

/**
 * -p: publishes the manifest as `{version, timestamp, type, repository, manifest}` (messages.cc's body). An answer
 * other than 2xx fails (the reference took any answer curl got as success); 429, 5xx and network errors are tried
 * again a few times first.
 */
export async function publish(args: ClientArgs, log: Logger): Promise<void> {
  const raw = await loadManifest(args.repository as string, log);
  let repository: string;
  try {
    repository = parseManifest(raw).repository;
  } catch (err) {
    if (err instanceof ManifestError) throw new ClientError(`${args.repository}: ${err.message}`, EXIT.read, { cause: err });
    throw err;
  }
  const body = JSON.stringify({
    version: 1,
    timestamp: new Date().toUTCString(),
    type: 'activity',
    repository,
    manifest: raw.toString('base64'),
  });
  const url = new URL(`${args.url.href}/notifications/publish`);
  let why = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    if (attempt > 0) await sleep(500 * 2 ** (attempt - 1) * (0.5 + Math.random() / 2));
    try {
      const res = await fetchAll(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...authHeaders(args) },
        body,
        timeoutMs: 60_000,
      });
      if (res.status >= 200 && res.status < 300) {
        log.info(`published ${repository} revision ${parseManifest(raw).revision} to ${args.url.origin}`);
        return;
      }
      why = `HTTP ${res.status} ${res.body.toString('utf8').slice(0, 200)}`;
      if (res.status !== 429 && res.status < 500) break;
    } catch (err) {
      why = errorOf(err).message;
    }
    log.debug(`publish attempt ${attempt + 1} failed: ${why}`);
  }
  throw new ClientError(`cannot publish to ${url}: ${why}`, EXIT.publish);
}

/** What a notification says, or why it is ignored. */
function revisionOf(data: string, topic: string): { revision: number; rootHash: string; manifest: Manifest } | string {
  let o: { repository?: unknown; manifest?: unknown };
  try {
    o = JSON.parse(data);
  } catch {
    return 'not JSON';
  }
  if (typeof o.manifest !== 'string') return 'no manifest';
  try {
    const m = parseManifest(Buffer.from(o.manifest, 'base64'));
    if (m.repository !== topic) return `a manifest of ${m.repository}`;
    if (manifestHashMatches(m) === false) return "the manifest's hash line does not match its content";
    return { revision: m.revision, rootHash: m.fields.get('C') ?? '', manifest: m };
  } catch (err) {
    return errorOf(err).message;
  }
}

/**
 * -s: subscribes (SSE), and reconnects for ever with a growing, jittered delay, resuming with Last-Event-ID: the
 * reference's supervisor gave up after 10 immediate retries, so its clients never came back after a gateway
 * restart (cvmfs issue 3678). A 4xx answer is final (a wrong URL, topic or token). Resolves after the first
 * revision reported, unless continuous.
 */
export async function subscribe(args: ClientArgs, log: Logger, signal?: AbortSignal): Promise<void> {
  const topic = args.topic as string;
  const verifier = await verifierFor(args, log);
  let min = args.minRevision;
  let lastEventId = '';
  let delay = 0;
  const url = new URL(`${args.url.href}/notifications/subscribe`);
  url.searchParams.set('repository', topic);
  for (;;) {
    if (signal?.aborted) return;
    if (delay > 0) {
      const wait = Math.round(delay * (0.5 + Math.random() / 2));
      log.info(`reconnecting to ${args.url.origin} in ${wait} ms`);
      await sleep(wait);
    }
    const outcome = await new Promise<'done' | 'lost' | { status: number; text: string }>((resolve) => {
      let settled = false;
      const onAbort = () => finish('done');
      const finish = (v: 'done' | 'lost' | { status: number; text: string }) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        req.destroy();
        resolve(v);
      };
      const headers: Record<string, string> = {
        Accept: 'text/event-stream',
        'Content-Type': 'application/json',
        ...authHeaders(args),
      };
      if (lastEventId !== '') headers['Last-Event-ID'] = lastEventId;
      // The body too, as the cvmfs client sends it: the Go gateway reads only the body, this one either.
      const req = open(url, { headers, body: JSON.stringify({ version: 1, repository: topic }) }, (res: http.IncomingMessage) => {
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            finish({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8').slice(0, 200) }),
          );
          res.on('error', () => finish('lost'));
          return;
        }
        log.debug(`subscribed to ${topic} at ${args.url.origin}${lastEventId !== '' ? ` from revision ${lastEventId}` : ''}`);
        delay = 0;
        const parser = new SseParser();
        // No byte for three heartbeats: the connection is dead even if TCP has not noticed. Only once the server
        // has shown that it sends heartbeats (the cvmfs gateway sends none: its streams may be quiet for hours).
        let idle: NodeJS.Timeout | undefined;
        const arm = () => {
          clearTimeout(idle);
          if (parser.comments > 0) idle = setTimeout(() => finish('lost'), 50_000);
        };
        // Events are handled one after the other (a signature check downloads), in arrival order.
        let queue = Promise.resolve();
        const handle = async (data: string) => {
          if (settled) return;
          const r = revisionOf(data, topic);
          if (typeof r === 'string') return log.warn(`ignored a notification: ${r}`);
          if (r.revision <= min) return log.debug(`revision ${r.revision} of ${topic} is not newer than ${min}`);
          if (verifier !== undefined) {
            const problem = await verifyPatiently(verifier, r.manifest, log, () => settled);
            if (problem !== undefined) return log.warn(`ignored revision ${r.revision} of ${topic}: ${problem}`);
          }
          if (settled || r.revision <= min) return;
          min = r.revision;
          log.out(`repository ${topic} is now at revision ${r.revision}`);
          if (args.verbose) log.info(`repository ${topic} revision ${r.revision} root hash ${r.rootHash}`);
          if (!args.continuous) finish('done');
        };
        res.on('data', (chunk: Buffer) => {
          for (const e of parser.push(chunk)) {
            if (e.id !== '') lastEventId = e.id;
            if (e.event === 'message') queue = queue.then(() => handle(e.data));
          }
          arm();
        });
        res.on('close', () => {
          clearTimeout(idle);
          finish('lost');
        });
      });
      req.on('error', (err) => {
        log.debug(`connection to ${args.url.origin}: ${err.message}`);
        finish('lost');
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    if (outcome === 'done') return;
    if (outcome !== 'lost') {
      if (outcome.status >= 400 && outcome.status < 500 && outcome.status !== 429) {
        throw new ClientError(`${url.origin} refused the subscription: HTTP ${outcome.status} ${outcome.text}`, EXIT.usage);
      }
      log.warn(`${url.origin} answered HTTP ${outcome.status}`);
    } else log.warn(`connection to ${args.url.origin} lost`);
    delay = Math.min(30_000, Math.max(500, delay * 2));
  }
}

/** The whole command: parse, run, map every failure to its exit code. */
export async function runClient(argv: readonly string[]): Promise<number> {
  const log = new Logger('msgnotify', 'warn');
  try {
    const args = parseClientArgs(argv);
    log.level = args.verbose ? 'debug' : 'warn';
    if (args.mode === 'publish') await publish(args, log);
    else {
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        await subscribe(args, log, stop.signal);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    }
    return EXIT.ok;
  } catch (err) {
    if (err instanceof UsageError) {
      (err.exitCode === 0 ? process.stdout : process.stderr).write(`${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof ClientError) {
      log.error(err.message);
      return err.exitCode;
    }
    log.error(`unexpected failure: ${errorOf(err).message}`);
    if (process.env.MSGNOTIFY_DEBUG === '1') process.stderr.write(`${errorOf(err).stack}\n`);
    return 1;
  }
}
