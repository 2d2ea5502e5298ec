import * as fs from 'node:fs';
import { type Logger, pino } from 'pino';
import type { AgentOptions } from './config/schema';
import { CliError, UnsupportedError } from './errors';
import { program } from './program';

export type { Logger } from 'pino';

/** Credentials never reach a log line: `pass=secret` (Authen::Credential strings) becomes `pass=***`. */
export function maskSecrets(text: string): string {
  return text
    .replace(/\b((?:pass|password|passcode|passphrase)=)[^\s"\\,]+/gi, '$1***')
    .replace(/("(?:pass|password|passcode|passphrase)"\s*:\s*")(?:[^"\\]|\\.)*"/gi, '$1***"');
}

/** Fields every line has, which the text format leaves out or shows first. */
const FIXED = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'name']);

function textLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const extra = Object.entries(o)
    .filter(([k]) => !FIXED.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`);
  const time = typeof o.time === 'string' ? o.time : new Date().toISOString();
  return `${time} ${program().name}[${process.pid}]: ${String(o.level)}: ${String(o.msg ?? '')}${extra.length > 0 ? ` ${extra.join(' ')}` : ''}\n`;
}

/** A line kept at the bottom of the terminal (the live status, status.ts): taken away before a line goes to stderr, drawn again after. */
export interface Overlay {
  clear(): void;
  draw(): void;
}
let overlay: Overlay | undefined;

export function setOverlay(o: Overlay | undefined): void {
  overlay = o;
}

/** Writes to a descriptor; on stderr, around the overlay. */
function writeLine(fd: number, text: string): void {
  if (fd !== 2 || overlay === undefined) {
    fs.writeSync(fd, text);
    return;
  }
  overlay.clear();
  fs.writeSync(fd, text);
  overlay.draw();
}

/** python-amqpclt's --loglevel names as pino levels. */
const LOGLEVEL = { debug: 'debug', info: 'info', warning: 'warn', error: 'error', critical: 'fatal' } as const;

export type LoggerOptions = Pick<AgentOptions, 'log-format' | 'debug' | 'log' | 'logfile' | 'loglevel'>;

/** Where the lines go: a file descriptor (stderr by default), or nowhere. */
function destination(options: LoggerOptions): number | undefined {
  switch (options.log) {
    case undefined:
    case 'stderr':
      return 2;
    case 'stdout':
      return 1;
    case 'null':
      return undefined;
    case 'syslog':
      throw new UnsupportedError('--log syslog is not supported: log to stderr and let systemd-journald collect it');
    case 'file': {
      const file = options.logfile as string;
      try {
        return fs.openSync(file, 'a', 0o640);
      } catch (err) {
        throw new CliError('ERR_TRANSFER_LOGFILE', `cannot open the log file ${file}: ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
  }
}

/**
 * The one logger of the command: pino, written synchronously (so nothing is lost at exit), on stderr unless
 * amqpclt's --log says otherwise. `--debug` raises the level: 0 info (or --loglevel), 1 debug, 2 and more trace.
 * `json` gives pino's lines as they are, `text` one readable line per record. Both pass through maskSecrets, and
 * pino's redact removes credential fields by name.
 */
export function makeLogger(options: LoggerOptions): Logger {
  const { debug } = options;
  const format = options['log-format'];
  const level =
    debug >= 2 ? 'trace' : debug === 1 ? 'debug' : options.loglevel === undefined ? 'info' : LOGLEVEL[options.loglevel];
  const fd = destination(options);
  const stream = {
    write(line: string): void {
      if (fd === undefined) return;
      const masked = maskSecrets(line);
      writeLine(fd, format === 'json' ? masked : textLine(masked));
    },
  };
  return pino(
    {
      name: program().name,
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: ['pass', 'passcode', 'password', '*.pass', '*.passcode', '*.password', '*[*].pass'], censor: '***' },
    },
    stream,
  );
}

/** One line on stderr, prefixed with the program's name; embedded newlines are folded so a message is always one line. */
export function message(text: string): void {
  writeLine(2, `${program().name}: ${maskSecrets(text).replace(/\s*\n\s*/g, ' ')}\n`);
}

/** Results (statistics, --status, --list...) on stdout. */
export function out(text: string): void {
  fs.writeSync(1, text.endsWith('\n') ? text : `${text}\n`);
}
