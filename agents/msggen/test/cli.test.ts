import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQN, Message } from '@msgbricks/message';
import { removeDir, tempDir } from '@msgbricks/test-support';

// The built command, as users run it: `npm test` (or `npx tsc -b`) builds it first.
const CLI = join(__dirname, '..', 'dist', 'main.js');

let tmp: string;

beforeAll(() => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} missing: run npx tsc -b first`);
});

beforeEach(() => {
  tmp = tempDir('msggen-cli-');
});

afterEach(() => {
  removeDir(tmp);
});

interface Result {
  status: number | null;
  out: string;
  err: string;
}

function msggen(args: string[]): Result {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: tmp, env: { ...process.env, MSGGEN_DEBUG: '' }, timeout: 30000 });
  return { status: r.status, out: r.stdout.toString('utf8'), err: r.stderr.toString('utf8') };
}

function ok(args: string[]): Result {
  const r = msggen(args);
  if (r.status !== 0) throw new Error(`msggen ${args.join(' ')}: exit ${r.status}: ${r.err}`);
  return r;
}

function expectUsageError(r: Result, pattern: RegExp): void {
  expect(r.status).toBe(2);
  expect(r.out).toBe('');
  expect(r.err).toMatch(/^msggen: [^\n]+\n$/);
  expect(r.err).toMatch(pattern);
  expect(r.err).not.toMatch(/\n\s+at /);
}

/** The element files of a DQS queue (XXXXXXXX/XXXXXXXXXXXXXX), sorted. */
function dqsElements(q: string): string[] {
  if (!fs.existsSync(q)) return [];
  const out: string[] = [];
  for (const dir of fs.readdirSync(q).sort()) {
    if (!/^[0-9a-f]{8}$/.test(dir)) continue;
    for (const f of fs.readdirSync(join(q, dir)).sort()) if (/^[0-9a-f]{14}$/.test(f)) out.push(join(q, dir, f));
  }
  return out;
}

function dqsMessages(q: string): Message[] {
  return dqsElements(q).map((p) => Message.deserialize(fs.readFileSync(p)));
}

describe('msggen', () => {
  test('msggen - fills a DQS queue with N python-style messages and reports what it did', () => {
    const q = join(tmp, 'q');
    const r = ok([
      '--queue',
      `type=DQS path=${q}`,
      '--count',
      '25',
      '--body-content',
      'text',
      '--body-size',
      '-100',
      '--header-count',
      '3',
    ]);
    expect(r.out).toMatch(/^added 25 messages \(\d+ bytes\) to DQS \S+ in \d+\.\d{3} s: \d+ messages\/s, \d+\.\d\d MB\/s\n$/);
    expect(r.err).toBe('');
    const msgs = dqsMessages(q);
    expect(msgs).toHaveLength(25);
    for (const m of msgs) {
      expect(m.text).toBe(true);
      expect(m.body).toMatch(/^[0-9a-f]*$/);
      expect(Object.keys(m.header).length).toBeGreaterThan(0);
      for (const k of Object.keys(m.header)) expect(k).toMatch(/^rnd-/);
    }
  });

  test('msggen - default messages are python index bodies 0..N-1', () => {
    const q = join(tmp, 'q');
    ok(['--queue', `path=${q}`, '--count', '5']);
    const bodies = dqsMessages(q).map((m) => m.body);
    expect(bodies.sort()).toEqual(['0', '1', '2', '3', '4']);
  });

  test('msggen - --json summary with count and bytes, Perl-style options, compression', () => {
    const q = join(tmp, 'q');
    const r = ok([
      '--queue',
      `type=DQS path=${q}`,
      '--count',
      '10',
      '--text',
      '1',
      '--body-length',
      '1000',
      '--body-entropy',
      '0',
      '--header-count',
      '2',
      '--header-name-length',
      '5',
      '--header-value-prefix',
      'v-',
      '--compression',
      'zlib',
      '--json',
    ]);
    const summary = JSON.parse(r.out);
    expect(summary).toMatchObject({ queue: 'DQS', path: q, count: 10 });
    const msgs = dqsMessages(q);
    expect(msgs).toHaveLength(10);
    expect(summary.bytes).toBe(msgs.reduce((n, m) => n + m.size(), 0));
    expect(typeof summary.elapsed).toBe('number');
    expect(typeof summary.rate).toBe('number');
    for (const p of dqsElements(q)) expect(fs.readFileSync(p, 'utf8')).toContain('"encoding": "utf8+zlib+base64"');
    for (const m of msgs) {
      expect(m.body).toMatch(/^([A-Z])\1{999}$/);
      for (const [k, v] of Object.entries(m.header)) {
        expect(k).toMatch(/^rnd-[A-Za-z0-9_-]{5}$/);
        expect(v).toMatch(/^v-/);
      }
    }
  });

  test('msggen - binary random bodies round trip, and the same seed gives the same messages', () => {
    const args = (q: string) => [
      '--queue',
      `type=DQS path=${q}`,
      '--count',
      '8',
      '--body-entropy',
      '4',
      '--body-size',
      '10-300',
      '--seed',
      's1',
    ];
    ok(args(join(tmp, 'a')));
    ok(args(join(tmp, 'b')));
    const a = dqsMessages(join(tmp, 'a'));
    const b = dqsMessages(join(tmp, 'b'));
    expect(a).toHaveLength(8);
    expect(a.every((m) => !m.text)).toBe(true);
    expect(a.map((m) => m.md5()).sort()).toEqual(b.map((m) => m.md5()).sort());
  });

  test('msggen - fills a DQN queue', async () => {
    const q = join(tmp, 'n');
    ok([
      '--queue',
      `type=DQN path=${q}`,
      '--count',
      '6',
      '--body-entropy',
      'unicode',
      '--text',
      '0-1',
      '--body-size',
      '50',
      '--header-count',
      '1',
    ]);
    const dqn = new DQN(q);
    expect(await dqn.count()).toBe(6);
    for await (const name of dqn) {
      await dqn.lock(name);
      const m = await dqn.getMessage(name);
      expect(Object.keys(m.header)).toHaveLength(1);
      expect(typeof m.body === 'string' ? Array.from(m.body).length : m.body.length).toBe(50);
    }
  });

  test('msggen - --count 0 and the NULL queue', () => {
    expect(
      JSON.parse(ok(['--queue', 'type=NULL', '--count', '100', '--body-size', '100', '--body-content', 'binary', '--json']).out),
    ).toMatchObject({
      queue: 'NULL',
      path: null,
      count: 100,
    });
    ok(['--queue', `path=${join(tmp, 'q')}`, '--count', '0']);
    expect(dqsElements(join(tmp, 'q'))).toEqual([]);
  });

  test('msggen - bad generator options and queue spec: every problem on one line, exit 2, nothing created', () => {
    const q = join(tmp, 'q');
    const r = msggen(['--queue', `type=DQX path=${q}`, '--body-size', 'big', '--text', '7', '--header-name-entropy', '9']);
    expectUsageError(r, /--body-size: .*"big"/);
    expect(r.err).toMatch(/--text: /);
    expect(r.err).toMatch(/--header-name-entropy: at most 4/);
    expect(r.err).toMatch(/unknown type: "DQX"/);
    expect(fs.existsSync(q)).toBe(false);
  });

  test('msggen - usage errors: unknown option, missing queue, bad count, duplicates, compression on DQN', () => {
    const q = `path=${join(tmp, 'q')}`;
    expectUsageError(msggen(['--queue', q, '--bogus']), /Unknown argument: bogus/);
    expectUsageError(msggen(['--count', '3']), /Missing required argument: queue/);
    expectUsageError(msggen(['--queue', q, '--count', '1.5']), /invalid --count/);
    expectUsageError(msggen(['--queue', q, '--count', 'x']), /invalid --count/);
    // Was: read as 0, "added 0 messages", exit 0.
    expectUsageError(msggen(['--queue', q, '--count', '']), /invalid --count: ""/);
    expectUsageError(msggen(['--queue', q, '--count=']), /invalid --count/);
    expectUsageError(msggen(['--queue', q, '--body-size', '1', '--body-length', '2']), /given more than once/);
    expectUsageError(msggen(['--queue', q, '--body-content', 'text', '--body-entropy', '1']), /one or the other/);
    expectUsageError(msggen(['--queue', q, '--compression', 'gzip']), /compression/);
    expectUsageError(msggen(['--queue', `type=DQN ${q}`, '--compression', 'zlib']), /does not apply to DQN/);
    expect(fs.existsSync(join(tmp, 'q'))).toBe(false);
  });

  test('msggen - --help prints the usage first and exits 0', () => {
    const r = ok(['--help']);
    expect(r.out).toMatch(/^msggen --queue SPEC/);
    expect(r.out).toMatch(/--body-entropy/);
  });
});
