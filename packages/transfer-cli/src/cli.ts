/**
 * The command line: every option of OPTION_SCHEMA through yargs (strict), then loadOptions, so that
 * the configuration file, the command line and validation are one path. The single place that turns
 * errors into messages and exit codes.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { ConfigError, type ConfigProblem, formatProblem } from '@msgbricks/config-general';
import { UsageError } from '@msgbricks/errors';
import yargs from 'yargs/yargs';
import { loadOptions } from './config/load';
import { type AgentOptions, OPTION_SCHEMA, type OptionSpec } from './config/schema';
import { EXIT } from './errors';
import { keepYoungGenerationSmall } from './heap';
import { makeLogger, message, out } from './logger';
import { quit, statusWithRetry } from './pidfile';
import { type Program, program, STOMPCLT, setProgram } from './program';
import { checkBrokerUri, PROTOCOLS } from './protocols';
import { transfer } from './transfer';

/** Aliases beyond each option's `short` letter (stompclt's Getopt::Long names). */
const EXTRA_ALIASES: Record<string, string[]> = { config: ['conf', 'cfg'], help: ['?'] };

function parser(argv: string[]) {
  let y = yargs(argv)
    .scriptName(program().name)
    .parserConfiguration({ 'camel-case-expansion': false, 'strip-aliased': true, 'duplicate-arguments-array': true })
    .help(false)
    .version(false);
  for (const [name, spec] of schema()) {
    const alias = [...(spec.short === undefined ? [] : [spec.short]), ...(EXTRA_ALIASES[name] ?? [])];
    const common = { describe: spec.description, ...(alias.length > 0 ? { alias } : {}) };
    if (spec.type === 'bool') y = y.option(name, { ...common, type: 'boolean' });
    else if (spec.type === 'counter') y = y.option(name, { ...common, type: 'count' });
    // Numbers stay strings: loadOptions checks and converts them, with its own messages.
    else y = y.option(name, { ...common, type: 'string', requiresArg: true });
  }
  return y
    .strict()
    .fail((msg, err) => {
      // Every failure of yargs here is the user's command line (there are no commands or handlers to throw): exit 2,
      // never 1. yargs reports an option at the end without its value as an error object, not a message.
      const text = msg ?? err?.message ?? 'invalid command line';
      const missing = /^Not enough arguments following: (.+)$/.exec(text);
      throw new UsageError(
        missing === null ? text : `--${missing[1]} needs a value (see ${program().name} --help for the options)`,
        err === undefined ? undefined : { cause: err },
      );
    })
    .exitProcess(false);
}

/** STOMPCLT_DEBUG=1 (AMQPCLT_DEBUG=1...) prints the stack of an unexpected error, for bug reports. */
function debugStacks(): boolean {
  return process.env[`${program().name.toUpperCase()}_DEBUG`] === '1';
}

