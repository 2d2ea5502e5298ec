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

export async function runDaemon(config: SupervisionConfig, socket: string): Promise<number> {
  const log = makeLogger(config.global);
  const sup = new Supervision(config, {
    log,
    output: (_path, source, chunk) => (source === 'out' ? process.stdout : process.stderr).write(chunk),
  });
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
  if (config.global.http !== undefined) web = await serveHttp(config.global.http, sup);
  sup.on('gave-up', () => void end('gave-up'));
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => void end('stop'));
  // SIGHUP would end the process by default; a supervisor outlives its terminal.
  process.on('SIGHUP', () => log('info', 'SIGHUP ignored (a configuration reload is not supported: restart the supervisor)'));
  log('info', `supervising ${config.file} (control socket ${socket})`);
  await sup.start();
  return finished;
}
