import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQS, Message } from '@msgbricks/message';
import { removeDir, tempDir } from '@msgbricks/test-support';
import { CallbackError, inlineCallback, moduleCallback } from '../src/core/callback';
import { CallbackCrashError, WorkerCallback } from '../src/core/callback-worker';
import type { Callback } from '../src/core/modules';
import { DEAD_LETTER_REASON, runPipeline } from '../src/core/pipeline';
import { QueueIncoming, QueueOutgoing } from '../src/core/queues';

jest.setTimeout(30_000);

let tmp: string;
const open: WorkerCallback[] = [];
beforeEach(() => {
  tmp = tempDir('agent-callback-');
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
  removeDir(tmp);
});

async function worker(
  source: { code: string } | { path: string },
  onCrash?: (e: CallbackError) => void,
): Promise<WorkerCallback> {
  const cb = await WorkerCallback.load(source, { onCrash });
  open.push(cb);
  return cb;
}

function moduleFile(text: string, name = 'cb.js'): string {
  const file = join(tmp, name);
  fs.writeFileSync(file, text);
  return file;
}

/** The outcome of one check, comparable across implementations: [header entries, body, text] or ['drop', reason] or ['error', message]. */
async function run(cb: Callback, m: Message): Promise<unknown> {
  try {
    const out = await cb.check(m);
    if (typeof out === 'string') return ['drop', out];
    return [out.headerEntries(), out.body, out.text];
  } catch (err) {
    return ['error', (err as Error).message];
  }
}

const binary = Buffer.from([0, 255, 1, 2, 0, 10]);
const inputs = [
  new Message({ header: { seq: '1', destination: '/queue/a' }, body: 'Déjà vu ☺' }),
  new Message({ header: { seq: '2', kind: 'bin' }, body: binary }),
  new Message({ header: { seq: '3' }, body: Buffer.alloc(0) }),
  // A Buffer sharing its ArrayBuffer with others (Node's pool), sliced: only its own bytes must cross.
  new Message({ header: { seq: '4' }, body: Buffer.from('pooled bytes').subarray(2, 9) }),
];

const INLINE_CASES: [string, string][] = [
  ['rewrites headers', "hdr.destination = '/queue/b'; delete hdr.kind; hdr.len = String(body.length);"],
  ['drops by reason', "if (hdr.seq !== '1') return 'not one';"],
  ['returns a new Message', "return new Message({ header: { from: hdr.seq }, body: 'new ' + msg.text });"],
  ['returns {header, body}', "return { header: { only: 'this' }, body: Buffer.from([7, 8, 9]) };"],
  ['returns msg.with()', "return msg.with({ header: { ...hdr, extra: 'x' } });"],
  ['throws', "if (hdr.seq === '2') throw new Error('boom ' + hdr.seq);"],
  ['returns a number', 'return 42;'],
  ['sets a non-string header', 'hdr.n = 5;'],
];

