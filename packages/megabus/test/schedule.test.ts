import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { RetryLaterError } from '@msgbricks/handler';
import {
  ABORT_GRACE_MS,
  type ActionFn,
  type EventRecord,
  eventOf,
  fieldValue,
  ManualClock,
  parseEventTime,
  recordName,
  type ScheduleEvent,
  Scheduler,
  type SchedulerOptions,
  type ScheduleStep,
} from '@msgbricks/megabus';
import { Message } from '@msgbricks/message';
import { layout, useTempDir } from '@msgbricks/test-support';

const dir = useTempDir('megabus-schedule-');
const S = 1000;

/** Steps that record when they ran (clock time relative to the event), by name. */
function recorder(clock: ManualClock, t0: number) {
  const calls: string[] = [];
  const step = (name: string, at: number, action?: ActionFn, extra: Partial<ScheduleStep> = {}): ScheduleStep => ({
    name,
    at,
    action: async (message, context) => {
      calls.push(`${name}@${(clock.now() - t0) / S}#${context.attempt}`);
      if (action !== undefined) await action(message, context);
    },
    ...extra,
  });
  return { calls, step };
}

function scheduler(clock: ManualClock, steps: ScheduleStep[], extra: Partial<SchedulerOptions> = {}) {
  const events: ScheduleEvent[] = [];
  const s = new Scheduler({
    dir: join(dir.path, 'schedule'),
    plugin: 'powercut',
    steps,
    clock,
    onEvent: (e) => events.push(e),
    ...extra,
  });
  return { s, events };
}

/**
 * An action like a command that takes its time to die: it notes its abort and ends (failing) only when the test
 * calls its `ends` entry.
 */
function dyingAction(clock: ManualClock, t0: number) {
  const log: string[] = [];
  const ends: (() => void)[] = [];
  const at = (): number => (clock.now() - t0) / S;
  const dying: ActionFn = (_m, c) =>
    new Promise((_, reject) => {
      log.push(`start#${c.attempt}@${at()}`);
      c.signal.addEventListener('abort', () => log.push(`abort#${c.attempt}@${at()}`), { once: true });
      ends.push(() => {
        log.push(`end#${c.attempt}@${at()}`);
        reject(new Error('killed'));
      });
    });
  return { log, ends, dying };
}

const readRecord = (key: string): EventRecord =>
  JSON.parse(fs.readFileSync(join(dir.path, 'schedule', recordName(key)), 'utf8')) as EventRecord;
const states = (r: EventRecord | undefined) => r?.steps.map((s) => `${s.name}:${s.state}`);
const message = (id: string) => new Message({ header: { event_id: id }, body: '{"room":"513"}' });

