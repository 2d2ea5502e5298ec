/**
 * `single`: one supervision cycle over simplevisor's LSB services, without a running supervisor (from cron), as
 * simplevisor's `supervise()`: each supervisor compares its children's status with what is expected; a child that
 * needs an adjustment (start, stop, or a stop and start of a dirty one) gets it through the supervisor's strategy,
 * and the cycle counts against the supervisor's intensity. The history of the cycles lives in the `store` between
 * runs (./store), so intensity applies across cron invocations: a supervisor past it stops its services in reverse
 * order and fails to its parent, which counts it and starts it afresh; the root past it is held down `hold_down`
 * seconds (runs meanwhile only report), then started afresh; with `hold_down = 0` it stays down until the store is
 * removed. Services run as children exist only under a running supervisor: they are reported, not started.
 */
import { createHash } from 'node:crypto';
import type { Intensity } from './config';
import { isObject, readStore, type StoreData, writeStore } from './store';
import { LsbNode, type Node, ProcessNode, type Supervision, SupervisorNode, walk } from './tree';

export interface SingleResult {
  /** Every entry is as expected, or was made so; the store was read and written. */
  readonly ok: boolean;
  readonly lines: string[];
}

/** One supervisor's history, as kept in the store. */
interface History {
  cycles: [number, boolean][];
  restarts: number[];
  heldUntil?: number;
  gaveUp?: boolean;
}

/** simplevisor's id of a supervisor in the store: the md5 of its name. */
const idOf = (name: string): string => createHash('md5').update(name).digest('hex');

class Cycle {
  readonly lines: string[] = [];
  ok = true;

  /** `now` in seconds, as simplevisor's `time.time()`. */
  constructor(readonly now: number) {}

  fail(line: string): void {
    this.ok = false;
    this.lines.push(line);
  }
}

function historyOf(raw: unknown, path: string, c: Cycle): History {
  if (raw === undefined) return { cycles: [], restarts: [] };
  const cycles = isObject(raw) ? raw.cycles : undefined;
  if (!Array.isArray(cycles) || !cycles.every((x) => Array.isArray(x) && typeof x[0] === 'number' && typeof x[1] === 'boolean')) {
    c.lines.push(`${path}: its history in the store is not valid: ignored`);
    return { cycles: [], restarts: [] };
  }
  const r = (raw as Record<string, unknown>).restarts;
  const held = (raw as Record<string, unknown>).held_until;
  return {
    cycles: cycles as [number, boolean][],
    restarts: Array.isArray(r) ? r.filter((t): t is number => typeof t === 'number') : [],
    ...(typeof held === 'number' ? { heldUntil: held } : {}),
    ...((raw as Record<string, unknown>).gave_up === true ? { gaveUp: true } : {}),
  };
}

function dump(name: string, h: History, children: StoreData): StoreData {
  return {
    name,
    cycles: h.cycles,
    restarts: h.restarts,
    ...(h.heldUntil === undefined ? {} : { held_until: h.heldUntil }),
    ...(h.gaveUp === true ? { gave_up: true } : {}),
    children,
  };
}

/** More than `adjustments` of the last `window` cycles (runs) adjusted, or more than `max_restarts` within `max_time`. */
function exceeded(i: Intensity, h: History, now: number): boolean {
  if (i.kind === 'otp') return h.restarts.filter((t) => t > now - i.maxTime).length > i.maxRestarts;
  return h.cycles.slice(-i.window).filter(([, adjusted]) => adjusted).length > i.adjustments;
}

/** Keeps what intensity can still look at. */
function trim(i: Intensity, h: History, now: number): void {
  h.cycles = h.cycles.slice(-(i.kind === 'window' ? i.window : 12));
  h.restarts = i.kind === 'otp' ? h.restarts.filter((t) => t > now - i.maxTime) : [];
}

type Action = 'start' | 'stop' | 'restart';

async function stopNode(n: Node): Promise<void> {
  if (n instanceof LsbNode) await n.stop();
  else if (n instanceof SupervisorNode) for (const c of [...n.children].reverse()) await stopNode(c);
}

async function startNode(n: Node, c: Cycle): Promise<void> {
  if (!n.expectedRunning) return;
  if (n instanceof SupervisorNode) {
    for (const child of n.children) await startNode(child, c);
    return;
  }
  if (!(n instanceof LsbNode)) return;
  try {
    await n.start();
  } catch (err) {
    c.fail(`${n.path}: ${(err as Error).message.replace(`${n.path}: `, '')}`);
  }
}

async function act(n: Node, action: Action, c: Cycle): Promise<void> {
  if (action !== 'start') await stopNode(n);
  if (action !== 'stop') await startNode(n, c);
}

/** The adjustment of `child` through its supervisor's strategy (the others stopped in reverse order, started after). */
async function applyStrategy(s: SupervisorNode, child: Node, action: Action, line: string, c: Cycle): Promise<void> {
  const idx = s.children.indexOf(child);
  const set =
    s.spec.strategy === 'one_for_one' ? [child] : s.spec.strategy === 'one_for_all' ? s.children : s.children.slice(idx);
  const others = set.filter((n) => n !== child && n.expectedRunning && !(n instanceof ProcessNode));
  for (const o of [...others].reverse()) await stopNode(o);
  const before = c.ok;
  await act(child, action, c);
  // A failed start has said so itself.
  if (c.ok === before) c.lines.push(line);
  for (const o of others) {
    await startNode(o, c);
    c.lines.push(`${o.path}: restarted (${s.spec.strategy} for ${child.path})`);
  }
}

