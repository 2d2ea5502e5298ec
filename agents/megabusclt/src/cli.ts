/**
 * megabusclt: Megabus from the shell. `run` (the default) consumes and runs the configured plugins (run.ts); `check`
 * validates a configuration and prints it resolved (every default filled in); `publish` sends one message through a
 * Publisher (failover, spool). Without --config the configuration is
 * searched for as the library does (MEGABUS_CONFIG, ./megabus.*, /etc/megabus/). One top-level catch maps errors to
 * exit codes: 0 done, 1 failed (no broker took the message), 2 bad input (usage, configuration).
 */
import { isUtf8 } from 'node:buffer';
import { RejectedError } from '@msgbricks/agent';
import { ConfigError } from '@msgbricks/config-general';
import { MsgbricksError, UsageError } from '@msgbricks/errors';
import { describeConfig, loadConfig, type MegabusEvent, Publisher } from '@msgbricks/megabus';
import { stringify } from 'yaml';
import yargs from 'yargs/yargs';
import { lines, message, out } from './logger';
import { runPlugins } from './run';

/** Settings that cannot be used as given: bad input, like a configuration problem. */
const BAD_INPUT_CODES = new Set(['ERR_BROKER_CREDENTIAL', 'ERR_BROKER_TLS', 'ERR_BROKER_URI', 'ERR_MEGABUS_DESTINATION']);

export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError) return err.exitCode;
  if (err instanceof ConfigError) return 2;
  if (err instanceof MsgbricksError && BAD_INPUT_CODES.has(err.code)) return 2;
  return 1;
}

interface Common {
  config?: string;
}

function parser(argv: string[]) {
  return yargs(argv)
    .scriptName('megabusclt')
    .usage(
      '$0 [run|check|publish] [--config FILE] ...\n\nMegabus from the shell: run the plugins (the default), check a configuration, publish.',
    )
    .option('config', {
      describe: 'the configuration file (default: MEGABUS_CONFIG, ./megabus.*, /etc/megabus/)',
      type: 'string',
      requiresArg: true,
    })
    .command(['run', '$0'], 'consume and run the plugins (the default command)', (y) =>
      y
        .option('metrics', {
          describe:
            "[host:]port of /metrics and /healthz (default: the configuration's metrics; loopback unless a host is given)",
          type: 'string',
          requiresArg: true,
        })
        .option('stats-interval', {
          describe: 'seconds between two statistics log lines (0: none)',
          type: 'number',
          default: 300,
          requiresArg: true,
        })
        .option('debug', { alias: 'd', describe: "more log lines: each message's outcome", type: 'count' })
        .option('log-format', { describe: 'log line format', choices: ['text', 'json'], default: 'text' }),
    )
    .command('check', 'validate the configuration and print it resolved (every default filled in)')
    .command('publish <body>', 'publish one message: BODY, or - to read it from stdin', (y) =>
      y
        .positional('body', { describe: 'the message body, or - for stdin', type: 'string' })
        .option('header', { describe: 'a header field, k=v (repeatable)', type: 'string', requiresArg: true })
        .option('linger', {
          describe: 'seconds to wait for the spool to be forwarded before exiting (it is kept otherwise)',
          type: 'number',
          default: 10,
          requiresArg: true,
        }),
    )
    .strict()
    .fail((msg, err) => {
      throw err ?? new UsageError(msg);
    })
    .exitProcess(false)
    .help()
    .version(false)
    .wrap(null);
}

/** Stands for a `-` argument: yargs turns a lone `-` into an empty string, which is a body of its own. */
const STDIN = '\u0000stdin';

function headers(given: string | readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  // Given once, yargs hands a string; repeated, an array.
  for (const h of given === undefined ? [] : typeof given === 'string' ? [given] : given) {
    const eq = h.indexOf('=');
    if (eq <= 0) throw new UsageError(`invalid --header ${JSON.stringify(h)}: expected name=value`);
    out[h.slice(0, eq)] = h.slice(eq + 1);
  }
  return out;
}

async function stdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function logEvent(e: MegabusEvent): void {
  switch (e.type) {
    case 'broker-failed':
      message(`broker ${e.broker} failed: ${e.error.message}`);
      break;
    case 'resolve-failed':
      message(`cannot resolve the brokers: ${e.error.message}`);
      break;
    case 'spooled':
      message(`no broker took the message: spooled as ${e.name}`);
      break;
    case 'spool-skipped':
      message(`spool element ${e.name} left in place: ${e.error.message}`);
      break;
  }
}

async function publish(a: Common & { body: string; header?: string | string[]; linger: number }): Promise<number> {
  const header = headers(a.header);
  if (!Number.isFinite(a.linger) || a.linger < 0) throw new UsageError(`invalid --linger ${a.linger}: seconds >= 0`);
  const config = loadConfig({ file: a.config });
  const raw = a.body === STDIN ? await stdin() : Buffer.from(a.body, 'utf8');
  const publisher = new Publisher({ config, onEvent: logEvent });
  try {
    await publisher.send(isUtf8(raw) ? raw.toString('utf8') : raw, header);
    const left = await publisher.drain(a.linger * 1000);
    if (left > 0) message(`${left} message(s) left in the spool ${config.publisher.spool}, forwarded by the next run`);
  } finally {
    await publisher.close();
  }
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  try {
    const a = parser(argv.map((arg) => (arg === '-' ? STDIN : arg))).parseSync() as unknown as Common & {
      _: (string | number)[];
      help?: boolean;
      body: string;
      header?: string | string[];
      linger: number;
      metrics?: string;
      'stats-interval': number;
      debug?: number;
      'log-format'?: string;
    };
    if (a.help === true) return 0;
    switch (a._[0]) {
      case undefined:
      case 'run': {
        const interval = a['stats-interval'];
        if (!Number.isFinite(interval) || interval < 0)
          throw new UsageError(`invalid --stats-interval ${interval}: seconds >= 0`);
        return await runPlugins({
          config: a.config,
          metrics: a.metrics,
          statsInterval: interval,
          debug: a.debug ?? 0,
          logFormat: a['log-format'] === 'json' ? 'json' : 'text',
        });
      }
      case 'check':
        out(stringify(describeConfig(loadConfig({ file: a.config }))));
        return 0;
      case 'publish':
        return await publish(a);
      default:
        throw new UsageError(`unknown command ${JSON.stringify(a._[0])}: run, check or publish`);
    }
  } catch (err) {
    if (err instanceof ConfigError) lines(err.message);
    else if (err instanceof RejectedError) message(`the broker refused the message: ${err.message}`);
    else message((err as Error).message ?? String(err));
    if (process.env.MEGABUSCLT_DEBUG === '1' && err instanceof Error && err.stack) lines(err.stack);
    return exitCodeOf(err);
  }
}
