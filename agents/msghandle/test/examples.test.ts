// The handler examples run as their READMEs say: spool-examples/dirq-handler/handler.js (on @msgbricks/handler,
// loaded by name) and spool-examples/msghandle/handle.sh under the built msghandle.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DEAD_LETTER_REASON } from '@msgbricks/handler';
import { DQS, Message } from '@msgbricks/message';
import { PYTHON, useTempDir } from '@msgbricks/test-support';
import { checkBuilt, drain, filesOf, fill, msghandle, ROOT, until } from './helpers';

jest.setTimeout(90_000);

const tmp = useTempDir('msgbricks-examples-');
const EXAMPLES = join(ROOT, 'spool-examples');

beforeAll(checkBuilt);

function node(args: string[]): Promise<{ status: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, out, err }));
  });
}

describe('examples', () => {
  test('examples - dirq-handler/handler.js handles what Node and python-dirq add, dead-letters what fails five times', async () => {
    const spool = join(tmp.path, 'spool');
    const dead = join(tmp.path, 'dead');
    await fill(spool, [new Message({ header: { id: '1' }, body: 'hello from msgbricks' })]);
    const py = spawn(PYTHON, [
      '-c',
      'import sys; from dirq.QueueSimple import QueueSimple; q = QueueSimple(sys.argv[1]); q.add(b\'{"header": {"id": "2"}, "body": "hello from python-dirq"}\'); q.add(b\'{"header": {"fail": "yes"}, "body": "never handled"}\')',
      spool,
    ]);
    expect(await new Promise((resolve) => py.on('close', resolve))).toBe(0);
    const r = await node([join(EXAMPLES, 'dirq-handler', 'handler.js'), spool, dead, '--drain']);
    expect(r.status).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines.filter((l) => l.includes('hello from msgbricks'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('hello from python-dirq'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('never handled')).map((l) => /\(attempt (\d)\)/.exec(l)?.[1])).toEqual([
      '1',
      '2',
      '3',
      '4',
      '5',
    ]);
    expect(r.err).toMatch(/dead-lettered: asked to fail/);
    expect(r.err).toMatch(/handled 2, failed attempts 5, dead-lettered 1/);
    expect(filesOf(spool)).toEqual([]);
    const [d] = await drain(new DQS(dead));
    expect([String(d?.body), d?.getHeader(DEAD_LETTER_REASON)]).toEqual(['never handled', 'failed 5 attempts']);
  });

  test('examples - dirq-handler/handler.js without a spool: usage, exit 2', async () => {
    const r = await node([join(EXAMPLES, 'dirq-handler', 'handler.js')]);
    expect([r.status, r.err]).toEqual([2, 'usage: handler.js SPOOL [DEAD_LETTER_SPOOL] [--drain]\n']);
  });

  test('examples - msghandle/handle.sh stores each body in a file, fails on request, then the message is dead-lettered', async () => {
    const spool = join(tmp.path, 'spool');
    const out = join(tmp.path, 'out');
    const dead = join(tmp.path, 'dead');
    await fill(spool, [
      new Message({ header: { 'content-type': 'text/plain' }, body: 'first' }),
      new Message({ body: Buffer.from([0, 1, 2, 255]) }),
      new Message({ header: { action: 'fail' }, body: 'bad' }),
    ]);
    const r = await msghandle([
      '--queue',
      `path=${spool}`,
      '--exec',
      `${join(EXAMPLES, 'msghandle', 'handle.sh')} ${out}`,
      '--max-attempts',
      '3',
      '--retry-delay',
      '0.01',
      '--dead-letter-queue',
      `path=${dead}`,
      '--drain',
    ]).done;
    expect(r.status).toBe(0);
    expect(r.out.match(/^stored [0-9a-f]{8}\/[0-9a-f]{14} \(attempt 1, type (text\/plain|none)\) in /gm)).toHaveLength(2);
    expect((r.err.match(/asked to fail/g) ?? []).length).toBe(3);
    const stored = fs.readdirSync(out).sort();
    expect(stored).toHaveLength(2);
    expect(stored.every((f) => /^[0-9a-f]{8}-[0-9a-f]{14}$/.test(f))).toBe(true);
    const bodies = stored.map((f) => fs.readFileSync(join(out, f)));
    expect(bodies[0]?.toString()).toBe('first');
    expect(bodies[1]?.equals(Buffer.from([0, 1, 2, 255]))).toBe(true);
    expect((await drain(new DQS(dead))).map((m) => m.body)).toEqual(['bad']);
    expect(filesOf(spool)).toEqual([]);
  });

  test('examples - msghandle/handle.sh: exit 75 leaves the message for later, uncounted', async () => {
    const spool = join(tmp.path, 'spool');
    await fill(spool, [new Message({ header: { action: 'later' }, body: 'not now' })]);
    const run = msghandle([
      '--queue',
      `path=${spool}`,
      '--exec',
      `${join(EXAMPLES, 'msghandle', 'handle.sh')} ${tmp.path}/out`,
      '--retry-delay',
      '0.05',
    ]);
    await until(() => (run.err().match(/info: retry later/g) ?? []).length >= 2, 'two retry-laters');
    run.child.kill('SIGTERM');
    const r = await run.done;
    expect(r.status).toBe(0);
    expect(r.err).not.toMatch(/attempt failed/);
    expect(r.err).toMatch(/stopped handled=0 failed=0 /);
    // Still there: the element and its record (the retry time), nothing locked.
    expect(filesOf(spool).sort()).toEqual([
      expect.stringMatching(/^[0-9a-f]{8}\/[0-9a-f]{14}$/),
      expect.stringMatching(/\.att$/),
    ]);
  });
});
