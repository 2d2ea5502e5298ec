import { QueueError } from '@msgbricks/dirq';
import { UsageError } from '@msgbricks/errors';
import {
  Generator,
  type GeneratorOptions,
  MessageError,
  type MessageQueue,
  newMessageQueue,
  parseQueueSpec,
} from '@msgbricks/message';
import yargs from 'yargs/yargs';
import { debug, message, outJson, outLine } from './logger';

/** Library errors that mean the input was wrong, not that something broke. */
const BAD_INPUT_CODES = new Set([
  'ERR_MESSAGE_GENERATOR',
  'ERR_MESSAGE_QUEUE_SPEC',
  'ERR_MESSAGE_CODEC_UNAVAILABLE',
  'ERR_DIRQ_INVALID_OPTION',
]);

/** Exit codes: 0 success, 1 unexpected failure, 2 bad input. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError) return err.exitCode;
  if ((err instanceof MessageError || err instanceof QueueError) && BAD_INPUT_CODES.has(err.code)) return 2;
  return 1;
}

/** Generator options on the command line: [option, its Perl spelling if different, description]. */
const GENERATOR_OPTIONS: readonly [string, string | undefined, string][] = [
  ['body-content', undefined, 'python body_content: index (default), text, binary or base64'],
  ['body-size', 'body-length', 'body size: N, -N (python: random around N, 0..2N), X-Y (uniform) or X^Y (normal)'],
  [
    'body-entropy',
    undefined,
    "Perl body-entropy: 0 (one char) 1 (hex) 2 (base64url) 3 (printable) 4 (bytes/Unicode), 'unicode' or X-Y",
  ],
  ['text', undefined, 'Perl text: 0 (binary), 1 (text) or 0-1 (either, at random)'],
  ['header-count', undefined, 'number of header fields (an integer spec, default 0)'],
  ['header-name-prefix', undefined, "header name prefix (default 'rnd-')"],
  ['header-name-size', 'header-name-length', 'header name size without the prefix (default -16)'],
  ['header-name-entropy', undefined, 'header name entropy (default 2, base64url)'],
  ['header-value-prefix', undefined, "header value prefix (default '')"],
  ['header-value-size', 'header-value-length', 'header value size without the prefix (default -32)'],
  ['header-value-entropy', undefined, 'header value entropy (default 1, hex)'],
];

const SINGLE = ['queue', 'count', 'compression', 'seed', 'json', ...GENERATOR_OPTIONS.map(([name]) => name)];

interface Args {
  queue: string;
  count: number;
  compression?: string;
  seed?: string;
  json?: boolean;
  [key: string]: unknown;
}

function parser(argv: string[]) {
  let y = yargs(argv)
    .scriptName('msggen')
    .usage(
      '$0 --queue SPEC [--count N] [generator options]\n\n' +
        'Fill a python-messaging compatible queue with generated messages.\n' +
        "SPEC is a queue description, e.g. 'type=DQS path=/tmp/q' or 'type=DQN path=/tmp/q' or 'type=NULL'.",
    )
    .option('queue', {
      describe: "queue spec: 'type=DQS|DQN|NULL path=PATH [granularity=N ...]'",
      type: 'string',
      requiresArg: true,
      demandOption: true,
    })
    // Read as a string: yargs takes an empty number (`--count ''`) for 0, a mistake that must not pass as "add none".
    .option('count', {
      describe: 'number of messages to add',
      type: 'string',
      default: 1,
      requiresArg: true,
      // A number once valid; left as given otherwise, for check() to refuse with the usage exit code.
      coerce: (v: unknown) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) && Number.isSafeInteger(Number(v)) ? Number(v) : v),
    })
    .option('compression', { describe: 'DQS: compress bodies', choices: ['zlib', 'lz4', 'snappy'], requiresArg: true })
    .option('seed', {
      describe: 'seed of the generator: the same seed gives the same messages',
      type: 'string',
      requiresArg: true,
    })
    .option('json', { describe: 'print the summary as JSON', type: 'boolean' });
  for (const [name, alias, describe] of GENERATOR_OPTIONS) {
    y = y.option(name, { describe, type: 'string', requiresArg: true, group: 'Generator options:', ...(alias ? { alias } : {}) });
  }
  return y
    .strict()
    .check((a) => {
      for (const k of SINGLE) {
        if (Array.isArray(a[k])) throw new UsageError(`--${k} given more than once`);
      }
      if (typeof a.count !== 'number') throw new UsageError(`invalid --count: ${JSON.stringify(a.count)} (an integer >= 0)`);
      return true;
    })
    .fail((msg, err) => {
      // One error path for everything: parse errors become UsageErrors for the top-level catch.
      throw err ?? new UsageError(msg);
    })
    .exitProcess(false)
    .help()
    .version(false)
    .wrap(null);
}

