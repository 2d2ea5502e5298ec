import * as fs from 'node:fs/promises';
import type * as http from 'node:http';
import { errnoOf, errorOf, UsageError } from '@msgbricks/errors';
import { ManifestError, manifestHashMatches, parseManifest, SseParser } from '@msgbricks/notify';
import { fetchAll, open } from './http';
import { Logger } from './logger';

/** cvmfs_swissknife notify's exit codes (swissknife_notify.cc), which scripts test. */
export const EXIT = { ok: 0, usage: 1, download: 6, open: 7, read: 8, publish: 9 } as const;

const USAGE = `usage: msgnotify -p -u URL -r REPOSITORY_URL_OR_PATH [-T TOKEN] [-v]
       msgnotify -s -u URL -t REPOSITORY [-m MIN_REVISION] [-c] [-T TOKEN] [-v]

cvmfs_swissknife notify compatible. URL is the gateway API root (e.g. http://gw:4929/api/v1).
  -p         publish the repository's .cvmfspublished (downloaded from an http(s) URL, or read from a
             directory or the file itself)
  -s         subscribe: print "repository R is now at revision N" for each newer revision
  -t NAME    the repository to subscribe to
  -m N       report only revisions greater than N (default 0)
  -c         continuous: keep going after the first revision reported
  -T TOKEN   bearer token for an authenticated gateway (also MSGNOTIFY_TOKEN)
  -v         verbose
Exit codes: 0 ok, 1 bad arguments or refused, 6 download failed, 7/8 local file open/read failed, 9 publish failed.`;

export interface ClientArgs {
  mode: 'publish' | 'subscribe';
  url: URL;
  repository?: string;
  topic?: string;
  minRevision: number;
  continuous: boolean;
  verbose: boolean;
  token?: string;
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

const WITH_VALUE = new Set(['u', 'r', 't', 'm', 'T']);

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
function revisionOf(data: string, topic: string): { revision: number; rootHash: string } | string {
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
    return { revision: m.revision, rootHash: m.fields.get('C') ?? '' };
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
      const finish = (v: 'done' | 'lost' | { status: number; text: string }) => {
        if (settled) return;
        settled = true;
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
        // No byte for three heartbeats: the connection is dead even if TCP has not noticed.
        let idle: NodeJS.Timeout | undefined;
        const arm = () => {
          clearTimeout(idle);
          idle = setTimeout(() => finish('lost'), 50_000);
        };
        arm();
        res.on('data', (chunk: Buffer) => {
          arm();
          for (const e of parser.push(chunk)) {
            if (e.id !== '') lastEventId = e.id;
            if (e.event !== 'message') continue;
            const r = revisionOf(e.data, topic);
            if (typeof r === 'string') {
              log.warn(`ignored a notification: ${r}`);
              continue;
            }
            if (r.revision <= min) {
              log.debug(`revision ${r.revision} of ${topic} is not newer than ${min}`);
              continue;
            }
            min = r.revision;
            log.out(`repository ${topic} is now at revision ${r.revision}`);
            if (args.verbose) log.info(`repository ${topic} revision ${r.revision} root hash ${r.rootHash}`);
            if (!args.continuous) return finish('done');
          }
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
      signal?.addEventListener('abort', () => finish('done'), { once: true });
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
