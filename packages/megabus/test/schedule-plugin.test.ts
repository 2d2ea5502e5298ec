import { join } from 'node:path';
import {
  type ActionContext,
  arrivalOf,
  loadConfig,
  ManualClock,
  type PluginEvent,
  PluginSchedules,
  recordName,
} from '@msgbricks/megabus';
import { Message } from '@msgbricks/message';
import { layout, useTempDir } from '@msgbricks/test-support';
import { writer } from './helpers/config';

const dir = useTempDir('megabus-schedule-plugin-');
const write = writer(() => dir.path);
const S = 1000;

function setup(schedule: string[]) {
  const file = write(
    'megabus.yaml',
    [
      'server: mb.example.org',
      'auth_method: password',
      'user: u',
      'password: p',
      'destination: /topic/ccpco',
      'state_dir: state',
      'plugins:',
      '  powercut:',
      '    schedule:',
      ...schedule.map((l) => `      ${l}`),
      '',
    ].join('\n'),
  );
  const config = loadConfig({ file });
  const clock = new ManualClock();
  const events: PluginEvent[] = [];
  const schedules = new PluginSchedules({ config, clock, onEvent: (e) => events.push(e) });
  const [take] = schedules.steps(config.plugins[0]);
  const context = (name = ''): ActionContext => ({ plugin: 'powercut', attempt: 1, signal: new AbortController().signal, name });
  return { config, clock, events, schedules, take, context };
}

describe('megabus schedule plugin', () => {
  test('schedule plugin - a message is scheduled from its fields; std_log and std_shutdown report as log events; time_scale applies', async () => {
    const { clock, events, schedules, take, context } = setup([
      'key: body.id',
      'time: event_time',
      'time_scale: 0.5',
      'steps:',
      '  - {at: 0, type: std_log, headers: [room]}',
      '  - {at: 10, type: std_shutdown}',
    ]);
    await schedules.start();
    const t0 = clock.now();
    await take(new Message({ header: { event_time: String(t0 / 1000), room: '513' }, body: '{"id":"pc-9"}' }), context());
    await clock.advance(5 * S); // 10 s at time_scale 0.5
    const logs = events.filter((e) => e.type === 'log');
    expect(logs).toEqual([
      {
        type: 'log',
        plugin: 'powercut',
        level: 'info',
        text: `plugin powercut event pc-9 step std_log@0 due ${new Date(t0).toISOString()}`,
        fields: { key: 'pc-9', step: 'std_log@0', header: { room: '513' } },
      },
      {
        type: 'log',
        plugin: 'powercut',
        level: 'warning',
        text: 'shutdown: dry run (enabled: false), would run: /sbin/shutdown -h +1',
        fields: { key: 'pc-9', command: '/sbin/shutdown -h +1', dry_run: true },
      },
    ]);
    const record = schedules.scheduler('powercut')?.record('pc-9');
    expect(record?.steps.map((s) => [s.name, s.state, (s.due - t0) / S])).toEqual([
      ['std_log@0', 'done', 0],
      ['std_shutdown@10', 'done', 5],
    ]);
    expect(events.filter((e) => e.type === 'schedule').map((e) => e.type === 'schedule' && e.event.type)).toContain('completed');
    expect(layout(join(dir.path, 'state'))).toEqual([
      'powercut/',
      'powercut/schedule/',
      `powercut/schedule/${recordName('pc-9')}`,
    ]);
    await schedules.stop();
  });

  test('schedule plugin - without a time field the event time is the arrival in the spool (the element name), and stays the first one', async () => {
    const { clock, schedules, take, context } = setup(['key: event_id', 'steps:', '  - {at: 60, type: std_log}']);
    await schedules.start();
    const arrived = Math.floor(clock.now() / 1000) - 30; // spooled 30 s ago (a restart in between, say)
    const name = `${arrived.toString(16)}/${arrived.toString(16)}01f401`; // 8000 µs (0x01f40), then the random digit
    expect(arrivalOf(name)).toBe(arrived * 1000 + 8);
    expect(arrivalOf('not/an-element')).toBeUndefined();
    await take(new Message({ header: { event_id: 'e1' } }), context(name));
    const scheduler = schedules.scheduler('powercut');
    expect(scheduler?.record('e1')?.time).toBe(arrived * 1000 + 8);
    // The same key again, later: the same event, not a new time.
    await take(new Message({ header: { event_id: 'e1' } }), context());
    expect(scheduler?.counters).toMatchObject({ scheduled: 1, duplicates: 1, rescheduled: 0 });
    await schedules.stop();
  });

  test('schedule plugin - without a time field, the same key after a cancel is a new event, which runs', async () => {
    const { clock, events, schedules, take, context } = setup([
      'key: event_id',
      `cancel: "state = 'resolved'"`,
      'steps:',
      '  - {at: 60, type: std_log}',
    ]);
    await schedules.start();
    await take(new Message({ header: { event_id: 'room-513', state: 'new' } }), context());
    await clock.advance(10 * S);
    await take(new Message({ header: { event_id: 'room-513', state: 'resolved' } }), context());
    const scheduler = schedules.scheduler('powercut');
    expect(scheduler?.record('room-513')?.state).toBe('cancelled');
    await clock.advance(3600 * S);
    // The next power cut in the same room, within the retention of the first one's record.
    const t1 = clock.now();
    await take(new Message({ header: { event_id: 'room-513', state: 'new' } }), context());
    expect(scheduler?.record('room-513')).toMatchObject({ state: 'active', time: t1 });
    await clock.advance(60 * S);
    expect(scheduler?.record('room-513')?.steps.map((s) => s.state)).toEqual(['done']);
    expect(events.filter((e) => e.type === 'log').map((e) => e.type === 'log' && e.text)).toEqual([
      `plugin powercut event room-513 step std_log@60 due ${new Date(t1 + 60 * S).toISOString()}`,
    ]);
    expect(scheduler?.counters).toMatchObject({ scheduled: 2, cancelled: 1, duplicates: 0 });
    await schedules.stop();
  });

  test('schedule plugin - the cancel selector cancels the key; a message without key or with a bad time fails its attempt', async () => {
    const { clock, schedules, take, context } = setup([
      'key: event_id',
      'time: event_time',
      `cancel: "state = 'resolved'"`,
      'steps:',
      '  - {at: 0, type: std_log}',
      '  - {at: 60, type: std_log, name: later}',
    ]);
    await schedules.start();
    await take(new Message({ header: { event_id: 'e2', event_time: String(clock.now() / 1000), state: 'new' } }), context());
    await take(new Message({ header: { event_id: 'e2', state: 'resolved' } }), context());
    expect(schedules.scheduler('powercut')?.record('e2')?.state).toBe('cancelled');
    await expect(take(new Message({ header: { state: 'new' } }), context())).rejects.toMatchObject({
      code: 'ERR_SCHEDULE_EVENT',
      message: 'no event key: event_id is missing',
    });
    await expect(take(new Message({ header: { event_id: 'e3', event_time: 'soon' } }), context())).rejects.toThrow(
      'event e3: event_time: "soon" is neither epoch seconds nor ISO 8601',
    );
    expect(schedules.counters().powercut).toMatchObject({ scheduled: 1, cancelled: 1 });
    await schedules.stop();
  });
});
