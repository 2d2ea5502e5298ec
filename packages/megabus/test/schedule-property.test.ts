/**
 * Random sequences of announcements, cancellations, restarts and time, against the rules a Scheduler promises: no
 * step before its due time, no step run twice for one schedule, nothing run for a cancelled event, every event
 * finished in the end, and the records on disk the same as the Scheduler's.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { type EventRecord, ManualClock, recordName, type ScheduleEvent, Scheduler } from '@msgbricks/megabus';
import { Message } from '@msgbricks/message';
import { removeDir, tempDir } from '@msgbricks/test-support';
import fc from 'fast-check';

const S = 1000;
const KEYS = ['k1', 'k2', 'k/3'];
const STEPS = [
  { name: 'a', at: 0 },
  { name: 'b', at: 10 },
  { name: 'c', at: 20 },
];

type Op =
  | { op: 'advance'; s: number }
  | { op: 'submit'; key: string; dt: number }
  | { op: 'cancel'; key: string }
  | { op: 'restart' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('advance' as const), s: fc.integer({ min: 0, max: 30 }) }),
  fc.record({ op: fc.constant('submit' as const), key: fc.constantFrom(...KEYS), dt: fc.integer({ min: -25, max: 25 }) }),
  fc.record({ op: fc.constant('cancel' as const), key: fc.constantFrom(...KEYS) }),
  fc.record({ op: fc.constant('restart' as const) }),
);

describe('megabus schedule properties', () => {
  test('schedule - random announcements, cancellations, restarts and time keep the rules', async () => {
    let run = 0;
    const root = tempDir('megabus-schedule-prop-');
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { maxLength: 40 }), async (ops) => {
          const dir = join(root, String(run++));
          const clock = new ManualClock();
          const problems: string[] = [];
          /** Per key: step runs since its current schedule began; whether it is cancelled. */
          const ran = new Map<string, Set<string>>();
          const cancelled = new Set<string>();
          const events: ScheduleEvent[] = [];
          const make = () =>
            new Scheduler({
              dir,
              plugin: 'prop',
              clock,
              steps: STEPS.map((s) => ({
                ...s,
                action: async (_m, c) => {
                  const key = c.step?.key as string;
                  if ((c.step?.due as number) > clock.now()) problems.push(`${key}/${s.name} ran before its due time`);
                  if (cancelled.has(key)) problems.push(`${key}/${s.name} ran after its event was cancelled`);
                  const seen = ran.get(key) ?? new Set();
                  if (seen.has(s.name)) problems.push(`${key}/${s.name} ran twice in one schedule`);
                  seen.add(s.name);
                  ran.set(key, seen);
                },
              })),
              onEvent: (e) => {
                events.push(e);
                if (e.type === 'scheduled') {
                  ran.set(e.key, new Set());
                  cancelled.delete(e.key);
                }
              },
            });
          let s = make();
          await s.start();
          for (const o of ops) {
            if (o.op === 'advance') await clock.advance(o.s * S);
            else if (o.op === 'submit')
              await s.submit({ key: o.key, time: clock.now() + o.dt * S, message: new Message({ header: { id: o.key } }) });
            else if (o.op === 'cancel') {
              if ((await s.cancel(o.key)) !== 'finished') cancelled.add(o.key);
            } else {
              await s.stop();
              s = make();
              await s.start();
            }
          }
          await clock.advance(100 * S);
          const records = s.records();
          await s.stop();
          for (const r of records) {
            if (r.state === 'active') problems.push(`${r.key} still active`);
            if (r.state === 'completed' && r.steps.some((x) => x.state !== 'done'))
              problems.push(`${r.key} completed with ${JSON.stringify(r.steps)}`);
            const disk = JSON.parse(fs.readFileSync(join(dir, recordName(r.key)), 'utf8')) as EventRecord;
            if (JSON.stringify(disk) !== JSON.stringify(r)) problems.push(`${r.key}: the record on disk differs`);
          }
          expect(fs.readdirSync(dir).sort()).toEqual(records.map((r) => recordName(r.key)).sort());
          expect(problems).toEqual([]);
        }),
        { numRuns: 60 },
      );
    } finally {
      removeDir(root);
    }
  });
});
