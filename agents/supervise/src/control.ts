/**
 * The control socket: a Unix socket next to the pid file on which the running supervisor takes simplevisor's
 * commands, one JSON object per line each way. `{"command":"status","path":"top/sender"}` gets
 * `{"ok":true,"code":0,"lines":[...],"status":{...}}`. (simplevisor wrote its commands into the pid file and polled
 * it every 0.5 s; a socket answers at once and carries the result back.)
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { errnoOf, MsgbricksError, UsageError } from '@msgbricks/errors';
import { checkLines, type NodeStatus, type Supervision } from '@msgbricks/supervisor';

export const DAEMON_COMMANDS = [
  'status',
  'check',
  'start',
  'stop',
  'restart',
  'restart_child',
  'stop_supervisor',
  'stop_children',
  'wake_up',
  'reload',
] as const;
export type DaemonCommand = (typeof DAEMON_COMMANDS)[number];

export interface Request {
  readonly command: DaemonCommand;
  readonly path?: string;
}

export interface Reply {
  readonly ok: boolean;
  /** The exit code the client command ends with. */
  readonly code: number;
  readonly lines: readonly string[];
  readonly status?: NodeStatus;
}

/** The supervisor is not running (nothing answers on its control socket): LSB's "not running", exit 3. */
export class NotRunningError extends MsgbricksError {
  readonly exitCode = 3;

  constructor(socket: string, cause: unknown) {
    super(
      'ERR_SUPERVISE_NOT_RUNNING',
      `supervisor not running (nothing answers on ${socket}: ${errnoOf(cause) ?? String(cause)})`,
      {
        cause,
      },
    );
  }
}

/** Another supervisor answers on the control socket: bad usage (exit 2), nothing was started. */
export class AlreadyRunningError extends UsageError {
  override readonly code = 'ERR_SUPERVISE_RUNNING';
}

/** The socket path: --control, else the pid file's name plus `.sock`, else one per configuration file in the temporary directory. */
export function socketPath(control: string | undefined, pidfile: string | undefined, conf: string): string {
  if (control !== undefined) return control;
  if (pidfile !== undefined) return `${pidfile}.sock`;
  const id = crypto.createHash('sha256').update(path.resolve(conf)).digest('hex').slice(0, 12);
  return path.join(os.tmpdir(), `msgsupervise-${process.getuid?.() ?? 0}-${id}.sock`);
}

function statusLines(s: NodeStatus, out: string[] = [], depth = 0): string[] {
  const pid = s.pid === undefined ? '' : ` pid ${s.pid}`;
  const last = s.lastExit === undefined ? '' : ` (last: ${s.lastExit})`;
  const age = Math.round((Date.now() - s.since) / 1000);
  out.push(`${'  '.repeat(depth)}${s.path}: ${s.state}${pid}, ${age} s, ${s.restarts} restarts, expected ${s.expected}${last}`);
  for (const c of s.children ?? []) statusLines(c, out, depth + 1);
  return out;
}

/**
 * Carries out one request on the running tree; `exit` is called for stop and stop_supervisor once answered,
 * `reload` reads the configuration again and applies it (as SIGHUP does).
 */
export async function handle(
  sup: Supervision,
  req: Request,
  exit: (how: 'stop' | 'detach') => void,
  reload: () => Promise<Reply>,
): Promise<Reply> {
  const p = req.path;
  switch (req.command) {
    case 'status': {
      const status = sup.status(p);
      return { ok: true, code: status.state === 'running' ? 0 : 3, lines: statusLines(status), status };
    }
    case 'check': {
      const status = sup.status(p);
      return { ok: true, code: status.ok ? 0 : 1, lines: checkLines(status), status };
    }
    case 'start':
      await sup.setExpected(p, true);
      return { ok: true, code: 0, lines: [`${sup.find(p).path}: started`] };
    case 'stop':
      if (p === undefined) {
        exit('stop');
        return { ok: true, code: 0, lines: ['stopping the supervisor and its children'] };
      }
      await sup.setExpected(p, false);
      return { ok: true, code: 0, lines: [`${sup.find(p).path}: stopped`] };
    case 'restart':
    case 'restart_child':
      if (p === undefined && req.command === 'restart_child')
        return { ok: false, code: 2, lines: ['restart_child needs a path'] };
      await sup.restartChild(p ?? sup.root.path);
      return { ok: true, code: 0, lines: [`${sup.find(p).path}: restarted`] };
    case 'stop_children':
      await sup.stopChildren();
      return { ok: true, code: 0, lines: ['children stopped; the supervisor stays up (start to start them again)'] };
    case 'stop_supervisor':
      exit('detach');
      return { ok: true, code: 0, lines: ['supervisor stopping, children left running'] };
    case 'wake_up':
      sup.wakeUp();
      return { ok: true, code: 0, lines: ['woken up'] };
    case 'reload':
      return reload();
  }
}

/** Listens on `socket` (a stale socket of a dead supervisor is replaced; a live one is an error). */
export async function serve(socket: string, onRequest: (req: Request) => Promise<Reply>): Promise<net.Server> {
  const server = net.createServer((conn) => {
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('error', () => undefined);
    conn.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const line = buf.slice(0, nl);
      buf = '';
      let req: Request;
      try {
        req = JSON.parse(line) as Request;
        if (!(DAEMON_COMMANDS as readonly string[]).includes(req.command))
          throw new Error(`unknown command ${String(req.command)}`);
      } catch (err) {
        conn.end(`${JSON.stringify({ ok: false, code: 2, lines: [`bad request: ${(err as Error).message}`] })}\n`);
        return;
      }
      onRequest(req).then(
        (reply) => conn.end(`${JSON.stringify(reply)}\n`),
        (err: unknown) => conn.end(`${JSON.stringify({ ok: false, code: 1, lines: [(err as Error).message] })}\n`),
      );
    });
  });
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socket, () => {
        server.off('error', reject);
        resolve();
      });
    });
  try {
    await listen();
  } catch (err) {
    if (errnoOf(err) !== 'EADDRINUSE')
      throw new MsgbricksError('ERR_SUPERVISE_CONTROL', `cannot listen(${socket}): ${errnoOf(err) ?? String(err)}`, {
        cause: err,
      });
    // A socket file is there: a live supervisor answers on it, a dead one's file only refuses.
    const live = await request(socket, { command: 'status' }).then(
      () => true,
      () => false,
    );
    if (live) throw new AlreadyRunningError(`a supervisor is already running on ${socket}`);
    // RACE: two supervisors starting at once on the same stale socket: the second listen() fails with EADDRINUSE.
    fs.rmSync(socket, { force: true });
    await listen();
  }
  fs.chmodSync(socket, 0o600);
  return server;
}

/** Sends one request to the running supervisor; NotRunningError when nothing answers. */
export function request(socket: string, req: Request): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const conn = net.connect(socket);
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(`${JSON.stringify(req)}\n`));
    conn.on('data', (chunk: string) => {
      buf += chunk;
    });
    conn.on('error', (err) => reject(new NotRunningError(socket, err)));
    conn.on('end', () => {
      try {
        resolve(JSON.parse(buf) as Reply);
      } catch (err) {
        reject(new NotRunningError(socket, err));
      }
    });
  });
}
