#!/usr/bin/env node
/**
 * msgsupervise (also installed as `simplevisor`): `msgsupervise [OPTIONS] COMMAND [PATH]` with simplevisor's
 * options and commands. `start` without a running supervisor runs it (in the foreground; `--daemon` detaches);
 * the other commands go to the running one over its control socket. The single place that maps errors to exit
 * codes: 0 done, 1 check warning or supervision failed, 2 bad usage or configuration, 3 not running.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '@msgbricks/config-general';
import { MsgbricksError, UsageError } from '@msgbricks/errors';
import { type ConfType, type GlobalOverrides, loadConfig, type SupervisionConfig } from '@msgbricks/supervisor';
import yargs from 'yargs/yargs';
import { AlreadyRunningError, DAEMON_COMMANDS, type DaemonCommand, NotRunningError, request, socketPath } from './control';
import { runDaemon } from './daemon';
import { single } from './single';

const NAME = path.basename(process.argv[1] ?? '').replace(/\.js$/, '') === 'simplevisor' ? 'simplevisor' : 'msgsupervise';
const COMMANDS = [...DAEMON_COMMANDS, 'single', 'check_configuration'] as const;

function version(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

const GLOBAL_OPTIONS: Record<string, { describe: string; alias?: string; key?: keyof GlobalOverrides }> = {
  store: { describe: 'JSON state file (simplevisor --store)' },
  pidfile: { describe: 'pid file of the running supervisor', alias: 'p' },
  interval: { describe: 'seconds of a supervision cycle: the LSB poll period and the intensity unit (60)' },
  log: { describe: 'where the log goes: stdout, file, syslog or null (stdout)' },
  logfile: { describe: 'the log file, with --log file' },
  loglevel: { describe: 'debug, info, warning, error or critical (warning)' },
  logname: { describe: 'name in log lines and syslog tag (simplevisor)' },
  control: { describe: 'control socket (PIDFILE.sock, else one per configuration in the temporary directory)' },
  http: { describe: '[host:]port of /healthz and /metrics' },
  'hold-down': { describe: 'seconds to wait after the root gave up before starting again; 0 exits (60)', key: 'hold_down' },
  'log-dir': { describe: "directory of the services' captured output", key: 'log_dir' },
};

function parser(argv: string[]) {
  let y = yargs(argv)
    .scriptName(NAME)
    .usage(`${NAME} [OPTIONS] COMMAND [PATH]\n\ncommands: ${COMMANDS.join(', ')}`)
    .parserConfiguration({ 'camel-case-expansion': false, 'strip-aliased': true })
    .option('conf', {
      alias: 'c',
      type: 'string',
      describe: 'configuration file (Apache style, JSON or YAML)',
      requiresArg: true,
    })
    .option('conftype', { type: 'string', describe: 'apache, json or yaml (by extension otherwise)', requiresArg: true })
    .option('daemon', { type: 'boolean', describe: 'start: detach and run in the background' })
    .option('json', { type: 'boolean', describe: 'status and check: the tree as JSON' })
    .help('help')
    .alias('help', 'h')
    .version(version());
  for (const [name, o] of Object.entries(GLOBAL_OPTIONS)) {
    y = y.option(name, {
      describe: o.describe,
      type: 'string',
      requiresArg: true,
      ...(o.alias === undefined ? {} : { alias: o.alias }),
    });
  }
  return y
    .strictOptions()
    .fail((msg, err) => {
      throw new UsageError(msg ?? err?.message ?? 'invalid command line', err === undefined ? undefined : { cause: err });
    })
    .exitProcess(false);
}

function print(lines: readonly string[]): void {
  if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
}

async function main(argv: string[]): Promise<number> {
  const args = (await parser(argv).parseAsync()) as Record<string, unknown> & { _: (string | number)[] };
  if (args.help === true || args.version === true) return 0;
  const [command, entry, ...rest] = args._.map(String);
  if (command === undefined) throw new UsageError(`a command is needed: ${COMMANDS.join(', ')} (see ${NAME} --help)`);
  if (!(COMMANDS as readonly string[]).includes(command))
    throw new UsageError(`unknown command ${command}: ${COMMANDS.join(', ')}`);
  if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(' ')}`);
  const conf = args.conf as string | undefined;
  if (conf === undefined) throw new UsageError('--conf FILE is needed');
  const conftype = args.conftype as ConfType | undefined;
  if (conftype !== undefined && !['apache', 'json', 'yaml'].includes(conftype))
    throw new UsageError(`--conftype must be apache, json or yaml, not ${conftype}`);
  const overrides: GlobalOverrides = {};
  for (const [name, o] of Object.entries(GLOBAL_OPTIONS)) {
    const v = args[name];
    if (typeof v === 'string') overrides[o.key ?? (name as keyof GlobalOverrides)] = v;
  }
  const load = (): SupervisionConfig => loadConfig(conf, { ...(conftype === undefined ? {} : { conftype }), overrides });
  const asksDaemon = !(command === 'start' && entry === undefined) && (DAEMON_COMMANDS as readonly string[]).includes(command);
  if (asksDaemon && (overrides.control !== undefined || overrides.pidfile !== undefined)) {
    // The socket is known without the file: a running supervisor can be asked even while its file is being edited
    // (and is invalid for now).
    return ask(socketPath(overrides.control, overrides.pidfile, conf), command as DaemonCommand, entry, args.json === true);
  }
  const config = load();
  if (command === 'check_configuration') {
    print([`${conf}: configuration OK`]);
    return 0;
  }
  if (command === 'single') return single(config, (lines) => print(lines));
  const socket = socketPath(config.global.control, config.global.pidfile, conf);
  if (command === 'start' && entry === undefined) {
    if (args.daemon === true) {
      const pid = await daemonize(
        argv.filter((a) => a !== '--daemon'),
        socket,
      );
      print([`${NAME} started in the background (pid ${pid})`]);
      return 0;
    }
    return runDaemon(config, socket, load);
  }
  return ask(socket, command as DaemonCommand, entry, args.json === true);
}

/** The daemon ended before it answered on its socket, or never answered: exit with its code (or 1). */
class DaemonStartError extends MsgbricksError {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super('ERR_SUPERVISE_DAEMON', message);
  }
}