/** What a service needs, from its LSB status: simplevisor's `supervise()` decision. */
function decide(code: number, wanted: boolean): Action | undefined {
  if (code === 0) return wanted ? undefined : 'stop';
  if (code === 3) return wanted ? 'start' : undefined;
  return wanted ? 'restart' : 'stop';
}

/** One cycle of supervisor `s` with its stored history `raw`; resolves with whether it gave up, and what to store. */
async function supervise(
  s: SupervisorNode,
  raw: unknown,
  c: Cycle,
  h: History = historyOf(raw, s.path, c),
): Promise<{ failed: boolean; stored: StoreData }> {
  const rawChildren = isObject(raw) && isObject(raw.children) ? raw.children : {};
  const children: StoreData = {};
  let adjusted = false;
  let failed = false;
  for (const child of s.children) {
    let action: Action | undefined;
    let line = '';
    if (child instanceof SupervisorNode) {
      const id = idOf(child.spec.name);
      const r = await supervise(child, rawChildren[id], c);
      children[id] = r.stored;
      if (r.failed && s.expectedRunning) {
        // Started afresh, as the running supervisor does: its own history starts again.
        children[id] = dump(child.spec.name, { cycles: [], restarts: [] }, {});
        action = 'start';
        line = `${child.path}: failed, started again`;
      }
    } else if (child instanceof ProcessNode) {
      c.lines.push(`${child.path}: runs only under a running supervisor (msgsupervise start), skipped`);
      continue;
    } else if (child instanceof LsbNode) {
      const code = await child.status();
      action = decide(code, child.expectedRunning);
      if (action === undefined) {
        c.lines.push(`${child.path}: OK, as expected (status ${code})`);
        continue;
      }
      line = `${child.path}: status ${code}, ${action === 'stop' ? 'stopped' : action === 'start' ? 'started' : 'restarted'}`;
    }
    if (action === undefined) continue;
    if (!adjusted) h.cycles.push([c.now, true]);
    adjusted = true;
    h.restarts.push(c.now);
    await applyStrategy(s, child, action, line, c);
    if (exceeded(s.spec.intensity, h, c.now)) {
      const i = s.spec.intensity;
      c.fail(
        i.kind === 'otp'
          ? `${s.path}: more than ${i.maxRestarts} restarts within ${i.maxTime} s: giving up, its services stopped`
          : `${s.path}: adjustments needed in more than ${i.adjustments} of the last ${i.window} runs: giving up, its services stopped`,
      );
      await stopNode(s);
      failed = true;
      break;
    }
  }
  if (!adjusted) h.cycles.push([c.now, false]);
  trim(s.spec.intensity, h, c.now);
  return { failed, stored: dump(s.spec.name, h, children) };
}

/** The root's cycle, unless it is held down after giving up; its hold-down recorded when it gives up now. */
async function superviseRoot(
  root: SupervisorNode,
  raw: unknown,
  holdDown: number,
  storeFile: string | undefined,
  c: Cycle,
): Promise<StoreData> {
  const h = historyOf(raw, root.path, c);
  if (h.gaveUp === true) {
    c.fail(`${root.path}: gave up (hold_down = 0): nothing done until ${storeFile ?? 'the store'} is removed`);
    return raw as StoreData;
  }
  if (h.heldUntil !== undefined && c.now < h.heldUntil) {
    c.fail(`${root.path}: gave up, held down until ${new Date(h.heldUntil * 1000).toISOString()}: nothing done`);
    return raw as StoreData;
  }
  const afresh = h.heldUntil !== undefined;
  if (afresh) c.lines.push(`${root.path}: hold-down over, starting afresh`);
  const r = afresh ? await supervise(root, undefined, c) : await supervise(root, raw, c, h);
  if (!r.failed) return r.stored;
  if (storeFile === undefined) {
    c.lines.push(`${root.path}: no store to remember it: the next run starts again`);
    return r.stored;
  }
  if (holdDown <= 0) return { ...r.stored, gave_up: true };
  c.lines.push(`${root.path}: held down for ${holdDown} s`);
  return { ...r.stored, held_until: c.now + holdDown };
}

/**
 * One supervision cycle (see the module's comment). With a `store` in the configuration the history is read from it
 * and written back atomically; a store that is not valid is reported in the lines and ignored (replaced).
 */
export async function single(sup: Supervision, now: number = Date.now()): Promise<SingleResult> {
  const c = new Cycle(now / 1000);
  const file = sup.config.global.store;
  const read = file === undefined ? { data: {} as StoreData } : readStore(file);
  if (read.problem !== undefined) c.lines.push(read.problem);
  const root = sup.root;
  try {
    if (!(root instanceof SupervisorNode)) {
      // A lone service: adjusted on its own, nothing to count it against.
      if (root instanceof LsbNode) {
        const code = await root.status();
        const action = decide(code, root.expectedRunning);
        if (action !== undefined) await act(root, action, c);
        c.lines.push(`${root.path}: status ${code}${action === undefined ? ', as expected' : `, ${action}`}`);
      }
      return { ok: c.ok, lines: c.lines };
    }
    const id = idOf(root.spec.name);
    const stored = await superviseRoot(root, read.data[id], sup.config.global.holdDown, file, c);
    if (file !== undefined) {
      try {
        writeStore(file, { [id]: stored });
      } catch (err) {
        c.fail(`store: ${(err as Error).message}: the history of this run is lost`);
      }
    }
    return { ok: c.ok, lines: c.lines };
  } finally {
    // start() schedules the polls of a running supervisor; there is none.
    for (const n of walk(root)) n.detach();
  }
}
