import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { RotatingLog } from '@msgbricks/supervisor';
import { removeDir, tempDir } from '@msgbricks/test-support';
import { NODE, tree, waitFor, writeFiles } from './helpers';

// Children are real processes: a few start-ups on a loaded 2-core machine exceed jest's 5 s default.
jest.setTimeout(60_000);

const dir = { path: '' };
beforeEach(() => {
  dir.path = tempDir('supervise-logs-');
});
afterEach(() => removeDir(dir.path));

/** The files of a rotated log, oldest first: NAME.log.K ... NAME.log.1, NAME.log. */
function rotated(logDir: string, name: string): string[] {
  const files = fs.readdirSync(logDir).filter((f) => f.startsWith(name));
  const n = (f: string) => (f === name ? 0 : Number(f.slice(name.length + 1)));
  return files.sort((a, b) => n(b) - n(a)).map((f) => path.join(logDir, f));
}

describe('supervise logs', () => {
  test('logs - rotation under a child writing continuously loses no line, and each file holds whole lines', async () => {
    const logDir = path.join(dir.path, 'log');
    fs.mkdirSync(logDir);
    const LINES = 30_000;
    // Writes as fast as the pipe takes it, both streams, then exits 0 (no_restart_exit: done, not restarted).
    writeFiles(dir.path, {
      'writer.js': `let i = 0;
function more() {
  while (i < ${LINES}) {
    const line = 'line ' + i + ' ' + 'x'.repeat(i % 50) + '\\n';
    const ok = (i % 10 === 0 ? process.stderr : process.stdout).write(line);
    i++;
    if (!ok) return (i % 10 === 1 ? process.stderr : process.stdout).once('drain', more);
  }
}
more();
process.on('beforeExit', () => process.exit(0));
`,
    });
    const { sup } = tree(
      dir.path,
      `<simplevisor>\nlog_dir = ${logDir}\nlog_max_size = 32768\nlog_keep = 1000\n</simplevisor>\n` +
        `<entry>\ntype = supervisor\nname = top\n<children>\n<entry>\ntype = service\nname = writer\n` +
        `command = ${NODE} ${path.join(dir.path, 'writer.js')}\nno_restart_exit = 0\n</entry>\n</children>\n</entry>\n`,
    );
    await sup.start();
    await waitFor('writer done', () => sup.status().children?.[0]?.lastExit === 'exited with 0', 30_000);
    await sup.stop();
    const files = rotated(logDir, 'top.writer.log');
    expect(files.length).toBeGreaterThan(20);
    // The raw layout: the current file and numbered old ones, nothing else.
    for (const f of fs.readdirSync(logDir)) expect(f).toMatch(/^top\.writer\.log(\.\d+)?$/);
    const seen: number[] = [];
    for (const f of files) {
      const text = fs.readFileSync(f, 'utf8');
      expect(fs.statSync(f).size).toBeLessThanOrEqual(32768);
      if (text !== '') expect(text.endsWith('\n')).toBe(true);
      for (const line of text.split('\n').slice(0, -1)) {
        const m = /^line (\d+) x*$/.exec(line);
        expect(m).not.toBeNull();
        const i = Number((m as RegExpExecArray)[1]);
        expect(line.length).toBe(`line ${i} `.length + (i % 50));
        seen.push(i);
      }
    }
    // Every line once; stdout's lines in order, and stderr's.
    expect(seen.length).toBe(LINES);
    expect(new Set(seen).size).toBe(LINES);
    const out = seen.filter((i) => i % 10 !== 0);
    const err = seen.filter((i) => i % 10 === 0);
    expect(out).toEqual([...out].sort((a, b) => a - b));
    expect(err).toEqual([...err].sort((a, b) => a - b));
  });

  test('logs - keep bounds the old files; unfinished lines wait for their end, per source', () => {
    const file = path.join(dir.path, 'x.log');
    const log = new RotatingLog(file, { maxSize: 1024, keep: 2 });
    log.write('out', Buffer.from('half'));
    log.write('err', Buffer.from('error line\n'));
    log.write('out', Buffer.from(' and the rest\n'));
    expect(fs.readFileSync(file, 'utf8')).toBe('error line\nhalf and the rest\n');
    for (let i = 0; i < 100; i++) log.write('out', Buffer.from(`${String(i).padStart(99, '.')}\n`));
    log.write('out', Buffer.from('no newline yet'));
    log.close();
    expect(fs.readdirSync(dir.path).sort()).toEqual(['x.log', 'x.log.1', 'x.log.2']);
    const last = fs.readFileSync(file, 'utf8').split('\n');
    expect(last.at(-2)).toBe('no newline yet');
    // A line longer than a whole file is kept whole.
    const big = new RotatingLog(path.join(dir.path, 'big.log'), { maxSize: 1024, keep: 1 });
    big.write('out', Buffer.from(`${'y'.repeat(3000)}\nz\n`));
    big.close();
    expect(fs.readFileSync(path.join(dir.path, 'big.log.1'), 'utf8')).toBe(`${'y'.repeat(3000)}\n`);
    expect(fs.readFileSync(path.join(dir.path, 'big.log'), 'utf8')).toBe('z\n');
  });
  test('logs - output = syslog: every line of stdout and stderr a syslog message, tagged LOGNAME/PATH', async () => {
    const socket = path.join(dir.path, 'syslog.sock');
    let received = '';
    const server = net.createServer((c) =>
      c.on('data', (b: Buffer) => {
        received += b.toString('utf8');
      }),
    );
    await new Promise<void>((r) => server.listen(socket, r));
    writeFiles(dir.path, { 'talk.js': "console.log('first'); console.error('oops'); console.log('second');" });
    const { sup } = tree(
      dir.path,
      `<simplevisor>\nsyslog_socket = ${socket}\nlogname = site\n</simplevisor>\n<entry>\ntype = supervisor\nname = top\n<children>\n` +
        `<entry>\ntype = service\nname = talk\ncommand = ${NODE} ${path.join(dir.path, 'talk.js')}\noutput = syslog\nno_restart_exit = 0\n</entry>\n</children>\n</entry>\n`,
    );
    await sup.start();
    await waitFor('three messages', () => (received.match(/site\/top\/talk: /g) ?? []).length === 3);
    await sup.stop();
    server.close();
    const lines = received
      .split(/\n|\0/)
      .filter((l) => l !== '')
      .map((l) => l.replace(/^<\d+>.*? site\/top\/talk: /, ''));
    expect(lines.sort()).toEqual(['first', 'oops', 'second']);
  });
});
