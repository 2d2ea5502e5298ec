import { QueueError } from '@msgbricks/dirq';
import { UsageError } from '@msgbricks/errors';
import yargs from 'yargs/yargs';
import * as commands from './commands';
import { debug, message } from './logger';

/** Library errors that mean the input was wrong (name, option, element, schema), not that something broke. */
const BAD_INPUT_CODES = new Set([
  'ERR_DIRQ_INVALID_NAME',
  'ERR_DIRQ_INVALID_OPTION',
  'ERR_DIRQ_NOT_LOCKED',
  'ERR_DIRQ_NO_ELEMENT',
  'ERR_DIRQ_DATA',
  'ERR_DIRQ_NO_SCHEMA',
]);

/** Exit codes: 0 success, 1 unexpected failure, 2 bad input, 3 element locked by someone else. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError) return err.exitCode;
  if (err instanceof QueueError && BAD_INPUT_CODES.has(err.code)) return 2;
  return 1;
}

const ELEMENT = { describe: 'element name, XXXXXXXX/XXXXXXXXXXXXXX', type: 'string' } as const;
const LOCKED = {
  describe: 'the element is already locked by you: do not lock or unlock it around the operation',
  type: 'boolean',
} as const;

function parser(argv: string[]) {
  return (
    yargs(argv)
      .scriptName('dirq')
      .usage('$0 <command> <queue> [options]\n\nInspect and operate python-dirq compatible directory queues.')
      .option('type', { describe: 'queue type', choices: ['simple', 'normal'] as const, default: 'simple' as const })
      .option('schema', {
        describe: "normal queues: 'body:string,bin:binary?,header:table?' or a JSON object",
        type: 'string',
        requiresArg: true,
      })
      .option('granularity', { describe: 'simple queues: seconds per intermediate directory (default 60)', type: 'number' })
      .option('maxelts', { describe: 'normal queues: elements per intermediate directory (default 16000)', type: 'number' })
      .option('umask', {
        describe: 'umask for created files and directories, octal (e.g. 022)',
        type: 'string',
        requiresArg: true,
      })
      .option('fsync', { describe: 'make additions durable before reporting them', type: 'boolean' })
      .option('json', { describe: 'machine-readable output', type: 'boolean' })
      .command(
        'add <queue>',
        'add one element; prints its name',
        (y) =>
          y
            .positional('queue', { type: 'string', demandOption: true })
            .option('data', { describe: 'simple: the element, as text', type: 'string', requiresArg: true })
            .option('file', {
              describe: "simple: the element, a file's bytes (the file is copied)",
              type: 'string',
              requiresArg: true,
            })
            .conflicts('data', 'file')
            .option('field', {
              describe: 'normal: NAME=TEXT for a string or binary field (repeatable)',
              type: 'string',
              requiresArg: true,
            })
            .option('field-file', {
              describe: "normal: NAME=PATH, the field is the file's bytes (repeatable)",
              type: 'string',
              requiresArg: true,
            })
            .option('table', {
              describe: 'normal: NAME=KEY=VALUE, one entry of a table field (repeatable)',
              type: 'string',
              requiresArg: true,
            })
            .option('json-data', {
              describe: 'normal: the element as a JSON object (binary fields in base64)',
              type: 'string',
              requiresArg: true,
            }),
        (a) => commands.add(a as unknown as commands.AddArgs),
      )
      .command(
        'count <queue>',
        'print the number of elements',
        (y) => y.positional('queue', { type: 'string', demandOption: true }),
        (a) => commands.count(a as unknown as commands.CommonArgs),
      )
      .command(
        'list <queue>',
        'print the element names in iteration order',
        (y) => y.positional('queue', { type: 'string', demandOption: true }),
        (a) => commands.list(a as unknown as commands.CommonArgs),
      )
      .command(
        'get <queue> <name>',
        'print an element (simple: raw bytes; normal: JSON)',
        (y) =>
          y
            .positional('queue', { type: 'string', demandOption: true })
            .positional('name', ELEMENT)
            .option('locked', LOCKED)
            .option('field', { describe: "normal: print only this field's raw bytes", type: 'string', requiresArg: true }),
        (a) => commands.get(a as unknown as commands.GetArgs),
      )
      .command(
        'remove <queue> <name>',
        'remove an element (locking it first unless --locked)',
        (y) => y.positional('queue', { type: 'string', demandOption: true }).positional('name', ELEMENT).option('locked', LOCKED),
        (a) => commands.remove(a as unknown as commands.ElementArgs),
      )
      .command(
        'lock <queue> <name>',
        'lock an element',
        (y) => y.positional('queue', { type: 'string', demandOption: true }).positional('name', ELEMENT),
        (a) => commands.lock(a as unknown as commands.ElementArgs),
      )
      .command(
        'unlock <queue> <name>',
        'unlock an element',
        (y) => y.positional('queue', { type: 'string', demandOption: true }).positional('name', ELEMENT),
        (a) => commands.unlock(a as unknown as commands.ElementArgs),
      )
      .command(
        'purge <queue>',
        'remove stale temporary files, break stale locks, remove empty directories',
        (y) =>
          y
            .positional('queue', { type: 'string', demandOption: true })
            .option('maxtemp', {
              describe: 'seconds before a temporary element is removed, 0 never (default 300)',
              type: 'number',
            })
            .option('maxlock', { describe: 'seconds before a lock is broken, 0 never (default 600)', type: 'number' }),
        (a) => commands.purge(a as unknown as commands.PurgeArgs),
      )
      .command(
        'stats <queue>',
        'print counts, sizes and the age of the oldest element',
        (y) => y.positional('queue', { type: 'string', demandOption: true }),
        (a) => commands.stats(a as unknown as commands.CommonArgs),
      )
      .command(
        'watch <queue>',
        'print element names as they arrive, until SIGINT/SIGTERM, --count or --timeout',
        (y) =>
          y
            .positional('queue', { type: 'string', demandOption: true })
            .option('count', { describe: 'stop after N names', type: 'number' })
            .option('timeout', { describe: 'stop after SECONDS', type: 'number' })
            .option('from-start', { describe: 'also print the elements already there', type: 'boolean' })
            .option('rescan-interval', { describe: 'milliseconds between full rescans (default 2000)', type: 'number' }),
        (a) => commands.watch(a as unknown as commands.WatchArgs),
      )
      .demandCommand(1, 'missing command (see dirq --help)')
      .recommendCommands()
      .strict()
      // yargs reports a NaN for a non-numeric number option; it must be refused, not passed on.
      .check((a) => {
        for (const k of NUMERIC) {
          if (k in a && typeof a[k] === 'number' && Number.isNaN(a[k])) throw new UsageError(`invalid --${k}: not a number`);
        }
        for (const k of ['type', 'schema', 'granularity', 'maxelts', 'umask', 'data', 'file', 'json-data', 'locked', 'timeout']) {
          if (Array.isArray(a[k])) throw new UsageError(`--${k} given more than once`);
        }
        return true;
      })
      .fail((msg, err) => {
        // One error path for everything: parse errors become UsageErrors for the top-level catch.
        throw err ?? new UsageError(msg);
      })
      .exitProcess(false)
      .help()
      .version(false)
      .wrap(null)
  );
}

/** The number options. */
const NUMERIC = ['granularity', 'maxelts', 'maxtemp', 'maxlock', 'count', 'timeout', 'rescan-interval'];

/**
 * yargs reads an empty number (`--maxlock ''`, `--maxlock=`) as 0, and 0 means something (`--maxlock 0`: never break
 * a lock): an empty value is refused before parsing, as a mistake, not taken as 0.
 */
function refuseEmptyNumbers(argv: string[]): void {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') return;
    const eq = a.indexOf('=');
    const key = a.startsWith('--') ? a.slice(2, eq < 0 ? undefined : eq) : '';
    if (!NUMERIC.includes(key)) continue;
    const value = eq < 0 ? argv[i + 1] : a.slice(eq + 1);
    if (value !== undefined && value.trim() === '') throw new UsageError(`invalid --${key}: empty (a number is needed)`);
  }
}

/** Runs the command; the single place that turns errors into a one-line message and an exit code. */
export async function run(argv: string[]): Promise<number> {
  try {
    refuseEmptyNumbers(argv);
    await parser(argv).parseAsync();
    return 0;
  } catch (err) {
    const code = exitCodeOf(err);
    message(err instanceof Error ? err.message : String(err));
    if (process.env.DIRQ_DEBUG === '1' && err instanceof Error && err.stack) debug(err.stack);
    return code;
  }
}