describe('megabus schedule', () => {
  test('schedule - steps run at their offsets from the event time, each recorded done on disk', async () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const { calls, step } = recorder(clock, t0);
    const { s, events } = scheduler(clock, [step('log', 0), step('script', 120), step('email', 240), step('shutdown', 360)]);
    await s.start();
    expect(await s.submit({ key: 'pc-1', time: t0, message: message('pc-1') })).toBe('scheduled');
    await clock.advance(0);
    expect(calls).toEqual(['log@0#1']);
    expect(states(readRecord('pc-1'))).toEqual(['log:done', 'script:pending', 'email:pending', 'shutdown:pending']);
    await clock.advance(119.9 * S);
    expect(calls).toEqual(['log@0#1']);
    await clock.advance(0.1 * S);
    expect(calls).toEqual(['log@0#1', 'script@120#1']);
    await clock.advance(300 * S);
    expect(calls).toEqual(['log@0#1', 'script@120#1', 'email@240#1', 'shutdown@360#1']);
    const r = readRecord('pc-1');
    expect(r).toMatchObject({ version: 1, key: 'pc-1', time: t0, state: 'completed', finished: t0 + 360 * S });
    expect(r.message).toEqual({ header: { event_id: 'pc-1' }, body: '{"room":"513"}', text: true });
    expect(r.steps.map((x) => [x.name, x.state, x.attempts, x.due - t0, x.started, x.finished])).toEqual([
      ['log', 'done', 1, 0, t0, t0],
      ['script', 'done', 1, 120 * S, t0 + 120 * S, t0 + 120 * S],
      ['email', 'done', 1, 240 * S, t0 + 240 * S, t0 + 240 * S],
      ['shutdown', 'done', 1, 360 * S, t0 + 360 * S, t0 + 360 * S],
    ]);
    expect(layout(join(dir.path, 'schedule'))).toEqual(['pc-1.json']);
    expect(events.map((e) => e.type)).toEqual([
      'scheduled',
      ...['step-started', 'step-done', 'step-started', 'step-done', 'step-started', 'step-done', 'step-started', 'step-done'],
      'completed',
    ]);
    expect(s.counters).toMatchObject({ scheduled: 1, completed: 1, stepsDone: 4, active: 0, running: 0 });
    await s.stop();
  });

  test('schedule - the action sees the message, the plugin, the attempt and the step with its key and due time', async () => {
    const clock = new ManualClock();
    const seen: unknown[] = [];
    const { s } = scheduler(clock, [
      { name: 'one', at: 10, action: async (m, c) => void seen.push([m.header, m.body, c.plugin, c.attempt, c.step]) },
    ]);
    await s.start();
    await s.submit({ key: 'k/1', time: clock.now(), message: message('k/1') });
    await clock.advance(10 * S);
    expect(seen).toEqual([[{ event_id: 'k/1' }, '{"room":"513"}', 'powercut', 1, { name: 'one', key: 'k/1', due: clock.now() }]]);
    // The key names the file, escaped: no key escapes the directory.
    expect(layout(join(dir.path, 'schedule'))).toEqual(['k%2F1.json']);
    await s.stop();
  });

  test('schedule - restart: completed steps are not repeated, steps due while down run at once in order, later ones re-armed', async () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const { calls, step } = recorder(clock, t0);
    const steps = () => [step('log', 0), step('script', 120), step('email', 240), step('shutdown', 360)];
    const a = scheduler(clock, steps());
    await a.s.start();
    await a.s.submit({ key: 'pc', time: t0, message: message('pc') });
    await clock.advance(150 * S);
    await a.s.stop();
    expect(calls).toEqual(['log@0#1', 'script@120#1']);
    await clock.advance(200 * S); // down from 150 s to 350 s: email (240 s) fell due
    expect(calls).toHaveLength(2);
    expect(states(readRecord('pc'))).toEqual(['log:done', 'script:done', 'email:pending', 'shutdown:pending']);
    const b = scheduler(clock, steps());
    await b.s.start();
    await clock.advance(0);
    expect(calls).toEqual(['log@0#1', 'script@120#1', 'email@350#1']);
    await clock.advance(10 * S);
    expect(calls).toEqual(['log@0#1', 'script@120#1', 'email@350#1', 'shutdown@360#1']);
    expect(readRecord('pc').state).toBe('completed');
    await b.s.stop();
    // A third start finds nothing to do.
    const c = scheduler(clock, steps());
    await c.s.start();
    await clock.advance(1000 * S);
    expect(calls).toHaveLength(4);
    await c.s.stop();
  });

  test('schedule - a step found started (a crash while it ran) runs again as its next attempt; an atMostOnce step is recorded failed', async () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const sched = join(dir.path, 'schedule');
    fs.mkdirSync(sched);
    const record = (key: string): EventRecord => ({
      version: 1,
      key,
      time: t0 - 300 * S,
      received: t0 - 300 * S,
      state: 'active',
      message: { header: { event_id: key } },
      steps: [
        { name: 'email', at: 240, due: t0 - 60 * S, state: 'done', attempts: 1 },
        { name: 'shutdown', at: 300, due: t0, state: 'started', attempts: 1, started: t0 - 1 * S },
      ],
    });
    fs.writeFileSync(join(sched, 'again.json'), JSON.stringify(record('again')));
    fs.writeFileSync(join(sched, 'once.json'), JSON.stringify(record('once')));
    // The leftover of an interrupted write: removed, the record beside it is whole.
    fs.writeFileSync(join(sched, 'once.json.tmp'), '{"version":1,"ke');
    const { calls, step } = recorder(clock, t0);
    const a = scheduler(clock, [step('email', 240), step('shutdown', 300)], { dir: sched });
    await a.s.start();
    await clock.advance(0);
    expect(calls).toEqual(['shutdown@0#2', 'shutdown@0#2']);
    await a.s.stop();
    expect(layout(sched)).toEqual(['again.json', 'once.json']);

    fs.writeFileSync(join(sched, 'once.json'), JSON.stringify(record('once')));
    const b = recorder(clock, t0);
    const c = scheduler(clock, [b.step('email', 240), b.step('shutdown', 300, undefined, { atMostOnce: true })], { dir: sched });
    await c.s.start();
    await clock.advance(0);
    expect(b.calls).toEqual([]);
    expect(readRecord('once')).toMatchObject({ state: 'completed' });
    expect(readRecord('once').steps[1]).toMatchObject({ state: 'failed', attempts: 1, error: 'interrupted (run at most once)' });
    expect(c.events).toContainEqual({ type: 'step-interrupted', key: 'once', step: 'shutdown', attempt: 1, rerun: false });
    await c.s.stop();
  });

  test('schedule - cancel: the steps not run are cancelled, the running one is aborted, the record says so', async () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const { calls, step } = recorder(clock, t0);
    let abortedWith: unknown;
    const slow: ActionFn = (_m, c) =>
      new Promise((_, reject) =>
        c.signal.addEventListener('abort', () => {
          abortedWith = c.signal.reason;
          reject(c.signal.reason);
        }),
      );
    const { s, events } = scheduler(clock, [
      step('log', 0),
      step('script', 120, slow),
      step('email', 240),
      step('shutdown', 360),
    ]);
    await s.start();
    await s.submit({ key: 'pc', time: t0, message: message('pc') });
    await clock.advance(130 * S);
    expect(calls).toEqual(['log@0#1', 'script@120#1']);
    expect(states(readRecord('pc'))).toEqual(['log:done', 'script:started', 'email:pending', 'shutdown:pending']);
    expect(await s.cancel('pc', 'resolved by msg 2')).toBe('cancelled');
    await clock.advance(1000 * S);
    expect(calls).toHaveLength(2);
    expect(abortedWith).toMatchObject({ code: 'ERR_SCHEDULE_CANCELLED' });
    const r = readRecord('pc');
    expect(r).toMatchObject({ state: 'cancelled', reason: 'resolved by msg 2', finished: t0 + 130 * S });
    expect(states(r)).toEqual(['log:done', 'script:cancelled', 'email:cancelled', 'shutdown:cancelled']);
    expect(events).toContainEqual({ type: 'cancelled', key: 'pc', steps: 2, early: false });
    // Cancelling again, or a duplicate of the announcement, changes nothing.
    expect(await s.cancel('pc')).toBe('finished');
    expect(await s.submit({ key: 'pc', time: t0, message: message('pc') })).toBe('duplicate');
    await clock.advance(1000 * S);
    expect(calls).toHaveLength(2);
    expect(s.counters).toMatchObject({ cancelled: 1, active: 0, duplicates: 1 });
    await s.stop();
  });

  test('schedule - a cancel that overtakes its announcement is recorded: the announcement schedules nothing, across a restart too', async () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const { calls, step } = recorder(clock, t0);
    const a = scheduler(clock, [step('log', 0)]);
    await a.s.start();
    expect(await a.s.cancel('pc')).toBe('cancelled-early');
    expect(readRecord('pc')).toMatchObject({ state: 'cancelled', time: null, message: null, steps: [] });
    await a.s.stop();
    const b = scheduler(clock, [step('log', 0)]);
    await b.s.start();
    expect(await b.s.submit({ key: 'pc', time: t0, message: message('pc') })).toBe('ignored');
    await clock.advance(10 * S);
    expect(calls).toEqual([]);
    expect(b.events).toContainEqual({ type: 'ignored', key: 'pc', reason: 'cancelled before it was announced' });
    await b.s.stop();
  });

  test('schedule - the same key again: same time is a duplicate; another time re-times the steps not run (done ones are not repeated)', async () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const { calls, step } = recorder(clock, t0);
    const { s, events } = scheduler(clock, [step('log', 0), step('script', 120), step('email', 240)]);
    await s.start();
    await s.submit({ key: 'pc', time: t0, message: message('pc') });
    await clock.advance(60 * S);
    expect(await s.submit({ key: 'pc', time: t0, message: message('pc') })).toBe('duplicate');
    // Postponed by 10 minutes: the new message carries the new time.
    const later = new Message({ header: { event_id: 'pc', note: 'postponed' } });
    expect(await s.submit({ key: 'pc', time: t0 + 600 * S, message: later })).toBe('rescheduled');
    await clock.advance(120 * S);
    expect(calls).toEqual(['log@0#1']);
    await clock.advance(700 * S);
    expect(calls).toEqual(['log@0#1', 'script@720#1', 'email@840#1']);
    const r = readRecord('pc');
    expect(r.time).toBe(t0 + 600 * S);
    expect(r.message).toEqual({ header: { event_id: 'pc', note: 'postponed' } });
    expect(r.steps.map((x) => (x.due - t0) / S)).toEqual([0, 720, 840]);
    expect(events).toContainEqual({ type: 'rescheduled', key: 'pc', time: t0 + 600 * S, previous: t0 });
    // A finished event announced again with a new time is a new schedule.
    expect(await s.submit({ key: 'pc', time: t0 + 2000 * S, message: message('pc') })).toBe('scheduled');
    await clock.advance(1500 * S);
    expect(calls.slice(3)).toEqual(['log@2000#1', 'script@2120#1', 'email@2240#1']);
    await s.stop();
  });

  test('schedule - a failing step is retried with backoff, recorded failed after maxAttempts, and the following steps still run', async () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const { calls, step } = recorder(clock, t0);
    const failing: ActionFn = async () => {
      throw new Error('sendmail: exit 75');
    };
    const { s, events } = scheduler(clock, [step('email', 0, failing), step('shutdown', 100)], {
      maxAttempts: 3,
      retryDelay: 2,
      retryDelayMax: 3,
    });
    await s.start();
    await s.submit({ key: 'pc', time: t0, message: message('pc') });
    await clock.advance(0);
    let r = readRecord('pc');
    expect(r.steps[0]).toMatchObject({ state: 'pending', attempts: 1, error: 'sendmail: exit 75', retryAt: t0 + 2 * S });
    await clock.advance(100 * S);
    // Attempts at 0, 2 (backoff 2 s), 5 (doubled, capped at 3 s); then failed; the shutdown still runs at 100 s.
    expect(calls).toEqual(['email@0#1', 'email@2#2', 'email@5#3', 'shutdown@100#1']);
    r = readRecord('pc');
    expect(r.state).toBe('completed');
    expect(r.steps[0]).toMatchObject({ state: 'failed', attempts: 3, error: 'sendmail: exit 75', finished: t0 + 5 * S });
    expect(events.filter((e) => e.type === 'step-failed').map((e) => e.type === 'step-failed' && e.retryAt)).toEqual([
      t0 + 2 * S,
      t0 + 5 * S,
      undefined,
    ]);
    expect(events).toContainEqual({ type: 'completed', key: 'pc', done: 1, failed: 1, missed: 0 });
    expect(s.counters).toMatchObject({ stepsFailed: 1, stepsRetried: 2, stepsDone: 1 });
    await s.stop();
  });

  test('schedule - a failing step is given up when the next step falls due: the timeline does not slip', async () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const { calls, step } = recorder(clock, t0);
    const failing: ActionFn = async () => {
      throw new Error('no route to host');
    };
    const { s } = scheduler(clock, [step('email', 0, failing), step('shutdown', 10)], { maxAttempts: 10, retryDelay: 4 });
    await s.start();
    await s.submit({ key: 'pc', time: t0, message: message('pc') });
    await clock.advance(60 * S);
    // Retries at 4 s and 12 s (4 + 8): the one at 12 s would be after the shutdown's 10 s: given up at 12 s.
    expect(calls).toEqual(['email@0#1', 'email@4#2', 'shutdown@12#1']);
    expect(readRecord('pc').steps[0]).toMatchObject({
      state: 'failed',
      attempts: 2,
      error: 'no route to host; given up: step shutdown is due',
    });
    await s.stop();
  });

  test('schedule - with onFailure stop, a step that failed for good cancels the following ones', async () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const { calls, step } = recorder(clock, t0);
    const failing: ActionFn = async () => {
      throw new Error('prepare failed');
    };
    const { s } = scheduler(clock, [step('prepare', 0, failing), step('shutdown', 100)], { maxAttempts: 1, onFailure: 'stop' });
    await s.start();
    await s.submit({ key: 'pc', time: t0, message: message('pc') });
    await clock.advance(200 * S);
    expect(calls).toEqual(['prepare@0#1']);
    const r = readRecord('pc');
    expect(states(r)).toEqual(['prepare:failed', 'shutdown:cancelled']);
    expect(r).toMatchObject({ state: 'completed', reason: 'step prepare failed (onFailure stop)' });
    await s.stop();
  });

  test('schedule - RetryLaterError retries after its delay without counting an attempt; a time-out counts as a failure', async () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const { calls, step } = recorder(clock, t0);
    let n = 0;
    const later: ActionFn = async () => {
      if (++n < 3) throw new RetryLaterError('relay busy', { delay: 1500 });
    };
    const hang: ActionFn = (_m, c) =>
      new Promise((_, reject) => c.signal.addEventListener('abort', () => reject(c.signal.reason)));
    const { s, events } = scheduler(clock, [step('email', 0, later), step('script', 10, hang, { timeout: 5 })], {
      maxAttempts: 2,
      retryDelay: 1,
    });
    await s.start();
    await s.submit({ key: 'pc', time: t0, message: message('pc') });
    await clock.advance(30 * S);
    expect(calls).toEqual(['email@0#1', 'email@1.5#1', 'email@3#1', 'script@10#1', 'script@16#2']);
    const r = readRecord('pc');
    expect(r.steps[0]).toMatchObject({ state: 'done', attempts: 1 });
    expect(r.steps[1]).toMatchObject({ state: 'failed', attempts: 2, error: 'step script timed out after 5 s' });
    expect(events.filter((e) => e.type === 'step-retry-later')).toHaveLength(2);
    await s.stop();
  });

  test('schedule - a step later than its maxLate after a restart is recorded missed, not run', async () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const { calls, step } = recorder(clock, t0);
    const steps = () => [step('log', 0), step('email', 240), step('shutdown', 360, undefined, { maxLate: 300 })];
    const a = scheduler(clock, steps());
    await a.s.start();
    await a.s.submit({ key: 'pc', time: t0, message: message('pc') });
    await clock.advance(10 * S);
    await a.s.stop();
    await clock.advance(3600 * S); // the power came back an hour later
    const b = scheduler(clock, steps());
    await b.s.start();
    await clock.advance(0);
    expect(calls).toEqual(['log@0#1', 'email@3610#1']);
    expect(states(readRecord('pc'))).toEqual(['log:done', 'email:done', 'shutdown:missed']);
    expect(b.events).toContainEqual({ type: 'step-missed', key: 'pc', step: 'shutdown', late: 3250 * S });
    expect(b.events).toContainEqual({ type: 'completed', key: 'pc', done: 2, failed: 0, missed: 1 });
    await b.s.stop();
  });

  test('schedule - a corrupt record is moved aside with an event, not a crash; the others run', async () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const sched = join(dir.path, 'schedule');
    fs.mkdirSync(sched);
    fs.writeFileSync(join(sched, 'bad.json'), '{"version":1,');
    fs.writeFileSync(join(sched, 'shape.json'), JSON.stringify({ version: 1, key: 'shape', time: 'soon' }));
    fs.writeFileSync(
      join(sched, 'other.json'),
      JSON.stringify({ version: 1, key: 'elsewhere', time: 1, received: 1, state: 'active', message: null, steps: [] }),
    );
    fs.writeFileSync(join(sched, 'README'), 'not a record, left alone');
    const { calls, step } = recorder(clock, t0);
    const a = scheduler(clock, [step('log', 0)]);
    await a.s.start();
    await a.s.submit({ key: 'good', time: t0, message: message('good') });
    await clock.advance(0);
    expect(calls).toEqual(['log@0#1']);
    const moved = `.corrupt-${t0}`;
    expect(layout(sched)).toEqual([`README`, `bad.json${moved}`, 'good.json', `other.json${moved}`, `shape.json${moved}`]);
    const corrupt = a.events.filter((e) => e.type === 'corrupt');
    expect(corrupt).toEqual([
      expect.objectContaining({
        file: join(sched, 'bad.json'),
        movedTo: join(sched, `bad.json${moved}`),
        error: expect.stringMatching(/^not JSON/),
      }),
      expect.objectContaining({ file: join(sched, 'other.json'), error: 'its key "elsewhere" belongs in another file' }),
      expect.objectContaining({ file: join(sched, 'shape.json'), error: 'time: not a number' }),
    ]);
    expect(a.s.counters.corrupt).toBe(3);
    await a.s.stop();
  });

  test('schedule - completed and cancelled records are removed after the retention period, active ones kept', async () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const { step } = recorder(clock, t0);
    const { s, events } = scheduler(clock, [step('log', 0), step('later', 7200)], { retention: 600 });
    await s.start();
    await s.submit({ key: 'done', time: t0 - 7200 * S, message: message('done') });
    await s.submit({ key: 'active', time: t0, message: message('active') });
    await s.cancel('gone');
    await clock.advance(0);
    expect(layout(join(dir.path, 'schedule'))).toEqual(['active.json', 'done.json', 'gone.json']);
    await clock.advance(600 * S);
    expect(layout(join(dir.path, 'schedule'))).toEqual(['active.json']);
    expect(events.flatMap((e) => (e.type === 'removed' ? [e.key] : [])).sort()).toEqual(['done', 'gone']);
    expect(s.record('done')).toBeUndefined();
    expect(s.record('active')?.state).toBe('active');
    await s.stop();
  });

  test('schedule - a record that cannot be written: submit rejects naming the syscall and path; the same message again schedules it', async () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const { calls, step } = recorder(clock, t0);
    const { s } = scheduler(clock, [step('log', 0), step('later', 10)]);
    await s.start();
    const file = join(dir.path, 'schedule', 'pc.json');
    fs.mkdirSync(file); // rename() over a directory fails
    const err = await s.submit({ key: 'pc', time: t0, message: message('pc') }).catch((e) => e);
    expect(err).toMatchObject({ code: 'ERR_DIRQ_SYSCALL', syscall: 'rename', path: `${file}.tmp`, errno: 'EISDIR' });
    await clock.advance(0);
    expect(calls).toEqual([]);
    expect(layout(join(dir.path, 'schedule'))).toEqual(['pc.json/']);
    fs.rmdirSync(file);
    // Not acknowledged, the message comes again: recognised, written, armed.
    expect(await s.submit({ key: 'pc', time: t0, message: message('pc') })).toBe('duplicate');
    await clock.advance(10 * S);
    expect(calls).toEqual(['log@0#1', 'later@10#1']);
    expect(readRecord('pc').state).toBe('completed');
    await s.stop();
  });

  test('schedule - an aborted step ends when its action does, up to ABORT_GRACE_MS: its retry and the next step do not overlap it', async () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const { log, ends, dying } = dyingAction(clock, t0);
    const email: ActionFn = async () => {
      log.push(`email@${(clock.now() - t0) / S}`);
    };
    const { s } = scheduler(
      clock,
      [
        { name: 'script', at: 0, action: dying, timeout: 5 },
        { name: 'email', at: 100, action: email },
      ],
      { maxAttempts: 2, retryDelay: 1 },
    );
    await s.start();
    await s.submit({ key: 'pc', time: t0, message: message('pc') });
    await clock.advance(10 * S);
    // Timed out at 5 s, still dying at 10 s: no retry yet (it was due at 6 s).
    expect(log).toEqual(['start#1@0', 'abort#1@5']);
    expect(states(readRecord('pc'))).toEqual(['script:started', 'email:pending']);
    ends[0]?.();
    await clock.advance(2 * S);
    expect(log).toEqual(['start#1@0', 'abort#1@5', 'end#1@10', 'start#2@11']);
    // The second attempt ignores its signal for good: waited for ABORT_GRACE_MS after its time-out, then failed.
    await clock.advance(4 * S + ABORT_GRACE_MS - 1); // 16 s + the grace, less 1 ms
    expect(states(readRecord('pc'))).toEqual(['script:started', 'email:pending']);
    await clock.advance(1);
    expect(readRecord('pc').steps[0]).toMatchObject({ state: 'failed', attempts: 2, error: 'step script timed out after 5 s' });
    await clock.advance(100 * S);
    expect(log).toEqual(['start#1@0', 'abort#1@5', 'end#1@10', 'start#2@11', 'abort#2@16', 'email@100']);
    await s.stop();
  });

  test('schedule - stop() resolves once an aborted step action ended (within ABORT_GRACE_MS), the attempt back to pending', async () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const { log, ends, dying } = dyingAction(clock, t0);
    const { s } = scheduler(clock, [{ name: 'script', at: 0, action: dying }], { stopTimeout: 1 });
    await s.start();
    await s.submit({ key: 'pc', time: t0, message: message('pc') });
    await clock.advance(S);
    const stopped = s.stop().then(() => log.push('stopped'));
    await clock.advance(2 * S);
    expect(log).toEqual(['start#1@0', 'abort#1@2']);
    ends[0]?.();
    await stopped;
    expect(log).toEqual(['start#1@0', 'abort#1@2', 'end#1@3', 'stopped']);
    expect(readRecord('pc').steps[0]).toMatchObject({ state: 'pending', attempts: 0 });
  });

  test('schedule - bad options are refused, every problem named; submit needs start and refuses after stop', async () => {
    expect(
      () =>
        new Scheduler({
          dir: '',
          plugin: 'p',
          steps: [
            { name: 'a', at: 10, action: async () => undefined },
            { name: 'a', at: 5, action: async () => undefined },
          ],
          maxAttempts: 0,
        }),
    ).toThrow(
      'bad Scheduler options: maxAttempts: expected an integer >= 1, got 0; dir: expected a directory; steps[1].name: a is used twice; steps[1].at: steps must be in time order',
    );
    const clock = new ManualClock();
    const { s } = scheduler(clock, [{ name: 'a', at: 0, action: async () => undefined }]);
    await expect(s.submit({ key: 'k', time: 0, message: message('k') })).rejects.toMatchObject({ code: 'ERR_SCHEDULE_CLOSED' });
    await s.start();
    await s.stop();
    await expect(s.submit({ key: 'k', time: 0, message: message('k') })).rejects.toMatchObject({ code: 'ERR_SCHEDULE_CLOSED' });
  });

  test('schedule - event key and time from a header or a JSON body field, epoch seconds or ISO 8601, or the arrival time', () => {
    const m = new Message({
      header: { id: 'h1', t: '1767261600' },
      body: '{"event":{"id":"b1","at":"2026-01-01T10:00:00Z","n":7}}',
    });
    expect(fieldValue(m, 'id')).toBe('h1');
    expect(fieldValue(m, 'body.event.id')).toBe('b1');
    expect(fieldValue(m, 'body.event.n')).toBe('7');
    expect(fieldValue(m, 'body.event')).toBeUndefined();
    expect(fieldValue(m, 'body.nope.id')).toBeUndefined();
    expect(fieldValue(new Message({ body: 'not json' }), 'body.x')).toBeUndefined();
    expect(parseEventTime('1767261600')).toBe(1767261600000);
    expect(parseEventTime('1767261600.25')).toBe(1767261600250);
    expect(parseEventTime('2026-01-01T10:00:00Z')).toBe(1767261600000);
    expect(parseEventTime('2026-01-01 11:00:00+01:00')).toBe(1767261600000);
    expect(parseEventTime('2026-01-01T11:00+0100')).toBe(1767261600000);
    expect(parseEventTime('2026-01-01T10:00:00')).toBe(1767261600000);
    expect(parseEventTime('2026-01-01')).toBe(1767225600000);
    expect(parseEventTime('tomorrow')).toBeUndefined();
    expect(parseEventTime('2026-13-45T99:00:00Z')).toBeUndefined();
    expect(eventOf(m, { key: 'id', time: 't' }, 5)).toEqual({ key: 'h1', time: 1767261600000 });
    expect(eventOf(m, { key: 'body.event.id', time: 'body.event.at' }, 5)).toEqual({ key: 'b1', time: 1767261600000 });
    expect(eventOf(m, { key: 'id' }, 5)).toEqual({ key: 'h1', time: 5 });
    expect(() => eventOf(m, { key: 'missing' }, 5)).toThrow('no event key: missing is missing');
    expect(() => eventOf(m, { key: 'id', time: 'body.event.id' }, 5)).toThrow(
      'event h1: body.event.id: "b1" is neither epoch seconds nor ISO 8601',
    );
  });
});

