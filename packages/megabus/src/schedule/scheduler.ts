/**
 * Timed schedules: a list of steps at offsets from an event's time, each an ActionFn, persisted so that a restart
 * repeats no completed step, runs at once (in order) the steps that fell due meanwhile, and re-arms the others.
 *
 * The rules an operator can rely on (docs/megabus.md, "Timed schedules", says the same):
 * - A step is recorded `started` (durably) before its action runs, and `done` only after the action succeeded. A
 *   step found `started` at the next start was interrupted (a crash, a kill): it runs again as its next attempt (at
 *   least once), unless it is `atMostOnce` (std_shutdown: a machine must not shut down again at every boot), in
 *   which case it is recorded failed.
 * - Steps of one event run in order, one at a time; different events run independently.
 * - A failed attempt is retried with backoff (retryDelay, doubled up to retryDelayMax) until maxAttempts, as the
 *   handler runner does (a RetryLaterError does not count as an attempt). A step is given up sooner when the next
 *   step falls due: a schedule is a timeline (a power cut does not wait for an email to go out), so a failing step
 *   never delays the next. With onFailure 'continue' (the default) the following steps still run: the shutdown at
 *   360 s matters more, not less, when the warning e-mail at 240 s could not be sent. With 'stop' they are cancelled.
 * - A step that fell due while the Scheduler was down runs at once, unless it is later than its maxLate (then it is
 *   recorded `missed`): a machine booting after the power came back must not shut down because the old schedule
 *   says so.
 * - cancel(key) cancels the steps not yet started and aborts the one running (its signal fires). An aborted step (a
 *   cancel, its timeout, a stop) ends when its action does, at most ABORT_GRACE_MS later (a command's SIGKILL comes
 *   first), so that nothing of it overlaps what comes next. A cancel for an unknown key is recorded too (brokers do
 *   not order messages across brokers: the resolution can overtake the announcement), so the announcement arriving
 *   later schedules nothing.
 * - A new message with the key of a known event: with the same event time it is a duplicate (at-least-once
 *   delivery, or a repeated alert) and changes nothing; with another time, an active event is rescheduled (the steps
 *   not yet run get the new time and the new message; done steps are not repeated), a finished one (completed or
 *   cancelled with a time) is replaced by a new schedule, and one cancelled before it was announced stays cancelled.
 */
import * as path from 'node:path';
import { errorOf } from '@msgbricks/errors';
import { RetryLaterError } from '@msgbricks/handler';
import { Message } from '@msgbricks/message';
import { ABORT_GRACE_MS } from '../plugins/actions';
import type { ActionContext, ActionFn } from '../plugins/types';
import { type Clock, systemClock, type Timer } from './clock';
import { ScheduleError } from './event';
import {
  type EventRecord,
  type EventState,
  loadRecords,
  moveAside,
  recordName,
  removeRecord,
  type StepRecord,
  writeRecord,
} from './record';

/** One step of a schedule. */
export interface ScheduleStep {
  /** Unique in the schedule; how records name the step (so a restart with the same configuration finds it). */
  readonly name: string;
  /** Seconds after the event time (fractions allowed; negative: before it). */
  readonly at: number;
  readonly action: ActionFn;
  /** Seconds an attempt may take (0: no limit); default the Scheduler's timeout. */
  readonly timeout?: number;
  /** Seconds after its due time beyond which a step that fell due while down is recorded missed, not run. */
  readonly maxLate?: number;
  /** An attempt interrupted by a crash is not run again (recorded failed). */
  readonly atMostOnce?: boolean;
}

export interface SchedulerOptions {
  /** Where the records live (created if missing). */
  dir: string;
  /** The plugin name actions see in their context. */
  plugin: string;
  steps: readonly ScheduleStep[];
  clock?: Clock;
  /** Attempts of a step before it is recorded failed. Default 5. */
  maxAttempts?: number;
  /** Seconds before the first retry, doubled at each failure up to retryDelayMax. Defaults 1 and 30. */
  retryDelay?: number;
  retryDelayMax?: number;
  /** Default seconds an attempt may take (0: no limit). Default 60. */
  timeout?: number;
  /** What a step that failed for good does to the following ones. Default 'continue'. */
  onFailure?: 'continue' | 'stop';
  /** Seconds completed and cancelled records are kept (duplicates of their messages are recognised meanwhile). Default 7 days. */
  retention?: number;
  /** Seconds stop() waits for running steps before aborting them. Default 10. */
  stopTimeout?: number;
  onEvent?: (event: ScheduleEvent) => void;
}