function version(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The options of the program running: the shared ones and its own. */
function schema(): [string, OptionSpec][] {
  return Object.entries(OPTION_SCHEMA).filter(([, spec]) => spec.only === undefined || spec.only === program().name);
}

function optionLines(): string[] {
  return schema().map(([name, spec]) => {
    const short = spec.short === undefined ? '' : `-${spec.short}, `;
    const neg = spec.type === 'bool' ? ` (--no-${name})` : '';
    const extra = spec.msgbricks ? ' [msgbricks]' : '';
    return `  ${short}--${name}${neg}: ${spec.description}${extra}`;
  });
}

function usage(): string[] {
  return [
    `usage: ${program().name} [OPTIONS]`,
    '',
    'Transfers messages from an incoming module to an outgoing module through an optional callback:',
    ...program().examples,
  ];
}

/** `stomp://, ... for STOMP; amqp://, ... for AMQP 1.0`: the schemes that name a protocol. */
function protocolSchemes(): string {
  return PROTOCOLS.map((p) => {
    const own = Object.keys(p.schemes).filter((s) => PROTOCOLS.every((q) => q === p || !Object.hasOwn(q.schemes, s)));
    return `${own.map((s) => `${s}://`).join(', ')} for ${p.name}`;
  }).join('; ');
}

function help(manual: boolean): string {
  const lines = [...usage(), '', 'options:', ...optionLines()];
  if (manual) {
    lines.push(
      '',
      'Every option is also a configuration key (--config FILE: Config::General, JSON or YAML);',
      'the command line overrides the file. Exit codes: 0 success, 1 failure (including pending messages),',
      '2 bad input or another instance running; --status: 0 running, 1 dead, 3 not running, 4 unknown.',
      `Broker URIs (and failover:(...), file:PATH lists of them): ${protocolSchemes()};`,
      `a scheme several protocols have (tcp://, ssl://) means ${program().defaultProtocol.name} for ${program().name}.`,
      `The full manual is ${program().manual} in the msgbricks sources.`,
    );
  }
  return lines.join('\n');
}

/** Problems that do not matter for --status and --quit, which only need the pid file. */
function controlOnly(p: ConfigProblem): boolean {
  return p.key === undefined && /^no (incoming|outgoing) module/.test(p.message);
}

/** The broker URIs as the protocols' modules parse them: a bad one is an option problem (file, line, key). */
function checkUri(uri: string): void {
  checkBrokerUri(uri, program().defaultProtocol);
}

function load(args: Record<string, unknown>): AgentOptions {
  const control = args.status === true || args.quit === true;
  try {
    return loadOptions({ argv: args, program: program().name, checkUri }).options;
  } catch (err) {
    if (!control || !(err instanceof ConfigError) || !err.problems.every(controlOnly)) throw err;
    // --status and --quit talk to another instance: no modules needed.
    return loadOptions({
      argv: { 'incoming-queue': 'type=NULL', 'outgoing-queue': 'type=NULL', ...args },
      program: program().name,
      checkUri,
    }).options;
  }
}

async function main(argv: string[]): Promise<number> {
  const args = (await parser(argv).parseAsync()) as Record<string, unknown>;
  delete args._;
  delete args.$0;
  const manual = args.manual === true || args.pod === true || args.rst === true;
  if (args.help === true || manual) {
    out(help(manual));
    return EXIT.ok;
  }
  if (args.version === true) {
    out(`${program().name} (msgbricks) ${version()}`);
    return EXIT.ok;
  }
  if (args.list === true) {
    out(
      schema()
        .map(([name]) => name)
        .join('\n'),
    );
    return EXIT.ok;
  }
  const options = load(args);
  const logger = makeLogger(options);
  if (options.debug > 3) logger.debug({ options }, 'configuration');
  const pidfile = options.pidfile;
  if (options.status && pidfile !== undefined) {
    const r = await statusWithRetry(pidfile, options['timeout-status']);
    out(`${program().name}: ${r.text}`);
    return r.code;
  }
  if (options.quit && pidfile !== undefined) {
    const wait = (options['timeout-linger'] ?? 1) + options['timeout-flush'] + 10;
    const r = await quit(pidfile, wait);
    out(`${program().name}: ${r.text}`);
    return r.code;
  }
  try {
    return await transfer(options, logger);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    logger.fatal({ err: err instanceof Error ? err.message : String(err) }, 'transfer failed');
    if (debugStacks() && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return EXIT.failure;
  }
}

/** Runs the command; resolves to its exit code. Bad input: one `PROGRAM: ...` line per problem, exit 2. */
export async function run(argv: string[], which: Program = STOMPCLT): Promise<number> {
  setProgram(which);
  keepYoungGenerationSmall();
  try {
    return await main(argv);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) message(formatProblem(p));
      return EXIT.usage;
    }
    if (err instanceof UsageError) {
      message(err.message);
      return err.exitCode;
    }
    message(err instanceof Error ? err.message : String(err));
    if (debugStacks() && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return EXIT.failure;
  }
}