describe('megabus schedule in real time', () => {
  test('schedule - real time: steps a few hundred ms apart run in order, none early', async () => {
    const t0 = Date.now() + 100;
    const ran: [string, number][] = [];
    const step = (name: string, at: number): ScheduleStep => ({
      name,
      at,
      action: async () => void ran.push([name, Date.now() - t0]),
    });
    const done = new Promise<void>((resolve) => {
      const s = new Scheduler({
        dir: join(dir.path, 'schedule'),
        plugin: 'rt',
        steps: [step('a', 0), step('b', 0.2), step('c', 0.4)],
        onEvent: (e) => {
          if (e.type === 'completed') resolve();
        },
      });
      void s.start().then(() => s.submit({ key: 'rt', time: t0, message: message('rt') }));
    });
    await done;
    expect(ran.map(([n]) => n)).toEqual(['a', 'b', 'c']);
    for (const [i, [, late]] of ran.entries()) {
      expect(late).toBeGreaterThanOrEqual(i * 200);
      expect(late).toBeLessThan(i * 200 + 1000); // a loaded 2-core machine's slack
    }
    expect(readRecord('rt').state).toBe('completed');
  });

  test('schedule - a Scheduler killed (SIGKILL) in the middle of a step: after a restart done steps are not repeated, the interrupted and due ones run', async () => {
    const root = join(__dirname, '..', '..', '..');
    const script = join(dir.path, 'child.js');
    const log = join(dir.path, 'log');
    const sched = join(dir.path, 'schedule');
    fs.writeFileSync(
      script,
      `const fs = require('node:fs');
const { Scheduler } = require(${JSON.stringify(join(root, 'packages/megabus'))});
const { Message } = require(${JSON.stringify(join(root, 'packages/message'))});
const [dir, log, t0, block] = process.argv.slice(2);
const note = (line) => fs.appendFileSync(log, line + '\\n');
const step = (name, at, slow) => ({ name, at, action: async (m, c) => {
  note(name + ' ' + c.attempt + ' ' + process.pid);
  if (slow && block === '1') await new Promise((r) => setTimeout(r, 60000));
} });
const keep = setInterval(() => {}, 1000);
const s = new Scheduler({ dir, plugin: 'kill', steps: [step('log', 0), step('script', 0.2), step('email', 0.4, true), step('shutdown', 0.6)],
  onEvent: (e) => { if (e.type === 'duplicate' || e.type === 'completed') note(e.type); if (e.type === 'completed') { clearInterval(keep); s.stop(); } } });
s.start().then(() => s.submit({ key: 'pc', time: Number(t0), message: new Message({ header: { event_id: 'pc' } }) }));
`,
    );
    let exits: string[] = [];
    const run = (block: string, t0: number) => {
      const child = spawn(process.execPath, [script, sched, log, String(t0), block], { stdio: ['ignore', 'inherit', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      child.on('exit', (code, signal) => exits.push(`${child.pid} exited ${signal ?? code}: ${stderr}`));
      return child;
    };
    const lines = () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n') : []);
    const waitFor = async (pred: () => boolean) => {
      while (!pred()) {
        // A child that died (it could not load the built package, say) is a failure now, not a time-out later.
        if (exits.length > 0) throw new Error(`waiting for the log: ${exits.join('; ')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const t0 = Date.now() + 300; // the child needs a moment to start
    const first = run('1', t0);
    const exited = new Promise((resolve) => first.on('exit', (code, signal) => resolve(signal ?? code)));
    await waitFor(() => lines().some((l) => l.startsWith('email ')));
    first.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    exits = [];
    const r = readRecord('pc');
    expect(r.steps.map((s) => [s.name, s.state, s.attempts])).toEqual([
      ['log', 'done', 1],
      ['script', 'done', 1],
      ['email', 'started', 1],
      ['shutdown', 'pending', 0],
    ]);
    // Down until the shutdown step fell due.
    await waitFor(() => Date.now() > t0 + 700);
    const second = run('0', t0);
    const code = await new Promise((resolve) => second.on('exit', resolve));
    expect(code).toBe(0);
    const pid1 = String(first.pid);
    const pid2 = String(second.pid);
    expect(lines()).toEqual([
      `log 1 ${pid1}`,
      `script 1 ${pid1}`,
      `email 1 ${pid1}`,
      'duplicate', // the announcement delivered again after the restart changes nothing
      `email 2 ${pid2}`,
      `shutdown 1 ${pid2}`,
      'completed',
    ]);
    const after = readRecord('pc');
    expect(after.state).toBe('completed');
    expect(after.steps.map((s) => [s.name, s.state, s.attempts])).toEqual([
      ['log', 'done', 1],
      ['script', 'done', 1],
      ['email', 'done', 2],
      ['shutdown', 'done', 1],
    ]);
    expect(layout(sched)).toEqual(['pc.json']);
  });
});
