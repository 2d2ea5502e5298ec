/**
 * msghandle's command line: yargs (strict) for the syntax, then every value checked, all problems reported at once,
 * each naming its option.
 */
import { UsageError } from '@msgbricks/errors';
import { parseQueueSpec } from '@msgbricks/message';
import yargs from 'yargs/yargs';

export interface Options {
  queue: string;
  exec?: string;
  module?: string;
  concurrency: number;
  maxAttempts?: number;
  deadLetterQueue?: string;
  /** Seconds; 0: none. */
  timeout: number;
  retryDelay: number;
  retryDelayMax: number;
  drain: boolean;
  stopTimeout: number;
  purgeInterval: number;
  maxLock: number;
  metricsPort?: number;
  metricsAddress: string;
  'log-format': 'json' | 'text';
  debug: number;
  log?: 'stderr' | 'stdout' | 'null' | 'file';
  logfile?: string;
  loglevel?: 'debug' | 'info' | 'warning' | 'error' | 'critical';
  help: boolean;
  version: boolean;
}

/** Bad options: one problem per line, each naming its option; exit 2. */
export class OptionsError extends UsageError {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('; '));
  }
}

const DESCRIPTIONS: Record<string, [string, string]> = {
  queue: ['SPEC', 'the spool to handle, as stompclt takes it: "path=/var/spool/in type=DQS" (required)'],
  exec: [
    'CMD',
    'run /bin/sh -c CMD per message: body on stdin, header in MSG_HEADER_* and the file $MSG_JSON; exit 0 done, 75 retry later, other failed',
  ],
  module: ['PATH', 'load a JavaScript (or TypeScript) module exporting the handler function instead'],
  concurrency: ['N', 'handlers in flight at once (default 1)'],
  'max-attempts': ['N', 'failed attempts before a message goes to --dead-letter-queue (default: retried for ever)'],
  'dead-letter-queue': ['SPEC', 'where messages go after --max-attempts, and elements that are not messages'],
  timeout: ['SECONDS', 'an attempt running longer is aborted (the command gets SIGTERM) and counts as failed (default 0: none)'],
  'retry-delay': ['SECONDS', 'delay before the retry after a first failure, doubled at each further one (default 1)'],
  'retry-delay-max': ['SECONDS', 'longest delay between retries (default 300)'],
  drain: ['', 'stop once the spool has nothing left to take (default: handle new messages for ever)'],
  'stop-timeout': ['SECONDS', 'on SIGTERM/SIGINT, how long handlers in flight are waited for (default 10)'],
  'purge-interval': ['SECONDS', 'between purges of stale locks and temporary files (default 300)'],
  'max-lock': ['SECONDS', "a lock older than this is stale: a dead handler's, broken by the purge (default 600)"],
  'metrics-port': ['PORT', 'serve Prometheus metrics on this port (alias --metrics)'],
  'metrics-address': ['ADDRESS', 'address the metrics server listens on (default 127.0.0.1)'],
  'log-format': ['json|text', 'log line format (default text)'],
  debug: ['', 'more log lines (-d: debug, -dd: trace)'],
  log: ['WHERE', 'stderr (default), stdout, null or file (needs --logfile)'],
  logfile: ['FILE', 'the log file of --log file (appended to)'],
  loglevel: ['LEVEL', 'debug, info (default), warning, error or critical'],
  help: ['', 'this help'],
  version: ['', 'the version'],
};

export function helpText(): string {
  const lines = [
    'usage: msghandle --queue SPEC (--exec CMD | --module PATH) [OPTIONS]',
    '',
    'Runs a command or a handler function on every message of a spool, at least once; failed messages are',
    'retried with backoff and, after --max-attempts, moved to --dead-letter-queue. Exit codes: 0 stopped or',
    'drained, 1 failure (the spool itself), 2 bad options. Manual: docs/handlers.md in the msgbricks sources.',
    '',
    "  msghandle --queue 'path=/var/spool/in' --exec './store.sh' --concurrency 4 --max-attempts 5 \\",
    "            --dead-letter-queue 'path=/var/spool/dead'",
    "  msghandle --queue 'path=/var/spool/in type=DQN' --module ./handler.js --drain",
    '',
    'options:',
  ];
  for (const [name, [arg, text]] of Object.entries(DESCRIPTIONS)) lines.push(`  --${name}${arg ? ` ${arg}` : ''}: ${text}`);
  return lines.join('\n');
}

const STRINGS = Object.keys(DESCRIPTIONS).filter((k) => !['drain', 'debug', 'help', 'version'].includes(k));

function number(
  raw: unknown,
  name: string,
  problems: string[],
  o: { min: number; integer?: boolean; max?: number },
): number | undefined {
  if (raw === undefined) return undefined;
  const s = String(raw).trim();
  const n = /^[0-9]+(\.[0-9]+)?$/.test(s) ? Number(s) : Number.NaN;
  const ok = Number.isFinite(n) && n >= o.min && (o.max === undefined || n <= o.max) && (!o.integer || Number.isInteger(n));
  if (!ok) {
    const what = o.integer ? 'an integer' : 'a number';
    problems.push(`--${name}: ${JSON.stringify(s)} is not ${what} >= ${o.min}${o.max === undefined ? '' : ` and <= ${o.max}`}`);
    return undefined;
  }
  return n;
}

