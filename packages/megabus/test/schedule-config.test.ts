import { describeConfig, loadConfig } from '@msgbricks/megabus';
import { useTempDir } from '@msgbricks/test-support';
import { problemsOf, writer } from './helpers/config';

const dir = useTempDir('megabus-schedule-config-');
const write = writer(() => dir.path);

const HEAD = ['server: mb.example.org', 'auth_method: password', 'user: u', 'password: p', 'destination: /topic/ccpco'];

describe('megabus schedule config', () => {
  test('schedule config - the power-cut schedule in YAML and Apache style: defaults, step names, time order, std_shutdown max_late', () => {
    const yaml = write(
      'megabus.yaml',
      [
        ...HEAD,
        'plugins:',
        '  powercut:',
        '    timeout: 20',
        '    schedule:',
        '      key: event_id',
        '      time: body.event.time',
        `      cancel: "state = 'resolved'"`,
        '      steps:',
        '        - {at: 240, type: std_email, to: [ops@example.org, room@example.org], smtp: "127.0.0.1:25"}',
        '        - {at: 0, type: std_log}',
        '        - {at: 120, name: prepare, type: command, command: /usr/local/sbin/powercut-prepare, timeout: 90}',
        '        - {at: 360, type: std_shutdown, enabled: false}',
        '',
      ].join('\n'),
    );
    const apache = write(
      'megabus.conf',
      [
        'server mb.example.org',
        'auth_method password',
        'user u',
        'password p',
        'destination /topic/ccpco',
        '<plugin powercut>',
        '  timeout 20',
        '  <schedule>',
        '    key event_id',
        '    time body.event.time',
        `    cancel "state = 'resolved'"`,
        '    <step>',
        '      at 240',
        '      type std_email',
        '      to ops@example.org, room@example.org',
        '      smtp 127.0.0.1:25',
        '    </step>',
        '    <step>',
        '      at 0',
        '      type std_log',
        '    </step>',
        '    <step>',
        '      at 120',
        '      name prepare',
        '      type command',
        '      command /usr/local/sbin/powercut-prepare',
        '      timeout 90',
        '    </step>',
        '    <step>',
        '      at 360',
        '      type std_shutdown',
        '      enabled no',
        '    </step>',
        '  </schedule>',
        '</plugin>',
        '',
      ].join('\n'),
    );
    for (const file of [yaml, apache]) {
      const c = loadConfig({ file });
      const p = c.plugins[0];
      expect(p.actions).toEqual([]);
      expect(p.schedule).toMatchObject({
        key: 'event_id',
        time: 'body.event.time',
        cancel: "state = 'resolved'",
        onFailure: 'continue',
        retention: 7 * 86_400_000,
        timeScale: 1,
      });
      expect(p.schedule?.steps.map((s) => [s.name, s.at, s.maxLate, s.action])).toEqual([
        ['std_log@0', 0, undefined, { type: 'std_log' }],
        ['prepare', 120_000, undefined, { type: 'command', command: '/usr/local/sbin/powercut-prepare', timeout: 90 }],
        [
          'std_email@240',
          240_000,
          undefined,
          { type: 'std_email', to: ['ops@example.org', 'room@example.org'], smtp: '127.0.0.1:25' },
        ],
        ['std_shutdown@360', 360_000, 300_000, { type: 'std_shutdown', enabled: false }],
      ]);
      // check prints it with the units of the file and every default.
      const described = describeConfig(c) as { plugins: { powercut: { schedule: unknown } } };
      expect(described.plugins.powercut.schedule).toEqual({
        key: 'event_id',
        time: 'body.event.time',
        cancel: "state = 'resolved'",
        on_failure: 'continue',
        retention: 604800,
        time_scale: 1,
        steps: [
          { name: 'std_log@0', at: 0, type: 'std_log', timeout: 20 },
          { name: 'prepare', at: 120, type: 'command', command: '/usr/local/sbin/powercut-prepare', timeout: 90 },
          {
            name: 'std_email@240',
            at: 240,
            type: 'std_email',
            to: ['ops@example.org', 'room@example.org'],
            smtp: '127.0.0.1:25',
            timeout: 20,
          },
          { name: 'std_shutdown@360', at: 360, max_late: 300, type: 'std_shutdown', enabled: false, timeout: 20 },
        ],
      });
    }
  });

  test('schedule config - every problem of a schedule at once, each with FILE:LINE: key', () => {
    const file = write(
      'bad.yaml',
      [
        ...HEAD,
        'plugins:',
        '  powercut:',
        '    actions:',
        '      - type: std_shutdown',
        '    schedule:',
        '      time: "event time"',
        '      cancel: "state = "',
        '      on_failure: maybe',
        '      time_scale: 0',
        '      colour: red',
        '      steps:',
        '        - {type: std_log}',
        '        - {at: 10, type: std_email}',
        '        - {at: 20, type: reboot}',
        '        - {at: 30, name: x, type: std_log}',
        '        - {at: 40, type: std_log, max_late: soon}',
        '        - {at: 50, name: x, type: std_log}',
        '',
      ].join('\n'),
    );
    expect(problemsOf(() => loadConfig({ file }))).toEqual([
      `${file}:9: plugins.powercut.actions[0].type: std_shutdown runs only as a step of a schedule (at most once, with max_late)`,
      `${file}:10: plugins.powercut.schedule.key: missing: the header name or body.PATH naming the event`,
      `${file}:11: plugins.powercut.schedule.time: expected a header name or body.PATH, got "event time"`,
      `${file}:12: plugins.powercut.schedule.cancel: invalid selector at column 8: expected one of "(", "+", "-", "FALSE", "NOT", "NULL", "TRUE", "XPATH", "XQUERY", identifier, number, string literal but found the end`,
      `${file}:13: plugins.powercut.schedule.on_failure: expected continue or stop, got "maybe"`,
      `${file}:14: plugins.powercut.schedule.time_scale: expected a number > 0, got "0"`,
      `${file}:15: plugins.powercut.schedule.colour: unknown key`,
      `${file}:17: plugins.powercut.schedule.steps[0].at: missing: seconds after the event time`,
      `${file}:18: plugins.powercut.schedule.steps[1].to: missing: a std_email action needs to`,
      `${file}:19: plugins.powercut.schedule.steps[2].type: expected one of command, http, spool, log, std_log, std_email, std_shutdown, got "reboot"`,
      `${file}:21: plugins.powercut.schedule.steps[4].max_late: expected seconds >= 0, got "soon"`,
      `${file}:22: plugins.powercut.schedule.steps[5].name: x is already the name of the step at ${file}:20: give each step its own name`,
    ]);
  });

  test('schedule config - a plugin needs actions or a schedule', () => {
    const file = write('none.yaml', [...HEAD, 'plugins:', '  empty:', '    max_attempts: 2', ''].join('\n'));
    expect(problemsOf(() => loadConfig({ file }))).toEqual([
      `${file}:7: plugins.empty.actions: missing: at least one action (or a schedule)`,
    ]);
  });
});