/** The generator and the queue spec, every problem of both reported at once (nothing is created before). */
function prepare(a: Args): { generator: Generator; spec: string } {
  const problems: string[] = [];
  let generator: Generator | undefined;
  const keywords: Record<string, unknown> = { seed: a.seed };
  for (const [name] of GENERATOR_OPTIONS) keywords[name] = a[name];
  try {
    generator = new Generator(Generator.fromKeywords(keywords) as GeneratorOptions);
  } catch (err) {
    if (!(err instanceof MessageError)) throw err;
    // Name the options as they are spelled on the command line.
    problems.push(
      err.message
        .replace(
          /\b(body|header)(Name|Value)?([A-Z][a-z]+)\b/g,
          (_m, a1: string, a2 = '', a3: string) =>
            `--${[a1, a2, a3]
              .filter((s) => s !== '')
              .join('-')
              .toLowerCase()}`,
        )
        .replace(/(: |; )(seed|text):/g, '$1--$2:'),
    );
  }
  const spec = a.compression === undefined ? a.queue : `${a.queue} compression=${a.compression}`;
  try {
    parseQueueSpec(spec);
  } catch (err) {
    if (!(err instanceof MessageError)) throw err;
    problems.push(err.message);
  }
  if (generator === undefined || problems.length > 0) throw new UsageError(problems.join('; '));
  return { generator, spec };
}

async function generate(a: Args): Promise<void> {
  const { generator, spec } = prepare(a);
  const queue: MessageQueue = newMessageQueue(spec);
  const parsed = parseQueueSpec(spec);
  const start = process.hrtime.bigint();
  let bytes = 0;
  for (let i = 0; i < a.count; i++) {
    const msg = generator.message();
    bytes += msg.size();
    await queue.addMessage(msg);
  }
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  const rate = elapsed > 0 ? a.count / elapsed : 0;
  const throughput = elapsed > 0 ? bytes / elapsed : 0;
  const path = parsed.type === 'NULL' ? null : parsed.path;
  if (a.json) {
    await outJson({ queue: parsed.type, path, count: a.count, bytes, elapsed, rate, throughput });
  } else {
    const where = path === null ? parsed.type : `${parsed.type} ${path}`;
    await outLine(
      `added ${a.count} messages (${bytes} bytes) to ${where} in ${elapsed.toFixed(3)} s: ` +
        `${rate.toFixed(0)} messages/s, ${(throughput / 1e6).toFixed(2)} MB/s`,
    );
  }
}

/** Runs the command; the single place that turns errors into a one-line message and an exit code. */
export async function run(argv: string[]): Promise<number> {
  try {
    const a = (await parser(argv).parseAsync()) as unknown as Args;
    if (a.help) return 0;
    await generate(a);
    return 0;
  } catch (err) {
    const code = exitCodeOf(err);
    message(err instanceof Error ? err.message : String(err));
    if (process.env.MSGGEN_DEBUG === '1' && err instanceof Error && err.stack) debug(err.stack);
    return code;
  }
}