/** What a Scheduler reports (libraries never print). Times are ms since the epoch; `late` in ms. */
export type ScheduleEvent =
  | { readonly type: 'scheduled'; readonly key: string; readonly time: number; readonly steps: number }
  | { readonly type: 'rescheduled'; readonly key: string; readonly time: number; readonly previous: number }
  | { readonly type: 'duplicate'; readonly key: string }
  | { readonly type: 'ignored'; readonly key: string; readonly reason: string }
  | { readonly type: 'cancelled'; readonly key: string; readonly steps: number; readonly early: boolean }
  | {
      readonly type: 'step-started';
      readonly key: string;
      readonly step: string;
      readonly attempt: number;
      readonly late: number;
    }
  | {
      readonly type: 'step-done';
      readonly key: string;
      readonly step: string;
      readonly attempt: number;
      readonly seconds: number;
    }
  | {
      readonly type: 'step-failed';
      readonly key: string;
      readonly step: string;
      readonly attempt: number;
      readonly error: Error;
      /** When it is retried; undefined: given up. */
      readonly retryAt: number | undefined;
    }
  | { readonly type: 'step-retry-later'; readonly key: string; readonly step: string; readonly retryAt: number }
  | { readonly type: 'step-missed'; readonly key: string; readonly step: string; readonly late: number }
  | {
      readonly type: 'step-interrupted';
      readonly key: string;
      readonly step: string;
      readonly attempt: number;
      readonly rerun: boolean;
    }
  | { readonly type: 'completed'; readonly key: string; readonly done: number; readonly failed: number; readonly missed: number }
  | { readonly type: 'removed'; readonly key: string }
  | { readonly type: 'corrupt'; readonly file: string; readonly movedTo: string; readonly error: string }
  | { readonly type: 'problem'; readonly key?: string; readonly error: Error };

/** Live counters (plain fields). */
export interface ScheduleCounters {
  scheduled: number;
  rescheduled: number;
  duplicates: number;
  cancelled: number;
  completed: number;
  stepsDone: number;
  stepsFailed: number;
  stepsRetried: number;
  stepsMissed: number;
  stepsInterrupted: number;
  corrupt: number;
  /** Events with steps left. */
  active: number;
  /** Steps running now. */
  running: number;
}

/** An event to schedule. */
export interface ScheduleInput {
  key: string;
  /** The event time, ms since the epoch (see eventOf). */
  time: number;
  message: Message;
}

export type SubmitResult = 'scheduled' | 'rescheduled' | 'duplicate' | 'ignored';
export type CancelResult = 'cancelled' | 'cancelled-early' | 'finished';

interface Running {
  step: StepRecord;
  ctl: AbortController;
  done: Promise<void>;
}

interface Live {
  record: EventRecord;
  message: Message | undefined;
  timer: Timer | undefined;
  running: Running | undefined;
  /** The step loop is at work (it re-arms when it is done). */
  busy: boolean;
  /** Record writes, in order. */
  writing: Promise<void>;
  /** Past its retention: being removed. */
  removing?: boolean;
}

const TERMINAL = new Set(['done', 'failed', 'cancelled', 'missed']);
const DAY = 86_400;

