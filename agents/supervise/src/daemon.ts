/**
 * The running supervisor: the tree, its control socket, its pid file, /healthz and /metrics, and the signals
 * (TERM and INT stop everything in reverse order and exit 0). Resolves with the exit code once stopped.
 */
import * as fs from 'node:fs';
import type * as http from 'node:http';
import type * as net from 'node:net';
import { errnoOf, UsageError } from '@msgbricks/errors';
import { Supervision, type SupervisionConfig } from '@msgbricks/supervisor';
import { handle, serve } from './control';
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

/** `load` reads the configuration again (SIGHUP) with the command line's overrides. */
export async function runDaemon(config: SupervisionConfig, socket: string, load: () => SupervisionConfig): Promise<number> {
  const log = makeLogger(config.global);
  let observe: ((s: Supervision) => void) | undefined;
  const make = (c: SupervisionConfig): Supervision => {
    const s = new Supervision(c, {
      log,
      output: (_path, source, chunk) => (source === 'out' ? process.stdout : process.stderr).write(chunk),
    });
    s.on('gave-up', () => void end('gave-up'));
    observe?.(s);
    return s;
  };
  let sup = make(config);
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
      sup.detach();
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
  control = await serve(socket, (req) =>
    handle(sup, req, (how) => {
      // Answered first, then stopped: the client gets its reply before the socket goes.
      setImmediate(() => void end(how));
    }),
  );
  if (config.global.pidfile !== undefined) writePidfile(config.global.pidfile);
  if (config.global.http !== undefined) {
    const served = await serveHttp(config.global.http, () => sup);
    web = served.server;
    observe = served.observe;
    observe(sup);
  }
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => void end('stop'));
  // SIGHUP: the configuration read again. Invalid: every problem logged, the running tree kept. Valid: the running
  // tree stopped (reverse order) and the new one started; reloads run one after the other.
  let reloading = Promise.resolve();
  process.on('SIGHUP', () => {
    reloading = reloading.then(async () => {
      if (ending) return;
      let next: SupervisionConfig;
      try {
        next = load();
      } catch (err) {
        log('error', `SIGHUP: configuration not reloaded, the running tree is kept:\n${(err as Error).message}`);
        return;
      }
      for (const k of FIXED_KEYS) {
        if (next.global[k] !== config.global[k])
          log('warning', `SIGHUP: ${k} changed: applied at the next start of the supervisor only`);
      }
      log('info', 'SIGHUP: configuration reloaded: stopping the running tree, starting the new one');
      await sup.stop();
      if (ending) return;
      sup = make({ ...next, global: { ...next.global, ...Object.fromEntries(FIXED_KEYS.map((k) => [k, config.global[k]])) } });
      await sup.start();
    });
  });
  log('info', `supervising ${config.file} (control socket ${socket})`);
  await sup.start();
  return finished;
}
