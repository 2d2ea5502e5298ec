import { CLEAR_LINE, formatStatus, LiveStatus, wantsLiveStatus } from '../src/status';

describe('transfer-cli live status', () => {
  test('live status - the line gives in, out, acked, pending and the rate', () => {
    expect(formatStatus('stompclt', { in: 1200, out: 1195, acked: 1190, pending: 10, rate: 249.96 })).toBe(
      'stompclt: in 1200 out 1195 acked 1190 pending 10 rate 250.0 msg/s',
    );
  });

  test('live status - the line is cut to one column less than the terminal', () => {
    const line = formatStatus('stompclt', { in: 1, out: 2, acked: 3, pending: 4, rate: 5 }, 21);
    expect(line).toBe('stompclt: in 1 out 2');
    expect(line).toHaveLength(20);
    expect(formatStatus('stompclt', { in: 1, out: 2, acked: 3, pending: 4, rate: 5 }, 200)).toMatch(/rate 5\.0 msg\/s$/);
  });

  test('live status - only on a terminal, never with --debug nor on a dumb terminal', () => {
    expect(wantsLiveStatus({ isTTY: true }, 0, { TERM: 'xterm' })).toBe(true);
    expect(wantsLiveStatus({ isTTY: true }, 0, {})).toBe(true);
    expect(wantsLiveStatus({ isTTY: false }, 0, { TERM: 'xterm' })).toBe(false);
    expect(wantsLiveStatus({}, 0, { TERM: 'xterm' })).toBe(false);
    expect(wantsLiveStatus({ isTTY: true }, 1, { TERM: 'xterm' })).toBe(false);
    expect(wantsLiveStatus({ isTTY: true }, 0, { TERM: 'dumb' })).toBe(false);
  });

  test('live status - written again in place, counts from a getter, cleared at stop', () => {
    const written: string[] = [];
    const counters = {
      in: 0,
      out: 0,
      acked: 0,
      released: 0,
      get pending() {
        return this.in - this.acked - this.released;
      },
    };
    const live = new LiveStatus({
      program: 'stompclt',
      figures: () => counters,
      write: (t) => written.push(t),
      columns: () => 100,
    });
    live.start();
    counters.in = 7;
    counters.out = 5;
    counters.acked = 4;
    live.update();
    expect(written).toHaveLength(1);
    expect(written[0]?.startsWith(`${CLEAR_LINE}stompclt: in 7 out 5 acked 4 pending 3 rate `)).toBe(true);
    expect(written[0]).toMatch(/ rate \d+\.\d msg\/s$/);
    live.stop();
    expect(written.slice(1)).toEqual([CLEAR_LINE]);
    // Stopped: nothing more.
    live.stop();
    expect(written).toHaveLength(2);
  });
});
