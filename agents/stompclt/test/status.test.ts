/**
 * The live status line, which only a terminal gets: the command runs under a pseudo-terminal made by util-linux's
 * `script` (Debian's bsdutils, always installed), and without one as the other tests run it.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { CLI, checkBuilt, fill, stompclt, tempDir } from './helpers';

let tmp: string;
beforeAll(() => {
  checkBuilt();
  if (spawnSync('script', ['--version']).status !== 0) throw new Error('script (util-linux, Debian bsdutils) is needed');
});
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const CLEAR = '\r\x1b[K';

/** Runs the command with its stdout and stderr on a pseudo-terminal; resolves to what the terminal got. */
function onTerminal(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; text: string }> {
  const command = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    cwd: tmp,
    env: { ...process.env, TERM: 'xterm', COLUMNS: '200', STOMPCLT_DEBUG: '', ...extraEnv },
  });
  let text = '';
  child.stdout.on('data', (d: Buffer) => {
    text += d.toString('utf8');
  });
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, text })));
}

describe('stompclt - live status', () => {
  const args = () => [
    '--incoming-queue',
    `path=${join(tmp, 'a')}`,
    '--outgoing-queue',
    `path=${join(tmp, 'b')}`,
    '--remove',
    '--loop',
  ];

  test('stompclt - on a terminal: the counts, written again in place every second, cleared at exit', async () => {
    await fill(join(tmp, 'a'), 12);
    const r = await onTerminal([...args(), '--duration', '2.5', '-s']);
    expect(r.status).toBe(0);
    const updates = r.text.split(CLEAR).filter((part) => part.startsWith('stompclt: in '));
    expect(updates.length).toBeGreaterThanOrEqual(2);
    expect(updates[updates.length - 1]).toMatch(/^stompclt: in 12 out 12 acked 12 pending 0 rate \d+\.\d msg\/s$/);
    // Cleared before the log line and before the statistics: no status text runs into them.
    const before = (what: string) => {
      const at = r.text.indexOf(what);
      expect(at).toBeGreaterThan(0);
      return r.text.slice(r.text.lastIndexOf('\n', at) + 1, at);
    };
    const finished = before('info: transfer finished').split(CLEAR);
    expect(finished.length).toBeGreaterThan(1);
    expect(finished[finished.length - 1]).toMatch(/^\d{4}-\d\d-\d\dT\S+ stompclt\[\d+\]: $/);
    expect(finished.slice(0, -1).join('')).toMatch(/^(stompclt: in [^\r]*)?$/);
    expect(before('count: 12 messages').split(CLEAR).pop()).toBe('');
    expect(r.text.trimEnd()).toMatch(/stopped by: duration\r?\nacked: 12, skipped elements: 0, spool faults: 0$/);
  }, 30000);

  test('stompclt - no status with --debug, nor on a dumb terminal, nor without a terminal', async () => {
    await fill(join(tmp, 'a'), 2);
    const debug = await onTerminal([...args(), '--duration', '1.5', '-d']);
    expect(debug.status).toBe(0);
    expect(debug.text).not.toContain('stompclt: in ');
    const dumb = await onTerminal([...args(), '--duration', '1.5'], { TERM: 'dumb' });
    expect(dumb.status).toBe(0);
    expect(dumb.text).not.toContain('stompclt: in ');
    const piped = stompclt([...args(), '--duration', '1.5'], tmp);
    expect(piped.status).toBe(0);
    expect(piped.err).not.toContain('\x1b');
    expect(piped.err).not.toContain('stompclt: in ');
    // Three runs of 1.5 s plus three start-ups: well past jest's 5 s default on a loaded machine.
  }, 60000);
});