describe('agent callback worker', () => {
  test.each(INLINE_CASES)(
    'agent callback worker - inline code that %s gives what the in-thread callback gives',
    async (_, code) => {
      const inThread = inlineCallback(code);
      const inWorker = await worker({ code });
      for (const m of inputs) expect(await run(inWorker, m)).toEqual(await run(inThread, m));
    },
  );

  test('agent callback worker - a module (async check, start data, idle, stop) gives what the in-thread module gives', async () => {
    const log = join(tmp, 'log.json');
    const file = moduleFile(
      `const fs = require('node:fs'); const calls = []; let tag;
       exports.start = (data) => { tag = data.tag; calls.push('start:' + data.tag); };
       exports.check = async (msg) => {
         calls.push('check:' + msg.getHeader('seq'));
         await new Promise((r) => setTimeout(r, 1));
         if (msg.getHeader('seq') === '3') return 'empty';
         return msg.with({ header: { ...msg.header, tag } });
       };
       exports.idle = () => calls.push('idle');
       exports.stop = async () => { calls.push('stop'); fs.writeFileSync(${JSON.stringify(log)}, JSON.stringify(calls)); };`,
    );
    const inThread = moduleCallback(file);
    await inThread.start?.({ tag: 'blue' });
    const want = [];
    for (const m of inputs) want.push(await run(inThread, m));
    const w = await worker({ path: file });
    await w.start({ tag: 'blue' });
    for (const [i, m] of inputs.entries()) expect(await run(w, m)).toEqual(want[i]);
    await w.idle();
    await w.stop();
    expect(JSON.parse(fs.readFileSync(log, 'utf8'))).toEqual([
      'start:blue',
      'check:1',
      'check:2',
      'check:3',
      'check:4',
      'idle',
      'stop',
    ]);
    // Stopped means ended: no more calls.
    await expect(w.check(inputs[0] as Message)).rejects.toThrow(/closed/);
  });

  test('agent callback worker - a module exporting default, and hooks that are absent', async () => {
    const w = await worker({ path: moduleFile("exports.default = { check: (msg) => 'dropped ' + msg.getHeader('seq') };") });
    await w.start({});
    await w.idle();
    expect(await w.check(inputs[0] as Message)).toBe('dropped 1');
    await w.stop();
  });

  test('agent callback worker - code that cannot be loaded is a CallbackError at load, with stompclt-like messages', async () => {
    const cases: [{ code: string } | { path: string }, RegExp][] = [
      [{ code: 'if (' }, /^invalid callback code: Unexpected token/],
      [{ path: join(tmp, 'missing.js') }, /^callback module not found: .*missing\.js$/],
      [{ path: moduleFile('exports.nocheck = 1;', 'a.js') }, /^callback module .*a\.js exports no check\(\) function$/],
      [{ path: moduleFile("throw new Error('bad module');", 'b.js') }, /^cannot load callback module .*b\.js: bad module$/],
      // A timer started before the failure must not keep the worker (and the load) waiting.
      [{ path: moduleFile("setInterval(() => {}, 1000); throw new Error('late');", 'c.js') }, /: late$/],
      [{ path: moduleFile('process.exit(3);', 'd.js') }, /^callback worker exited with code 3$/],
    ];
    for (const [source, message] of cases) {
      const err = await WorkerCallback.load(source).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(CallbackError);
      expect((err as Error).message).toMatch(message);
    }
  });

  test('agent callback worker - a busy check does not block the event loop (the in-thread one does)', async () => {
    const code = "const t = Date.now(); while (Date.now() - t < 1500); hdr.busy = 'done';";
    /** The longest gap between 20 ms ticks of the main thread's timers while the check runs. */
    const longestGap = async (cb: Callback) => {
      let last = Date.now();
      let gap = 0;
      const tick = setInterval(() => {
        gap = Math.max(gap, Date.now() - last);
        last = Date.now();
      }, 20);
      await new Promise((r) => setTimeout(r, 50));
      const out = (await cb.check(inputs[0] as Message)) as Message;
      await new Promise((r) => setTimeout(r, 50));
      clearInterval(tick);
      expect(out.getHeader('busy')).toBe('done');
      return gap;
    };
    // Well under the 1.5 s check, with room for a loaded machine's scheduling gaps.
    expect(await longestGap(await worker({ code }))).toBeLessThan(1000);
    expect(await longestGap(inlineCallback(code))).toBeGreaterThanOrEqual(1400);
  });

  test('agent callback worker - calls are processed one at a time, in order', async () => {
    const file = moduleFile(
      `const seen = []; let busy = false;
       exports.check = async (msg) => {
         if (busy) throw new Error('overlap');
         busy = true;
         await new Promise((r) => setTimeout(r, Math.random() * 3));
         seen.push(msg.getHeader('n'));
         busy = false;
         return msg.with({ header: { n: msg.getHeader('n'), order: seen.join(',') } });
       };`,
    );
    const w = await worker({ path: file });
    const all = await Promise.all(
      Array.from({ length: 40 }, (_, i) => w.check(new Message({ header: { n: String(i) }, body: `b${i}` }))),
    );
    const order = Array.from({ length: 40 }, (_, i) => String(i));
    expect(all.map((m) => (m as Message).getHeader('n'))).toEqual(order);
    expect((all[39] as Message).getHeader('order')).toBe(order.join(','));
  });

  test('agent callback worker - process.exit() in check fails that message only; a new worker (start again) takes the next', async () => {
    const crashes: string[] = [];
    const file = moduleFile(
      `let started = 0; let checked = 0;
       exports.start = () => { started++; };
       exports.check = (msg) => {
         if (msg.getHeader('seq') === '2') process.exit(7);
         checked++;
         return msg.with({ header: { ...msg.header, started: String(started), checked: String(checked) } });
       };`,
    );
    const w = await worker({ path: file }, (e) => crashes.push(e.message));
    await w.start({});
    // All asked for at once (as the pipeline does): the ones queued behind the crash go to the new worker, in order.
    const results = await Promise.allSettled(inputs.map((m) => w.check(m)));
    const crash = results[1] as PromiseRejectedResult;
    expect(crash.status).toBe('rejected');
    expect(crash.reason).toBeInstanceOf(CallbackCrashError);
    expect((crash.reason as Error).message).toBe('callback worker exited with code 7');
    expect(crashes).toEqual(['callback worker exited with code 7']);
    const ok = results.map((r) => (r.status === 'fulfilled' ? (r.value as Message) : undefined));
    expect(ok.map((m) => m && [m.getHeader('seq'), m.getHeader('started'), m.getHeader('checked')])).toEqual([
      ['1', '1', '1'],
      undefined,
      // The new worker was started with the same data; its state is new.
      ['3', '1', '1'],
      ['4', '1', '2'],
    ]);
  });

  test('agent callback worker - an exception thrown from a timer is reported, and does not hang the check in progress', async () => {
    const crashes: string[] = [];
    const code = "setTimeout(() => { throw new Error('from a timer'); }, 10); return new Promise(() => undefined);";
    const w = await worker({ code }, (e) => crashes.push(e.message));
    const err = await w.check(inputs[0] as Message).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as Error).message).toBe('callback worker crashed: from a timer');
    expect(crashes).toEqual(['callback worker crashed: from a timer']);
    // While idle too: reported, and idle() itself does not fail.
    const idleCrash = await worker(
      { path: moduleFile("exports.check = (m) => m; setTimeout(() => { throw new Error('idle boom'); }, 50);") },
      (e) => crashes.push(e.message),
    );
    // Once the worker's timer has thrown and the crash was reported (the worker's start-up is slow under load).
    while (crashes.length < 2) await new Promise((r) => setTimeout(r, 20));
    await idleCrash.idle();
    expect(crashes).toEqual(['callback worker crashed: from a timer', 'callback worker crashed: idle boom']);
  });

  test('agent callback worker - in the pipeline: a throwing check is dead-lettered with its reason, the rest goes on', async () => {
    const a = new DQS(join(tmp, 'a'));
    const b = new DQS(join(tmp, 'b'));
    const dead = new DQS(join(tmp, 'dead'));
    for (let i = 0; i < 20; i++)
      await a.addMessage(new Message({ header: { seq: String(i) }, body: i % 2 ? `text ${i}` : binary }));
    const cb = await worker({ code: "if (hdr.seq === '7') throw new Error('boom'); hdr.checked = 'yes';" });
    const stats = await runPipeline(new QueueIncoming(a, { remove: true }), new QueueOutgoing(b), {
      callback: cb,
      deadLetter: new QueueOutgoing(dead),
    });
    expect([stats.sent, stats.deadLettered]).toEqual([19, 1]);
    const out: Message[] = [];
    for await (const name of b) {
      await b.lock(name);
      out.push(await b.getMessage(name));
    }
    expect(out.every((m) => m.getHeader('checked') === 'yes')).toBe(true);
    for (const m of out) expect(m.body).toEqual(Number(m.getHeader('seq')) % 2 ? `text ${m.getHeader('seq')}` : binary);
    for await (const name of dead) {
      await dead.lock(name);
      expect((await dead.getMessage(name)).getHeader(DEAD_LETTER_REASON)).toBe('callback failed: boom');
    }
    await expect(cb.check(inputs[0] as Message)).rejects.toThrow(/closed/);
  });
});
