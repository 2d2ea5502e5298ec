/** The only place the msgnotify commands write: results on stdout, one-line messages on stderr. */

export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
export const LEVELS = Object.keys(ORDER) as Level[];

export class Logger {
  constructor(
    private readonly program: string,
    public level: Level = 'info',
  ) {}

  /** A result line on stdout. */
  out(line: string): void {
    process.stdout.write(`${line}\n`);
  }

  log(level: Level, text: string): void {
    if (ORDER[level] < ORDER[this.level]) return;
    // One line per message, whatever the text holds.
    process.stderr.write(
      `${new Date().toISOString()} ${this.program}[${process.pid}] ${level}: ${text.replace(/\s*\n\s*/g, ' ')}\n`,
    );
  }

  debug(text: string): void {
    this.log('debug', text);
  }
  info(text: string): void {
    this.log('info', text);
  }
  warn(text: string): void {
    this.log('warn', text);
  }
  error(text: string): void {
    this.log('error', text);
  }
}