function options(o: SchedulerOptions): Required<Omit<SchedulerOptions, 'clock' | 'onEvent'>> {
  const problems: string[] = [];
  const num = (name: keyof SchedulerOptions, dflt: number, min: number, int = false): number => {
    const v = o[name] ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (int && !Number.isInteger(v)))
      problems.push(`${name}: expected ${int ? 'an integer' : 'a number'} >= ${min}, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const out = {
    dir: o.dir,
    plugin: o.plugin,
    steps: o.steps,
    maxAttempts: num('maxAttempts', 5, 1, true),
    retryDelay: num('retryDelay', 1, 0),
    retryDelayMax: num('retryDelayMax', 30, 0),
    timeout: num('timeout', 60, 0),
    retention: num('retention', 7 * DAY, 0),
    stopTimeout: num('stopTimeout', 10, 0),
    onFailure: o.onFailure ?? 'continue',
  };
  if (typeof o.dir !== 'string' || o.dir === '') problems.push('dir: expected a directory');
  if (typeof o.plugin !== 'string') problems.push('plugin: expected a name');
  if (out.onFailure !== 'continue' && out.onFailure !== 'stop')
    problems.push(`onFailure: expected continue or stop, got ${JSON.stringify(out.onFailure)}`);
  if (!Array.isArray(o.steps) || o.steps.length === 0) problems.push('steps: expected at least one step');
  else {
    const seen = new Set<string>();
    for (const [i, s] of o.steps.entries()) {
      if (typeof s.name !== 'string' || s.name === '') problems.push(`steps[${i}].name: expected a name`);
      else if (seen.has(s.name)) problems.push(`steps[${i}].name: ${s.name} is used twice`);
      seen.add(s.name);
      if (typeof s.at !== 'number' || !Number.isFinite(s.at)) problems.push(`steps[${i}].at: expected seconds`);
      if (typeof s.action !== 'function') problems.push(`steps[${i}].action: expected a function`);
      if (i > 0 && s.at < o.steps[i - 1].at) problems.push(`steps[${i}].at: steps must be in time order`);
    }
  }
  if (problems.length > 0) throw new ScheduleError('ERR_SCHEDULE_OPTION', `bad Scheduler options: ${problems.join('; ')}`);
  return out;
}

export class Scheduler {
  readonly counters: ScheduleCounters = {
    scheduled: 0,
    rescheduled: 0,
    duplicates: 0,
    cancelled: 0,
    completed: 0,
    stepsDone: 0,
    stepsFailed: 0,
    stepsRetried: 0,
    stepsMissed: 0,
    stepsInterrupted: 0,
    corrupt: 0,
    active: 0,
    running: 0,
  };
  private readonly o: ReturnType<typeof options>;
  private readonly clock: Clock;
  private readonly steps: Map<string, ScheduleStep>;
  private readonly emitRaw: ((event: ScheduleEvent) => void) | undefined;
  private readonly events = new Map<string, Live>();
  private readonly writes = new Set<Promise<void>>();
  private started: Promise<void> | undefined;
  private stopping = false;
  private sweepTimer: Timer | undefined;

  constructor(opts: SchedulerOptions) {
    this.o = options(opts);
    this.clock = opts.clock ?? systemClock;
    this.steps = new Map(this.o.steps.map((s) => [s.name, s]));
    this.emitRaw = opts.onEvent;
    this.clock.settleWith?.(() => this.idle());
  }

  /** Reads the directory, moves corrupt records aside, deals with interrupted steps, arms the timers. */
  start(): Promise<void> {
    this.started ??= this.load();
    return this.started;
  }

  /**
   * Schedules an event (or recognises it: see the rules above). Resolves once the record is durable: a caller
   * acknowledges the message only then.
   */
  async submit(input: ScheduleInput): Promise<SubmitResult> {
    await this.ready();
    const { key, time, message } = input;
    const live = this.events.get(key);
    const r = live?.record;
    if (live !== undefined && r !== undefined) {
      if (r.time === time) {
        // Written again: the first submit may have failed to write it (the caller did not acknowledge, this is the
        // message again), and the caller acknowledges once this resolves.
        if (live.removing !== true) await this.persist(live);
        this.arm(live);
        this.counters.duplicates++;
        this.emit({ type: 'duplicate', key });
        return 'duplicate';
      }
      if (r.time === null) {
        const reason = 'cancelled before it was announced';
        this.emit({ type: 'ignored', key, reason });
        return 'ignored';
      }
      if (r.state === 'active') {
        const previous = r.time;
        r.time = time;
        r.message = jsonOf(message);
        live.message = message;
        for (const s of r.steps)
          if (s.state === 'pending') {
            s.due = time + s.at * 1000;
            s.retryAt = undefined;
          }
        await this.persist(live);
        this.counters.rescheduled++;
        this.emit({ type: 'rescheduled', key, time, previous });
        this.arm(live);
        return 'rescheduled';
      }
    }
    const record: EventRecord = {
      version: 1,
      key,
      time,
      received: this.clock.now(),
      state: 'active',
      message: jsonOf(message),
      steps: this.o.steps.map((s) => ({ name: s.name, at: s.at, due: time + s.at * 1000, state: 'pending', attempts: 0 })),
    };
    const fresh: Live = { record, message, timer: undefined, running: undefined, busy: false, writing: Promise.resolve() };
    if (live !== undefined) fresh.writing = live.writing;
    this.events.set(key, fresh);
    this.counters.scheduled++;
    this.counters.active++;
    await this.persist(fresh);
    this.emit({ type: 'scheduled', key, time, steps: record.steps.length });
    this.arm(fresh);
    return 'scheduled';
  }

  /**
   * Cancels what is left of an event (a later message resolved it). Resolves once the record is durable:
   * 'cancelled', 'cancelled-early' (unknown key: recorded so that its announcement is ignored), or 'finished'
   * (nothing left to cancel).
   */
  async cancel(key: string, reason = 'cancelled'): Promise<CancelResult> {
    await this.ready();
    const live = this.events.get(key);
    if (live === undefined) {
      const now = this.clock.now();
      const record: EventRecord = {
        version: 1,
        key,
        time: null,
        received: now,
        state: 'cancelled',
        message: null,
        steps: [],
        finished: now,
        reason,
      };
      const early: Live = {
        record,
        message: undefined,
        timer: undefined,
        running: undefined,
        busy: false,
        writing: Promise.resolve(),
      };
      this.events.set(key, early);
      await this.persist(early);
      this.counters.cancelled++;
      this.emit({ type: 'cancelled', key, steps: 0, early: true });
      return 'cancelled-early';
    }
    const r = live.record;
    if (r.state !== 'active') {
      // Written again for the same reason as a duplicate's: this may be the cancel whose first write failed.
      if (live.removing !== true) await this.persist(live);
      return 'finished';
    }
    let steps = 0;
    for (const s of r.steps)
      if (s.state === 'pending') {
        s.state = 'cancelled';
        steps++;
      }
    r.state = 'cancelled';
    r.finished = this.clock.now();
    r.reason = reason;
    live.timer?.cancel();
    live.running?.ctl.abort(new ScheduleError('ERR_SCHEDULE_CANCELLED', `event ${key} cancelled`));
    this.counters.active--;
    this.counters.cancelled++;
    await this.persist(live);
    this.emit({ type: 'cancelled', key, steps, early: false });
    return 'cancelled';
  }

  /** A copy of an event's record (undefined: unknown, or removed after the retention period). */
  record(key: string): EventRecord | undefined {
    const live = this.events.get(key);
    return live === undefined ? undefined : structuredClone(live.record);
  }

  /** Copies of every record kept, active or retained. */
  records(): EventRecord[] {
    return [...this.events.values()].map((l) => structuredClone(l.record));
  }

  /**
   * Stops: no step starts any more; running steps get stopTimeout, then their signal fires and they get
   * ABORT_GRACE_MS more to end (the attempt goes back to pending, not counted). Resolves once the records are written
   * (a process killed meanwhile leaves it `started`: interrupted at the next start).
   */
  async stop(): Promise<void> {
    if (this.stopping) return this.idle().then(() => undefined);
    this.stopping = true;
    await this.started?.catch(() => undefined);
    this.sweepTimer?.cancel();
    for (const live of this.events.values()) live.timer?.cancel();
    const running = [...this.events.values()].flatMap((l) => (l.running === undefined ? [] : [l.running]));
    if (running.length > 0) {
      let timer: Timer | undefined;
      const waited = new Promise<void>((resolve) => {
        timer = this.clock.setTimer(resolve, this.o.stopTimeout * 1000);
      });
      await Promise.race([Promise.all(running.map((r) => r.done)), waited]);
      timer?.cancel();
      for (const r of running) r.ctl.abort(new ScheduleError('ERR_SCHEDULE_STOPPED', 'the scheduler stopped'));
      // Each ends within ABORT_GRACE_MS (see attempt); its outcome is recorded before stop() resolves.
      await Promise.all(running.map((r) => r.done));
    }
    while (await this.idle()) {
      // until no write is left
    }
  }

  /** Waits for the record writes in flight; resolves true if there were some. */
  async idle(): Promise<boolean> {
    if (this.writes.size === 0) return false;
    await Promise.allSettled([...this.writes]);
    return true;
  }

  // ---- loading

  private async ready(): Promise<void> {
    if (this.stopping) throw new ScheduleError('ERR_SCHEDULE_CLOSED', 'the scheduler is stopped');
    if (this.started === undefined) throw new ScheduleError('ERR_SCHEDULE_CLOSED', 'the scheduler is not started');
    await this.started;
  }

  private async load(): Promise<void> {
    const loaded = await loadRecords(this.o.dir);
    for (const c of loaded.corrupt) {
      const movedTo = await moveAside(c.file, this.clock.now());
      this.counters.corrupt++;
      this.emit({ type: 'corrupt', file: c.file, movedTo, error: c.error });
    }
    const now = this.clock.now();
    for (const record of loaded.records) {
      let message: Message | undefined;
      if (record.message !== null) {
        try {
          message = Message.deserialize(JSON.stringify(record.message));
        } catch (err) {
          const file = path.join(this.o.dir, recordName(record.key));
          const movedTo = await moveAside(file, this.clock.now());
          this.counters.corrupt++;
          this.emit({ type: 'corrupt', file, movedTo, error: `message: ${errorOf(err).message}` });
          continue;
        }
      }
      const live: Live = { record, message, timer: undefined, running: undefined, busy: false, writing: Promise.resolve() };
      this.events.set(record.key, live);
      if (record.state !== 'active') continue;
      this.counters.active++;
      let changed = false;
      for (const s of record.steps) {
        const conf = this.steps.get(s.name);
        if (!TERMINAL.has(s.state) && conf === undefined) {
          // The configuration changed under a running schedule: the step cannot be run, and says so.
          s.state = 'failed';
          s.error = `step ${s.name} is no longer configured`;
          s.finished = now;
          changed = true;
          continue;
        }
        if (s.state !== 'started') continue;
        changed = true;
        const rerun = conf?.atMostOnce !== true && s.attempts < this.o.maxAttempts;
        this.counters.stepsInterrupted++;
        this.emit({ type: 'step-interrupted', key: record.key, step: s.name, attempt: s.attempts, rerun });
        if (rerun) s.state = 'pending';
        else {
          s.state = 'failed';
          s.error = conf?.atMostOnce === true ? 'interrupted (run at most once)' : `interrupted; ${s.attempts} attempts`;
          s.finished = now;
          this.counters.stepsFailed++;
        }
      }
      if (changed) await this.persist(live);
    }
    this.sweep();
    for (const live of this.events.values()) this.arm(live);
  }

  // ---- the step loop

  private arm(live: Live): void {
    live.timer?.cancel();
    live.timer = undefined;
    if (this.stopping || live.busy || live.record.state !== 'active') return;
    const next = live.record.steps.find((s) => !TERMINAL.has(s.state));
    if (next === undefined) {
      void this.loop(live);
      return;
    }
    const wake = Math.max(next.due, next.retryAt ?? 0);
    live.timer = this.clock.setTimer(() => void this.loop(live), wake - this.clock.now());
  }

  /** Runs every step that is due, in order, then re-arms. */
  private async loop(live: Live): Promise<void> {
    if (live.busy || this.stopping) return;
    live.busy = true;
    try {
      await this.runDue(live);
    } catch (err) {
      this.emit({ type: 'problem', key: live.record.key, error: errorOf(err) });
    } finally {
      live.busy = false;
    }
    if (this.events.get(live.record.key) === live) this.arm(live);
  }

  private async runDue(live: Live): Promise<void> {
    const r = live.record;
    while (r.state === 'active' && !this.stopping) {
      const i = r.steps.findIndex((s) => !TERMINAL.has(s.state));
      if (i < 0) {
        await this.complete(live);
        return;
      }
      const s = r.steps[i];
      const conf = this.steps.get(s.name) as ScheduleStep;
      const now = this.clock.now();
      if (now < Math.max(s.due, s.retryAt ?? 0)) return;
      const following = r.steps[i + 1];
      if (s.error !== undefined && following !== undefined && following.due <= now) {
        // A retry would run into the next step's time: the schedule goes on without it. (An attempt interrupted by
        // a crash has no error: it is not the step's failure, and runs once more.)
        await this.giveUp(
          live,
          s,
          new ScheduleError('ERR_SCHEDULE_LATE', `${s.error ?? 'failed'}; given up: step ${following.name} is due`),
        );
        continue;
      }
      const late = now - s.due;
      if (conf.maxLate !== undefined && late > conf.maxLate * 1000 && s.attempts === 0) {
        s.state = 'missed';
        s.finished = now;
        this.counters.stepsMissed++;
        await this.persist(live);
        this.emit({ type: 'step-missed', key: r.key, step: s.name, late });
        continue;
      }
      await this.attempt(live, s, conf, late);
    }
  }

  private async attempt(live: Live, s: StepRecord, conf: ScheduleStep, late: number): Promise<void> {
    const key = live.record.key;
    s.state = 'started';
    s.attempts++;
    s.started = this.clock.now();
    s.retryAt = undefined;
    try {
      await this.persist(live);
    } catch (err) {
      // Not recorded as started: do not run it (a crash would not show it); try again after a backoff.
      s.state = 'pending';
      s.attempts--;
      s.retryAt = this.clock.now() + this.backoff(Math.max(1, s.attempts));
      this.emit({ type: 'problem', key, error: errorOf(err) });
      return;
    }
    if (live.record.state !== 'active' || this.stopping) {
      // RACE: cancelled or stopped while `started` was being written: the action must not run.
      s.state = live.record.state === 'active' ? 'pending' : 'cancelled';
      s.attempts--;
      await this.persistOrSay(live);
      return;
    }
    const attempt = s.attempts;
    this.emit({ type: 'step-started', key, step: s.name, attempt, late });
    const ctl = new AbortController();
    const context: ActionContext = {
      plugin: this.o.plugin,
      attempt,
      signal: ctl.signal,
      step: { name: s.name, key, due: s.due },
    };
    const t0 = this.clock.now();
    let failure: unknown;
    let failed = false;
    const limit = (conf.timeout ?? this.o.timeout) * 1000;
    let timer: Timer | undefined;
    const done = (async () => {
      const message = live.message ?? new Message();
      const run = Promise.resolve().then(() => conf.action(message, context));
      const timedOut =
        limit > 0
          ? new Promise<never>((_, reject) => {
              timer = this.clock.setTimer(() => {
                const e = new ScheduleError('ERR_SCHEDULE_TIMEOUT', `step ${s.name} timed out after ${limit / 1000} s`);
                ctl.abort(e);
                reject(e);
              }, limit);
            })
          : undefined;
      const aborted = new Promise<never>((_, reject) => {
        ctl.signal.addEventListener('abort', () => reject(ctl.signal.reason), { once: true });
      });
      try {
        await Promise.race(timedOut === undefined ? [run, aborted] : [run, timedOut, aborted]);
      } catch (err) {
        failed = true;
        failure = err;
      } finally {
        timer?.cancel();
      }
      if (ctl.signal.aborted) {
        // The action may be dying yet (a command between its SIGTERM and SIGKILL): a retry, the next step or the end
        // of stop() must not overlap it. One that ignores its signal is waited for no longer than plugins' actions are.
        let grace: Timer | undefined;
        const given = new Promise<void>((resolve) => {
          grace = this.clock.setTimer(resolve, ABORT_GRACE_MS);
        });
        await Promise.race([run.catch(() => undefined), given]);
        grace?.cancel();
      }
    })();
    live.running = { step: s, ctl, done };
    this.counters.running++;
    await done;
    live.running = undefined;
    this.counters.running--;
    const now = this.clock.now();
    if (!failed) {
      s.state = 'done';
      s.finished = now;
      s.error = undefined;
      this.counters.stepsDone++;
      await this.persistOrSay(live);
      this.emit({ type: 'step-done', key, step: s.name, attempt, seconds: (now - t0) / 1000 });
      return;
    }
    const error = errorOf(failure);
    s.error = error.message;
    // N.B. the state may have changed while the action ran (cancel): TypeScript's narrowing does not know.
    if ((live.record.state as EventState) === 'cancelled') {
      s.state = 'cancelled';
      s.finished = now;
    } else if (this.stopping && (error as ScheduleError).code === 'ERR_SCHEDULE_STOPPED') {
      // Our own abort: not the step's failure.
      s.state = 'pending';
      s.attempts--;
    } else if (failure instanceof RetryLaterError) {
      s.state = 'pending';
      s.attempts--;
      s.retryAt = now + (failure.delay ?? this.backoff(Math.max(1, s.attempts)));
      await this.persistOrSay(live);
      this.emit({ type: 'step-retry-later', key, step: s.name, retryAt: s.retryAt });
      return;
    } else if (s.attempts >= this.o.maxAttempts) {
      await this.giveUp(live, s, error);
      return;
    } else {
      s.state = 'pending';
      s.retryAt = now + this.backoff(s.attempts);
      this.counters.stepsRetried++;
      this.emit({ type: 'step-failed', key, step: s.name, attempt, error, retryAt: s.retryAt });
    }
    await this.persistOrSay(live);
  }

  /** Records a step failed for good; with onFailure 'stop', cancels the rest. */
  private async giveUp(live: Live, s: StepRecord, error: Error): Promise<void> {
    const now = this.clock.now();
    this.emit({ type: 'step-failed', key: live.record.key, step: s.name, attempt: s.attempts, error, retryAt: undefined });
    s.state = 'failed';
    s.error = error.message;
    s.finished = now;
    s.retryAt = undefined;
    this.counters.stepsFailed++;
    if (this.o.onFailure === 'stop') {
      for (const t of live.record.steps) if (t.state === 'pending') t.state = 'cancelled';
      live.record.reason = `step ${s.name} failed (onFailure stop)`;
    }
    await this.persistOrSay(live);
  }

  private async complete(live: Live): Promise<void> {
    const r = live.record;
    r.state = 'completed';
    r.finished = this.clock.now();
    this.counters.active--;
    this.counters.completed++;
    await this.persistOrSay(live);
    const count = (state: string) => r.steps.filter((s) => s.state === state).length;
    this.emit({ type: 'completed', key: r.key, done: count('done'), failed: count('failed'), missed: count('missed') });
  }

  private backoff(failures: number): number {
    return Math.min(this.o.retryDelayMax, this.o.retryDelay * 2 ** Math.max(0, failures - 1)) * 1000;
  }

  // ---- records

  /** Writes the event's record as it is now, after the writes before it. */
  private persist(live: Live): Promise<void> {
    const record = structuredClone(live.record);
    const p = live.writing.catch(() => undefined).then(() => writeRecord(this.o.dir, record));
    live.writing = p;
    this.writes.add(p);
    void p.catch(() => undefined).finally(() => this.writes.delete(p));
    return p;
  }

  /**
   * A write after the action ran: a failure is reported, the state kept in memory (the next write carries it). A
   * crash before then runs the step again: at least once.
   */
  private async persistOrSay(live: Live): Promise<void> {
    try {
      await this.persist(live);
    } catch (err) {
      this.emit({ type: 'problem', key: live.record.key, error: errorOf(err) });
    }
  }

  /** Removes the records finished longer than the retention period ago, then again later. */
  private sweep(): void {
    if (this.stopping) return;
    const now = this.clock.now();
    const limit = this.o.retention * 1000;
    for (const [key, live] of this.events) {
      const r = live.record;
      if (r.state === 'active' || live.busy || live.removing || r.finished === undefined || r.finished + limit > now) continue;
      live.removing = true;
      // Chained to the record's writes, and what a new schedule of the key writes is chained to this (submit).
      const p = live.writing
        .catch(() => undefined)
        .then(() => removeRecord(this.o.dir, key))
        .then(
          () => {
            if (this.events.get(key) === live) this.events.delete(key);
            this.emit({ type: 'removed', key });
          },
          (err: unknown) => this.emit({ type: 'problem', key, error: errorOf(err) }),
        );
      live.writing = p;
      this.writes.add(p);
      void p.finally(() => this.writes.delete(p));
    }
    this.sweepTimer = this.clock.setTimer(() => this.sweep(), Math.min(limit, 3_600_000) || 3_600_000);
  }

  private emit(event: ScheduleEvent): void {
    try {
      this.emitRaw?.(event);
    } catch {
      // A listener that throws must not break a schedule: events are for logs.
    }
  }
}

function jsonOf(message: Message): Record<string, unknown> {
  return JSON.parse(message.stringify()) as Record<string, unknown>;
}
