/**
 * The running supervisor: the tree, its control socket, its pid file, /healthz and /metrics, and the signals
 * (TERM and INT stop everything in reverse order and exit 0). Resolves with the exit code once stopped.
 */
import * as fs from 'node:fs';
import type * as http from 'node:http';
import type * as net from 'node:net';
import { errnoOf, UsageError } from '@msgbricks/errors';
import {
  type LeftChild,
  type ReloadChange,
  readStore,
  Supervision,
  type SupervisionConfig,
  writeStore,
} from '@msgbricks/supervisor';
import { handle, type Reply, serve } from './control';
import { serveHttp } from './http';
import { makeLogger } from './logger';

function writePidfile(file: string): void {
  try {
    fs.writeFileSync(file, `${process.pid}\n`);
  } catch (err) {
    throw new UsageError(`cannot write(${file}): ${errnoOf(err) ?? String(err)}`, { cause: err });
  }
}

/** Global keys a reload does not apply: they belong to the running process (its socket, endpoint, pid file, log). */
const FIXED_KEYS = ['control', 'http', 'pidfile', 'log', 'logfile', 'loglevel', 'logname'] as const;

/** Where stop_supervisor lists the processes it leaves running, for the next supervisor on the same socket. */
const leftFile = (socket: string): string => `${socket}.children.json`;

/** The processes a previous supervisor left (stop_supervisor), read once; a file that is not valid is reported. */
function readLeft(file: string, log: ReturnType<typeof makeLogger>): LeftChild[] {
  const { data, problem } = readStore(file);
  if (problem !== undefined) log('warning', problem);
  const list = Array.isArray(data.children) ? data.children : [];
  const valid = list.filter(
    (l): l is LeftChild =>
      typeof l === 'object' &&
      l !== null &&
      typeof l.path === 'string' &&
      Number.isInteger(l.pid) &&
      l.pid > 0 &&
      typeof l.start === 'string' &&
      typeof l.run === 'string',
  );
  if (valid.length !== list.length) log('warning', `${file}: ${list.length - valid.length} entries not valid: ignored`);
  return valid;
}

function describe(c: ReloadChange): string {
  if (c.path === '') return `${c.detail}: applied`;
  return `${c.path}: ${c.change}${c.detail === undefined ? '' : ` (${c.detail})`}`;
}

/** `load` reads the configuration again (SIGHUP, `reload`) with the command line's overrides. */
export async function runDaemon(config: SupervisionConfig, socket: string, load: () => SupervisionConfig): Promise<number> {
  const log = makeLogger(config.global);
  const sup = new Supervision(config, {
    log,
    output: (_path, source, chunk) => (source === 'out' ? process.stdout : process.stderr).write(chunk),
  });
  sup.on('gave-up', () => void end('gave-up'));
  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => {
    finish = resolve;
  });
  let control: net.Server | undefined;
  let web: http.Server | undefined;
  let ending = false;
  const end = async (how: 'stop' | 'detach' | 'gave-up'): Promise<void> => {
    if (ending) return;
    ending = true;
    if (how === 'detach') {
      log('info', 'stop_supervisor: leaving the children running');
      const left = sup.detach();
      try {
        writeStore(leftFile(socket), { children: left });
      } catch (err) {
        log('error', `stop_supervisor: ${(err as Error).message}: the next supervisor will not adopt the children`);
      }
    } else {
      log('info', how === 'stop' ? 'stopping the children in reverse order' : 'supervision failed: exiting');
      await sup.stop();
    }
    control?.close();
    web?.close();
    fs.rmSync(socket, { force: true });
    if (config.global.pidfile !== undefined) fs.rmSync(config.global.pidfile, { force: true });
    finish(how === 'gave-up' ? 1 : 0);
  };
  // The socket first: a second supervisor on the same configuration stops here, before starting any child.
  // The configuration read again. Invalid: every problem logged (and answered), the running tree kept. Valid: the
  // difference applied to the running tree (Supervision.reload: what did not change keeps running).
  const reload = async (why: string): Promise<Reply> => {
    if (ending) return { ok: false, code: 1, lines: ['the supervisor is stopping'] };
    let next: SupervisionConfig;
    try {
      next = load();
    } catch (err) {
      const message = (err as Error).message;
      log('error', `${why}: configuration not reloaded, the running tree is kept:\n${message}`);
      return { ok: false, code: 2, lines: ['configuration not reloaded, the running tree is kept:', ...message.split('\n')] };
    }
    for (const k of FIXED_KEYS) {
      if (next.global[k] !== config.global[k])
        log('warning', `${why}: ${k} changed: applied at the next start of the supervisor only`);
    }
    const fixed = Object.fromEntries(FIXED_KEYS.map((k) => [k, config.global[k]]));
    const changes = await sup.reload({ ...next, global: { ...next.global, ...fixed } });
    const lines = changes.length === 0 ? ['nothing changed'] : changes.map(describe);
    for (const l of lines) log('info', `${why}: ${l}`);
    return { ok: true, code: 0, lines };
  };
  // Requests wait until the pid file and the HTTP endpoint are set up: an answer (`start --daemon` waits for one)
  // means the supervisor runs; if they fail, the requests get that failure and the supervisor exits.
  let setUp: (err?: unknown) => void = () => undefined;
  const initialised = new Promise<void>((resolve, reject) => {
    setUp = (err) => (err === undefined ? resolve() : reject(err));
  });
  initialised.catch(() => undefined);
  control = await serve(socket, async (req) => {
    await initialised;
    return handle(
      sup,
      req,
      (how) => {
        // Answered first, then stopped: the client gets its reply before the socket goes.
        setImmediate(() => void end(how));
      },
      () => reload('reload'),
    );
  });
  try {
    if (config.global.pidfile !== undefined) writePidfile(config.global.pidfile);
    if (config.global.http !== undefined) {
      const served = await serveHttp(config.global.http, () => sup);
      web = served.server;
      served.observe(sup);
    }
  } catch (err) {
    setUp(err);
    control.close();
    fs.rmSync(socket, { force: true });
    throw err;
  }
  setUp();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => void end('stop'));
  process.on('SIGHUP', () => void reload('SIGHUP'));
  log('info', `supervising ${config.file} (control socket ${socket})`);
  // The socket is ours: no other supervisor of this configuration runs, what the last one left is ours to take.
  const left = readLeft(leftFile(socket), log);
  fs.rmSync(leftFile(socket), { force: true });
  for (const line of await sup.adopt(left)) log('info', line);
  await sup.start();
  return finished;
}