function oneOf<T extends string>(raw: unknown, name: string, values: readonly T[], problems: string[]): T | undefined {
  if (raw === undefined) return undefined;
  if ((values as readonly unknown[]).includes(raw)) return raw as T;
  problems.push(`--${name}: ${JSON.stringify(raw)} is not one of ${values.join(', ')}`);
  return undefined;
}

function queueSpec(raw: unknown, name: string, problems: string[]): string | undefined {
  if (raw === undefined) return undefined;
  try {
    parseQueueSpec(String(raw));
  } catch (err) {
    problems.push(`--${name}: ${(err as Error).message}`);
  }
  return String(raw);
}

/** Parses and checks the command line; throws OptionsError (every problem) or UsageError (syntax). */
export function parseOptions(argv: string[]): Options {
  let y = yargs(argv)
    .scriptName('msghandle')
    .parserConfiguration({ 'camel-case-expansion': false, 'strip-aliased': true, 'duplicate-arguments-array': false })
    .help(false)
    .version(false);
  for (const name of STRINGS)
    y = y.option(name, { type: 'string', requiresArg: true, ...(name === 'metrics-port' ? { alias: 'metrics' } : {}) });
  const args = y
    .option('drain', { type: 'boolean' })
    .option('help', { type: 'boolean', alias: 'h' })
    .option('version', { type: 'boolean' })
    .option('debug', { type: 'count', alias: 'd' })
    .strict()
    .fail((msg, err) => {
      const text = msg ?? err?.message ?? 'invalid command line';
      const missing = /^Not enough arguments following: (.+)$/.exec(text);
      throw new UsageError(
        missing === null ? `${text} (see msghandle --help)` : `--${missing[1]} needs a value (see msghandle --help)`,
      );
    })
    .exitProcess(false)
    .parseSync() as Record<string, unknown>;
  if (args._ !== undefined && (args._ as unknown[]).length > 0)
    throw new UsageError(`unexpected argument: ${String((args._ as unknown[])[0])} (see msghandle --help)`);
  const problems: string[] = [];
  const o: Options = {
    queue: '',
    concurrency: number(args.concurrency, 'concurrency', problems, { min: 1, integer: true, max: 10_000 }) ?? 1,
    maxAttempts: number(args['max-attempts'], 'max-attempts', problems, { min: 1, integer: true }),
    deadLetterQueue: queueSpec(args['dead-letter-queue'], 'dead-letter-queue', problems),
    timeout: number(args.timeout, 'timeout', problems, { min: 0 }) ?? 0,
    retryDelay: number(args['retry-delay'], 'retry-delay', problems, { min: 0 }) ?? 1,
    retryDelayMax: number(args['retry-delay-max'], 'retry-delay-max', problems, { min: 0 }) ?? 300,
    drain: args.drain === true,
    stopTimeout: number(args['stop-timeout'], 'stop-timeout', problems, { min: 0 }) ?? 10,
    purgeInterval: number(args['purge-interval'], 'purge-interval', problems, { min: 0 }) ?? 300,
    maxLock: number(args['max-lock'], 'max-lock', problems, { min: 0 }) ?? 600,
    metricsPort: number(args['metrics-port'], 'metrics-port', problems, { min: 1, integer: true, max: 65535 }),
    metricsAddress: typeof args['metrics-address'] === 'string' ? args['metrics-address'] : '127.0.0.1',
    'log-format': oneOf(args['log-format'], 'log-format', ['json', 'text'] as const, problems) ?? 'text',
    debug: typeof args.debug === 'number' ? args.debug : 0,
    log: oneOf(args.log, 'log', ['stderr', 'stdout', 'null', 'file'] as const, problems),
    logfile: typeof args.logfile === 'string' ? args.logfile : undefined,
    loglevel: oneOf(args.loglevel, 'loglevel', ['debug', 'info', 'warning', 'error', 'critical'] as const, problems),
    help: args.help === true,
    version: args.version === true,
  };
  if (o.help || o.version) return o;
  if (args.queue === undefined) problems.unshift('--queue: missing (the spool to handle)');
  else o.queue = queueSpec(args.queue, 'queue', problems) as string;
  if (typeof args.exec === 'string') o.exec = args.exec;
  if (typeof args.module === 'string') o.module = args.module;
  if (o.exec === undefined && o.module === undefined)
    problems.push('--exec or --module: one is needed (what to run per message)');
  if (o.exec !== undefined && o.module !== undefined) problems.push('--exec and --module: only one of them');
  if (o.exec !== undefined && o.exec.trim() === '') problems.push('--exec: an empty command');
  if (o.maxAttempts !== undefined && o.deadLetterQueue === undefined)
    problems.push('--max-attempts: needs --dead-letter-queue (a message is never dropped)');
  if (o.log === 'file' && o.logfile === undefined) problems.push('--log file: needs --logfile');
  if (problems.length > 0) throw new OptionsError(problems);
  return o;
}
