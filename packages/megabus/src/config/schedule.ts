/**
 * A plugin's `schedule` block (timed schedules): parsed and validated with the rest of the configuration, every
 * problem as FILE:LINE: key.
 *
 *   schedule:
 *     key: event_id                  # the field naming the event: a header, or body.PATH
 *     time: event_time               # the field carrying the event time (epoch s or ISO 8601); default: arrival
 *     cancel: "state = 'resolved'"   # a selector on the header: a later message with the key matching it cancels
 *     on_failure: continue           # or stop: what a step that failed for good does to the following ones
 *     retention: 604800              # seconds finished records are kept
 *     time_scale: 1                  # multiplies every at and max_late (a demonstration runs in seconds)
 *     steps:
 *       - {at: 0, type: std_log}
 *       - {at: 360, type: std_shutdown, max_late: 300}   # name: default TYPE@AT
 */
import type { ConfigProblem, Tree } from '@msgbricks/config-general';
import { parseSelector, SelectorError } from '@msgbricks/selector';
import type { ActionConfig } from '../plugins/types';
import { FIELD, parseAction } from './plugins';
import type { ScheduleConfig, ScheduleStepConfig } from './types';
import { readBlock } from './values';

/** Keys of a step besides its action's. */
const STEP_KEYS = new Set(['at', 'name', 'max_late']);
/** std_shutdown's max_late unless the step says: a machine booting long after the schedule must not shut down. */
export const SHUTDOWN_MAX_LATE = 300_000;
export const DEFAULT_RETENTION = 7 * 86_400_000;

type Problems = ConfigProblem[];

export function parseSchedule(node: Tree, prefix: string, base: string, problems: Problems): ScheduleConfig | undefined {
  if (node.kind !== 'block') {
    problems.push({ where: node.where, key: prefix, message: 'expected a block with key and steps' });
    return undefined;
  }
  const before = problems.length;
  const { values, subs } = readBlock(
    node,
    {
      key: 'string',
      time: 'string',
      cancel: 'string',
      on_failure: ['continue', 'stop'],
      retention: 'seconds',
      time_scale: 'string',
    },
    `${prefix}.`,
    problems,
    new Set(['steps', 'step']),
  );
  for (const k of ['key', 'time'] as const) {
    const v = values.get(k);
    if (v !== undefined && !FIELD.test(v.value as string))
      problems.push({
        where: v.where,
        key: `${prefix}.${k}`,
        message: `expected a header name or body.PATH, got ${JSON.stringify(v.value)}`,
      });
  }
  if (!values.has('key') && !node.entries.some(([k]) => k === 'key'))
    problems.push({ where: node.where, key: `${prefix}.key`, message: 'missing: the header name or body.PATH naming the event' });
  const cancel = values.get('cancel');
  if (cancel !== undefined) {
    try {
      parseSelector(cancel.value as string);
    } catch (err) {
      if (!(err instanceof SelectorError)) throw err;
      problems.push({ where: cancel.where, key: `${prefix}.cancel`, message: err.message });
    }
  }
  let timeScale = 1;
  const ts = values.get('time_scale');
  if (ts !== undefined) {
    timeScale = Number(ts.value);
    if (!Number.isFinite(timeScale) || timeScale <= 0)
      problems.push({
        where: ts.where,
        key: `${prefix}.time_scale`,
        message: `expected a number > 0, got ${JSON.stringify(ts.value)}`,
      });
  }
  const steps: ScheduleStepConfig[] = [];
  const names = new Map<string, string>();
  let n = 0;
  for (const [, sub] of subs) {
    const step = parseStep(sub, `${prefix}.steps[${n++}]`, base, problems);
    if (step === undefined) continue;
    const first = names.get(step.name);
    if (first !== undefined)
      problems.push({
        where: step.where,
        key: `${prefix}.steps[${n - 1}].name`,
        message: `${step.name} is already the name of the step at ${first}: give each step its own name`,
      });
    names.set(step.name, step.where);
    steps.push(step);
  }
  if (n === 0) problems.push({ where: node.where, key: `${prefix}.steps`, message: 'missing: at least one step' });
  if (problems.length > before) return undefined;
  const get = <T>(k: string): T | undefined => values.get(k)?.value as T | undefined;
  return {
    key: get<string>('key') as string,
    ...(get('time') === undefined ? {} : { time: get<string>('time') }),
    ...(get('cancel') === undefined ? {} : { cancel: get<string>('cancel') }),
    onFailure: get<'continue' | 'stop'>('on_failure') ?? 'continue',
    retention: get<number>('retention') ?? DEFAULT_RETENTION,
    timeScale,
    // In time order (stable: steps given at the same offset keep the file's order).
    steps: steps.sort((a, b) => a.at - b.at),
  };
}

function parseStep(node: Tree, prefix: string, base: string, problems: Problems): ScheduleStepConfig | undefined {
  if (node.kind !== 'block') {
    problems.push({ where: node.where, key: prefix, message: 'expected a block with at and a type' });
    return undefined;
  }
  const own: Tree = { kind: 'block', where: node.where, entries: node.entries.filter(([k]) => STEP_KEYS.has(k)) };
  const rest: Tree = { kind: 'block', where: node.where, entries: node.entries.filter(([k]) => !STEP_KEYS.has(k)) };
  const before = problems.length;
  const { values } = readBlock(
    own as Tree & { kind: 'block' },
    { at: 'seconds', name: 'string', max_late: 'seconds' },
    `${prefix}.`,
    problems,
  );
  if (!values.has('at') && !node.entries.some(([k]) => k === 'at'))
    problems.push({ where: node.where, key: `${prefix}.at`, message: 'missing: seconds after the event time' });
  const action: ActionConfig | undefined = parseAction(rest, prefix, base, problems, true);
  if (problems.length > before || action === undefined) return undefined;
  const at = values.get('at')?.value as number;
  const maxLate = values.get('max_late')?.value as number | undefined;
  return {
    name: (values.get('name')?.value as string | undefined) ?? `${action.type}@${at / 1000}`,
    at,
    where: node.where,
    ...(maxLate !== undefined ? { maxLate } : action.type === 'std_shutdown' ? { maxLate: SHUTDOWN_MAX_LATE } : {}),
    action,
  };
}

/** A schedule as its file would say it (seconds, defaults filled in), for `megabusclt check`. */
export function describeSchedule(s: ScheduleConfig, timeout: number): Record<string, unknown> {
  return {
    key: s.key,
    ...(s.time === undefined ? {} : { time: s.time }),
    ...(s.cancel === undefined ? {} : { cancel: s.cancel }),
    on_failure: s.onFailure,
    retention: s.retention / 1000,
    time_scale: s.timeScale,
    steps: s.steps.map((step) => ({
      name: step.name,
      at: step.at / 1000,
      ...(step.maxLate === undefined ? {} : { max_late: step.maxLate / 1000 }),
      ...step.action,
      timeout: step.action.timeout ?? timeout,
    })),
  };
}
