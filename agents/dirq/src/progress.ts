import { clearProgress, progressEnabled, showProgress } from './logger';

const REDRAW_MS = 100;
const BAR_WIDTH = 30;
const SPINNER = '|/-\\';

/**
 * A progress line on stderr for long walks over a queue, drawn only on a
 * terminal and at most every 100 ms (redrawing per element would cost more
 * than the walk). Without a total it is a spinner with the elapsed time.
 */
export class Progress {
  private readonly enabled = progressEnabled();
  private readonly started = Date.now();
  private lastDraw = 0;
  private done = 0;
  private detail = '';
  private spin = 0;

  constructor(
    private readonly label: string,
    private total?: number,
  ) {}

  setTotal(total: number): void {
    this.total = total;
  }

  update(done: number, detail = ''): void {
    this.done = done;
    this.detail = detail;
    if (!this.enabled) return;
    const now = Date.now();
    // Nothing for the first redraw period: a quick command should not flash a bar.
    if (now - this.started < REDRAW_MS || now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    this.draw();
  }

  tick(detail = ''): void {
    this.update(this.done + 1, detail);
  }

  private draw(): void {
    const extra = this.detail === '' ? '' : ` ${this.detail}`;
    if (this.total === undefined || this.total === 0) {
      this.spin = (this.spin + 1) % SPINNER.length;
      const seconds = ((Date.now() - this.started) / 1000).toFixed(1);
      showProgress(`${this.label} ${SPINNER[this.spin]} ${seconds}s${extra}`);
      return;
    }
    const ratio = Math.min(1, this.done / this.total);
    const filled = Math.round(ratio * BAR_WIDTH);
    const bar = `${'#'.repeat(filled)}${' '.repeat(BAR_WIDTH - filled)}`;
    showProgress(`${this.label} [${bar}] ${this.done}/${this.total} dirs${extra}`);
  }

  finish(): void {
    if (this.enabled) clearProgress();
  }
}
