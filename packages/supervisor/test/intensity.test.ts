import { Backoff, IntensityTracker, STABLE_MS } from '@msgbricks/supervisor';

describe('supervise intensity and backoff', () => {
  test('backoff - immediate after a stable run, then doubling from min to max, drawn in [d/2, d]', () => {
    const top = new Backoff(0.1, 1, () => 1);
    const bottom = new Backoff(0.1, 1, () => 0);
    expect([0, 1, 2, 3, 4, 5, 6].map(() => top.next(0))).toEqual([0, 100, 200, 400, 800, 1000, 1000]);
    expect([0, 1, 2, 3].map(() => bottom.next(0))).toEqual([0, 50, 100, 200]);
    // A run of STABLE_MS forgets the failures before it.
    expect(top.next(STABLE_MS)).toBe(0);
    expect(top.next(10)).toBe(100);
  });

  test('intensity - OTP: more than max_restarts within max_time seconds', () => {
    const t = new IntensityTracker({ kind: 'otp', maxRestarts: 2, maxTime: 10 }, 60_000);
    expect([t.record(0), t.record(4_000), t.record(9_000)]).toEqual([false, false, true]);
    const u = new IntensityTracker({ kind: 'otp', maxRestarts: 2, maxTime: 10 }, 60_000);
    // Spread over more than max_time: the oldest has left the period.
    expect([u.record(0), u.record(6_000), u.record(10_500), u.record(12_000)]).toEqual([false, false, false, true]);
  });

  test('intensity - simplevisor: cycles with a restart, not restarts, within the last window cycles', () => {
    const t = new IntensityTracker({ kind: 'window', window: 12, adjustments: 3 }, 1000);
    // Ten restarts in one cycle are one adjustment.
    for (let i = 0; i < 10; i++) expect(t.record(100 + i)).toBe(false);
    expect([t.record(1_500), t.record(2_500)]).toEqual([false, false]);
    expect(t.record(3_500)).toBe(true);
    const u = new IntensityTracker({ kind: 'window', window: 12, adjustments: 3 }, 1000);
    // Four cycles with restarts, but the first is out of the 12-cycle window when the fourth comes.
    expect([u.record(0), u.record(5_000), u.record(10_000), u.record(12_500)]).toEqual([false, false, false, false]);
  });
});
