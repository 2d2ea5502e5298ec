import { Message } from '@msgbricks/message';
import { PendingError, RejectedError } from './errors';
import { abortableSleep } from './failover';
import type { Callback, Delivery, Incoming, Outgoing } from './modules';

export const DEAD_LETTER_REASON = 'x-msgbricks-dead-letter-reason';

export interface PipelineOptions {
  /** Most messages sent but not yet safe (default 1000). */
  window?: number;
  /** Most bytes (message sizes) sent but not yet safe (default 64 MiB). */
  windowBytes?: number;
  /** Stop after this many incoming messages. */
  count?: number;
  /** Stop after this many seconds. */
  duration?: number;
  /** Stop once nothing has arrived for this many seconds ("drain mode"). */
  timeoutInactivity?: number;
  /** After the loop, wait at most this many seconds for pending messages (default: forever). */
  timeoutLinger?: number;
  /**
   * After a stop through `signal`, wait at most this many seconds for pending messages when timeoutLinger is not
   * set (default: as timeoutLinger). A signal also ends the waits for a connection and for a free slot at once.
   */
  stopLinger?: number;
  /** Open the outgoing module only when the first message is to be sent. */
  lazy?: boolean;
  callback?: Callback;
  callbackData?: Record<string, string>;
  /**
   * Messages for which this says false are consumed (acked) and counted as `filtered`, before the callback sees
   * them: a selector (--filter) on the client side.
   */
  filter?: (message: Message) => boolean;
  /** Where messages that cannot be delivered go (callback threw, next hop refused), with the reason in a header. */
  deadLetter?: Outgoing;
  /** Aborting stops the loop gracefully: in-flight messages are finished (up to timeoutLinger) and the rest given back. */
  signal?: AbortSignal;
  /** Milliseconds to wait when the incoming side has nothing (default 50). */
  idleInterval?: number;
  /** Events for logs and metrics. */
  onEvent?: (event: PipelineEvent) => void;
  /**
   * The counts to add to (newPipelineStats()), when others count into them too: the incoming spool's dead-lettered
   * and skipped elements, spool faults. The run's log summary, statistics, metrics and live status then read one
   * object and cannot disagree. Default: a new one. runPipeline resolves to it.
   */
  stats?: PipelineStats;
}

export type PipelineEvent =
  | { type: 'dropped'; id: string; reason: string }
  | { type: 'filtered'; id: string }
  | { type: 'dead-lettered'; id: string; reason: string }
  | { type: 'released'; id: string; reason: string }
  | { type: 'error'; error: unknown };

export interface PipelineStats {
  received: number;
  sent: number;
  dropped: number;
  /** Messages and spool elements written to the dead-letter module: the pipeline's and the incoming spool's. */
  deadLettered: number;
  released: number;
  /** Deliveries acknowledged to the incoming module (sent, dropped or dead-lettered by the pipeline). */
  acked: number;
  /** Spool elements that could not be locked or read, stepped over (counted by whoever reads the spool). */
  skipped: number;
  /** Times a spool became unusable (EACCES, EROFS, EIO...) and its side paused until it was usable again. */
  spoolFaults: number;
  /** Consumed without being sent: `filter` said no. */
  filtered: number;
  bytes: number;
  /** Milliseconds between the first and the last message received, as stompclt's statistics. */
  elapsedMs: number;
  stoppedBy: 'end' | 'count' | 'duration' | 'inactivity' | 'signal';
}

/** Counts at zero, for runPipeline's `stats` option. */
export function newPipelineStats(): PipelineStats {
  return {
    received: 0,
    sent: 0,
    dropped: 0,
    deadLettered: 0,
    released: 0,
    acked: 0,
    skipped: 0,
    spoolFaults: 0,
    filtered: 0,
    bytes: 0,
    elapsedMs: 0,
    stoppedBy: 'end',
  };
}

/** How many messages a pipelined callback (Callback.pipelined) may have before the first result is needed. */
const LOOKAHEAD = 64;

