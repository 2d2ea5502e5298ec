/**
 * The live status (msgbricks): on a terminal, one line at the bottom of stderr with the counts of the run, written
 * again in place every second and cleared at exit; log lines are written above it (logger.ts takes it away before a
 * line and draws it again after). Never when stderr is not a terminal (a file, a pipe, journald), nor with --debug.
 */
import * as fs from 'node:fs';
import { setOverlay } from './logger';

export interface StatusFigures {
  readonly in: number;
  readonly out: number;
  readonly acked: number;
  readonly pending: number;
  /** Messages in per second, over the last interval. */
  readonly rate: number;
}

/** `stompclt: in 1200 out 1195 acked 1190 pending 10 rate 250.0 msg/s`, cut to the terminal's width. */
export function formatStatus(program: string, f: StatusFigures, columns?: number): string {
  const line = `${program}: in ${f.in} out ${f.out} acked ${f.acked} pending ${f.pending} rate ${f.rate.toFixed(1)} msg/s`;
  // One column short: writing the last one makes some terminals wrap.
  return columns !== undefined && columns > 1 && line.length >= columns ? line.slice(0, columns - 1) : line;
}

/** Whether to show the live status: stderr is a terminal (not `dumb`), and no --debug (its lines would bury it). */
export function wantsLiveStatus(stderr: { isTTY?: boolean }, debug: number, env: NodeJS.ProcessEnv = process.env): boolean {
  return stderr.isTTY === true && debug === 0 && env.TERM !== 'dumb';
}

/** Erase the current line: carriage return, then erase to the end of the line (ECMA-48 EL). */
export const CLEAR_LINE = '\r\x1b[K';

export interface LiveStatusOptions {
  readonly program: string;
  /** The counts now. */
  readonly figures: () => { in: number; out: number; acked: number; pending: number };
  readonly write?: (text: string) => void;
  readonly columns?: () => number | undefined;
  readonly intervalMs?: number;
}

export class LiveStatus {
  private timer: NodeJS.Timeout | undefined;
  private line = '';
  private lastIn = 0;
  private lastAt = performance.now();
  private readonly write: (text: string) => void;

  constructor(private readonly options: LiveStatusOptions) {
    this.write = options.write ?? ((text) => fs.writeSync(2, text));
  }

  start(): void {
    setOverlay(this);
    this.lastIn = this.options.figures().in;
    this.lastAt = performance.now();
    this.timer = setInterval(() => this.update(), this.options.intervalMs ?? 1000);
    this.timer.unref();
  }

  /** Counts again, and the line written again in place. */
  update(): void {
    const f = this.options.figures();
    const now = performance.now();
    const rate = now > this.lastAt ? ((f.in - this.lastIn) * 1000) / (now - this.lastAt) : 0;
    this.lastIn = f.in;
    this.lastAt = now;
    // Field by field: the counters' `pending` is a getter, which a spread would not copy.
    const figures = { in: f.in, out: f.out, acked: f.acked, pending: f.pending, rate };
    this.line = formatStatus(this.options.program, figures, this.options.columns?.() ?? process.stderr.columns);
    this.draw();
  }

  clear(): void {
    if (this.line !== '') this.write(CLEAR_LINE);
  }

  draw(): void {
    if (this.line !== '') this.write(`${CLEAR_LINE}${this.line}`);
  }

  /** Stops and leaves the terminal as it was. */
  stop(): void {
    clearInterval(this.timer);
    setOverlay(undefined);
    this.clear();
    this.line = '';
  }
}