const DAEMON_READY_MS = 30_000;

/**
 * `start --daemon`: the same command run again without --daemon in a new session (setsid, no terminal, output to
 * /dev/null: use `log = file` or `syslog`), and its pid once it answers on its control socket, so that a zero exit
 * means it runs. One already answering there is refused first (exit 2): its answers must not be taken for the new one's.
 */
async function daemonize(args: string[], socket: string): Promise<number> {
  const answers = () =>
    request(socket, { command: 'status' }).then(
      (reply) => reply.ok,
      () => false,
    );
  if (await answers()) throw new AlreadyRunningError(`a supervisor is already running on ${socket}`);
  const child = spawn(process.execPath, [process.argv[1] as string, ...args], { detached: true, stdio: 'ignore' });
  let exited: number | undefined;
  child.once('exit', (code, signal) => {
    exited = code ?? (signal === null ? 1 : 128);
  });
  child.once('error', () => {
    exited = 1;
  });
  const end = Date.now() + DAEMON_READY_MS;
  try {
    for (;;) {
      if (exited !== undefined)
        throw new DaemonStartError(
          `the daemon exited with ${exited} before answering on ${socket} (run start without --daemon to see why)`,
          exited,
        );
      if (await answers()) return child.pid as number;
      if (Date.now() > end) throw new DaemonStartError(`the daemon did not answer on ${socket} within 30 s`, 1);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    child.unref();
  }
}

/** A command for the running supervisor: sent, its answer printed, its code returned. */
async function ask(socket: string, command: DaemonCommand, entry: string | undefined, json: boolean): Promise<number> {
  const reply = await request(socket, { command, ...(entry === undefined ? {} : { path: entry }) });
  if (json && reply.status !== undefined) print([JSON.stringify(reply.status, null, 2)]);
  else print(reply.lines);
  return reply.code;
}

function exitCodeOf(err: unknown): number {
  if (err instanceof ConfigError) return 2;
  if (err instanceof NotRunningError || err instanceof DaemonStartError) return err.exitCode;
  if (err instanceof UsageError) return err.exitCode;
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const known = err instanceof MsgbricksError;
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof ConfigError) process.stderr.write(`${NAME}: invalid configuration:\n${message}\n`);
    else process.stderr.write(`${NAME}: ${known ? '' : 'unexpected error (a bug): '}${message}\n`);
    if (!known && process.env.MSGSUPERVISE_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exitCode = exitCodeOf(err);
  },
);