type Checked = { out: Message | string } | { error: string };

/** A check's outcome as a promise that never rejects (it may wait in a queue, unobserved, for a while). */
function settled(callback: Callback, message: Message): Promise<Checked> {
  const failed = (err: unknown): Checked => ({ error: err instanceof Error ? err.message : String(err) });
  try {
    return Promise.resolve(callback.check(message)).then(
      (out): Checked =>
        out instanceof Message || typeof out === 'string' ? { out } : failed('check() must return a message or a string'),
      failed,
    );
  } catch (err) {
    return Promise.resolve(failed(err));
  }
}

/**
 * Resolves to true once `p` has settled (rejecting as it does), to false as soon as `signal` aborts: what waits on
 * a broker that may never answer (a connection through a failover list, a window full of unconfirmed messages)
 * must not hold a stop up. A promise left behind is observed, so that its later failure is not unhandled.
 */
async function unlessAborted(p: Promise<void>, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal === undefined) {
    await p;
    return true;
  }
  if (signal.aborted) {
    p.catch(() => undefined);
    return false;
  }
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<false>((resolve) => {
    onAbort = () => resolve(false);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([p.then(() => true as const), aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort as () => void);
    p.catch(() => undefined);
  }
}

/**
 * Moves messages from `incoming` to `outgoing` through the callback, with
 * stompclt's reliability model: a delivery is acked upstream only once the
 * outgoing side says it is safe, at most `window` are in flight, and a
 * message that can never be delivered goes to the dead-letter module.
 */
export async function runPipeline(incoming: Incoming, outgoing: Outgoing, options: PipelineOptions = {}): Promise<PipelineStats> {
  const window = options.window ?? 1000;
  const windowBytes = options.windowBytes ?? 64 * 1024 * 1024;
  const idleMs = options.idleInterval ?? 50;
  const emit = options.onEvent ?? (() => undefined);
  const signal = options.signal;
  const callback = options.callback;
  const filter = options.filter;
  const stats = options.stats ?? newPipelineStats();
  /** Messages sent (or acks and dead-letterings started) and not settled yet. */
  let inflight = 0;
  let inflightBytes = 0;
  let outgoingOpen = false;
  /** The outgoing side's open(), once asked for: a stop while it connects closes it too. */
  let outgoingOpening: Promise<void> | undefined;
  let firstAt = 0;
  let lastAt = Date.now();
  const started = Date.now();

  /** Opens the outgoing side; false when `signal` stopped the wait first. */
  const openOutgoing = async (): Promise<boolean> => {
    if (outgoingOpen) return true;
    outgoingOpening ??= outgoing.open();
    if (!(await unlessAborted(outgoingOpening, signal))) return false;
    outgoingOpen = true;
    return true;
  };

  const deadLetter = async (d: Delivery, reason: string): Promise<void> => {
    if (options.deadLetter === undefined) {
      // Nowhere to put it: give it back rather than lose it; it will come again.
      await incoming.release(d.id);
      stats.released++;
      emit({ type: 'released', id: d.id, reason });
      return;
    }
    const header = d.message.headerEntries().filter(([k]) => k !== DEAD_LETTER_REASON);
    header.push([DEAD_LETTER_REASON, reason]);
    await options.deadLetter.send(d.message.with({ header }));
    await incoming.ack(d.id);
    stats.acked++;
    stats.deadLettered++;
    emit({ type: 'dead-lettered', id: d.id, reason });
  };

  const settle = async (d: Delivery, message: Message, size: number): Promise<void> => {
    try {
      await outgoing.send(message);
      stats.sent++;
      await incoming.ack(d.id);
      stats.acked++;
    } catch (err) {
      if (err instanceof RejectedError) await deadLetter(d, `refused: ${err.message}`);
      else {
        await incoming.release(d.id);
        stats.released++;
        emit({ type: 'released', id: d.id, reason: err instanceof Error ? err.message : String(err) });
      }
    } finally {
      inflightBytes -= size;
    }
  };

  // The loop waits for a free slot through one resolver woken by every settlement: Promise.race over
  // the in-flight set would cost time in proportion to the window for every message (800 us at 1000).
  // In-flight work is a count, not a set of promises: one reaction per message, nothing kept per message.
  let slotFreed: (() => void) | undefined;
  let drained: (() => void) | undefined;
  const wakeSlot = () => {
    const wake = slotFreed;
    slotFreed = undefined;
    wake?.();
  };
  const done = () => {
    inflight--;
    wakeSlot();
    if (inflight === 0) drained?.();
  };
  // A stop does not wait for a slot: the broker may never free one (it went silent). One listener for the run wakes
  // the waiter, rather than a race and a listener per wait (a wait per message once the window is full).
  signal?.addEventListener('abort', wakeSlot, { once: true });
  const failed = (error: unknown) => {
    try {
      emit({ type: 'error', error });
    } finally {
      done();
    }
  };
  const track = (p: Promise<void>) => {
    inflight++;
    p.then(done, failed);
  };
  const slot = () =>
    new Promise<void>((resolve) => {
      slotFreed = resolve;
    });
  // Whatever the outgoing sides gather into batches (group commit) goes now: the loop is about to wait, and what it
  // waits for (a free slot, a new delivery, the end) may need those very messages made safe and acked first.
  const flush = () => {
    if (outgoingOpen) outgoing.flush?.();
    options.deadLetter?.flush?.();
  };
  const waitForSlot = async () => {
    while (inflight > 0 && (inflight >= window || inflightBytes >= windowBytes) && !signal?.aborted) {
      flush();
      await slot();
    }
  };

  // An incoming side that says when deliveries arrive ends the idle wait at once: a broker's prefetch window,
  // drained and acked while the loop idled, must not wait for the idle timer before its next messages are read.
  let arrivals = 0;
  let wakeIdle: (() => void) | undefined;
  incoming.onArrival?.(() => {
    arrivals++;
    wakeIdle?.();
  });
  const idle = (ms: number) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        wakeIdle = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done);
      wakeIdle = done;
    });

  /** What the callback made of a message: sent on, or dropped (consumed, as stompclt does). */
  const dispatch = async (d: Delivery, out: Message | string, size: number): Promise<void> => {
    if (typeof out === 'string') {
      // A filtered message is consumed, as stompclt does: acking it keeps it from coming back.
      stats.dropped++;
      emit({ type: 'dropped', id: d.id, reason: out });
      track(
        incoming.ack(d.id).then(() => {
          stats.acked++;
        }),
      );
      return;
    }
    if (!(await openOutgoing())) {
      // Stopped while the outgoing side connects: the message goes back.
      await incoming.release(d.id);
      stats.released++;
      emit({ type: 'released', id: d.id, reason: 'stopped before the outgoing side was connected' });
      return;
    }
    inflightBytes += size;
    track(settle(d, out, size));
  };

  // A pipelined callback gets the checks of up to LOOKAHEAD messages at once: they are dispatched in order, each
  // once its own result is in. Between an in-thread callback's calls nothing overlaps (lookahead 0).
  const lookahead = callback?.pipelined === true ? LOOKAHEAD : 0;
  const checking: { d: Delivery; size: number; out: Promise<Checked> }[] = [];
  const nextChecked = async (): Promise<void> => {
    const c = checking.shift() as (typeof checking)[number];
    const r = await c.out;
    if ('error' in r) track(deadLetter(c.d, `callback failed: ${r.error}`));
    else await dispatch(c.d, r.out, c.size);
  };

  if (!(await unlessAborted(incoming.open(), signal))) {
    // Stopped while connecting (a failover list retrying forever, a broker that never says CONNECTED).
    stats.stoppedBy = 'signal';
    await incoming.close().catch((error) => emit({ type: 'error', error }));
    return stats;
  }
  try {
    if (!options.lazy && !(await openOutgoing())) {
      stats.stoppedBy = 'signal';
      return stats;
    }
    await options.deadLetter?.open();
    await callback?.start?.(options.callbackData ?? {});
    for (;;) {
      if (signal?.aborted) {
        stats.stoppedBy = 'signal';
        break;
      }
      if (options.count !== undefined && stats.received >= options.count) {
        stats.stoppedBy = 'count';
        break;
      }
      if (options.duration !== undefined && Date.now() - started >= options.duration * 1000) {
        stats.stoppedBy = 'duration';
        break;
      }
      await waitForSlot();
      if (signal?.aborted) continue;
      const seen = arrivals;
      const d = await incoming.next();
      if (d === null) break;
      if (d === undefined) {
        if (checking.length > 0) {
          // Nothing new: finish what the callback has.
          await nextChecked();
          continue;
        }
        if (options.timeoutInactivity !== undefined && Date.now() - lastAt >= options.timeoutInactivity * 1000) {
          stats.stoppedBy = 'inactivity';
          break;
        }
        flush();
        await callback?.idle?.();
        // RACE: a delivery that arrived since next() was asked (during the callback's idle, say) is read at once.
        if (arrivals === seen) await idle(idleMs);
        continue;
      }
      stats.received++;
      lastAt = Date.now();
      if (firstAt === 0) firstAt = lastAt;
      stats.elapsedMs = lastAt - firstAt;
      const size = d.message.size();
      stats.bytes += size;
      if (d.refused !== undefined) {
        // Refused by its own incoming module: never checked nor sent, but kept (dead-lettered whole) or given back.
        track(deadLetter(d, `refused: ${d.refused}`));
        continue;
      }
      if (filter !== undefined && !filter(d.message)) {
        // Consumed, as a message the callback drops: acking it keeps it from coming back.
        stats.filtered++;
        emit({ type: 'filtered', id: d.id });
        track(incoming.ack(d.id));
        continue;
      }
      if (lookahead > 0) {
        checking.push({ d, size, out: settled(callback as Callback, d.message) });
        if (checking.length >= lookahead) await nextChecked();
        continue;
      }
      let out: Message | string;
      try {
        out = callback ? await callback.check(d.message) : d.message;
        if (!(out instanceof Message) && typeof out !== 'string')
          throw new TypeError('check() must return a message or a string');
      } catch (err) {
        track(deadLetter(d, `callback failed: ${err instanceof Error ? err.message : String(err)}`));
        continue;
      }
      await dispatch(d, out, size);
    }
    // The messages whose checks were asked for are finished as the others (to the window, as in the loop).
    while (checking.length > 0) {
      await waitForSlot();
      await nextChecked();
    }
    // Linger: let what is in flight become safe.
    flush();
    if (inflight > 0) {
      const all = new Promise<void>((resolve) => {
        drained = resolve;
      });
      const lingerFor = (seconds: number | undefined) =>
        seconds === undefined ? all : Promise.race([all, abortableSleep(seconds * 1000)]);
      if (signal?.aborted || options.timeoutLinger !== undefined) {
        await lingerFor(signal?.aborted ? (options.timeoutLinger ?? options.stopLinger) : options.timeoutLinger);
      } else if (!(await unlessAborted(all, signal))) {
        // A stop while lingering without a time limit (the broker stopped confirming, say) is bounded as the others.
        await lingerFor(options.stopLinger);
      }
    }
    if (inflight > 0) throw new PendingError(inflight);
    return stats;
  } finally {
    signal?.removeEventListener('abort', wakeSlot);
    await Promise.resolve(callback?.stop?.()).catch((error) => emit({ type: 'error', error }));
    if (outgoingOpening !== undefined) await outgoing.close().catch((error) => emit({ type: 'error', error }));
    await options.deadLetter?.close().catch((error) => emit({ type: 'error', error }));
    await incoming.close().catch((error) => emit({ type: 'error', error }));
  }
}
