import { join } from 'node:path';
import { describeConfig, loadConfig } from '@msgbricks/megabus';
import { useTempDir } from '@msgbricks/test-support';
import { problemsOf, writer } from './helpers/config';

const dir = useTempDir('megabus-plugins-config-');

const write = writer(() => dir.path);

const HEAD = ['server: mb.example.org', 'auth_method: password', 'user: u', 'password: p', 'destination: /topic/roger.state'];

describe('megabus plugins config', () => {
  test('plugins config - the same plugins in YAML, JSON and Apache style (named blocks, repeated action blocks)', () => {
    const yaml = write(
      'y/megabus.yaml',
      [
        ...HEAD,
        'state_dir: state',
        'metrics: 9466',
        'plugins:',
        '  roger:',
        '    max_attempts: 3',
        '    retry_delay: 0.5',
        '    timeout: 20',
        '    on_change:',
        '      key: host',
        '      field: body.state',
        '    actions:',
        '      - type: command',
        '        command: ./set-mode',
        '        timeout: 30',
        '      - type: http',
        '        url: http://127.0.0.1:8080/hook',
        '      - type: spool',
        '        path: out',
        '      - type: log',
        '        headers: [host, state]',
        '  audit:',
        '    destination: /queue/audit',
        '    concurrency: 4',
        '    dead_letter: /var/spool/audit-dead',
        '    actions:',
        '      - type: log',
        '',
      ].join('\n'),
    );
    const json = write(
      'y/megabus.json',
      JSON.stringify({
        server: 'mb.example.org',
        auth_method: 'password',
        user: 'u',
        password: 'p',
        destination: '/topic/roger.state',
        state_dir: 'state',
        metrics: '127.0.0.1:9466',
        plugins: {
          roger: {
            max_attempts: 3,
            retry_delay: 0.5,
            timeout: 20,
            on_change: { key: 'host', field: 'body.state' },
            actions: [
              { type: 'command', command: './set-mode', timeout: 30 },
              { type: 'http', url: 'http://127.0.0.1:8080/hook' },
              { type: 'spool', path: 'out' },
              { type: 'log', headers: ['host', 'state'] },
            ],
          },
          audit: {
            destination: '/queue/audit',
            concurrency: 4,
            dead_letter: '/var/spool/audit-dead',
            actions: [{ type: 'log' }],
          },
        },
      }),
    );
    const apache = write(
      'y/megabus.conf',
      [
        'server mb.example.org',
        'auth_method password',
        'user u',
        'password p',
        'destination /topic/roger.state',
        'state_dir state',
        'metrics 9466',
        '<plugin roger>',
        '  max_attempts 3',
        '  retry_delay 0.5',
        '  timeout 20',
        '  <on_change>',
        '    key host',
        '    field body.state',
        '  </on_change>',
        '  <action>',
        '    type command',
        '    command ./set-mode',
        '    timeout 30',
        '  </action>',
        '  <action>',
        '    type http',
        '    url http://127.0.0.1:8080/hook',
        '  </action>',
        '  <action>',
        '    type spool',
        '    path out',
        '  </action>',
        '  <action>',
        '    type log',
        '    headers host state',
        '  </action>',
        '</plugin>',
        '<plugin audit>',
        '  destination /queue/audit',
        '  concurrency 4',
        '  dead_letter /var/spool/audit-dead',
        '  <action>',
        '    type log',
        '  </action>',
        '</plugin>',
        '',
      ].join('\n'),
    );
    const [a, b, c] = [yaml, json, apache].map((file) => loadConfig({ file }));
    const state = join(dir.path, 'y', 'state');
    expect(a?.stateDir).toBe(state);
    expect(a?.metrics).toEqual({ host: '127.0.0.1', port: 9466 });
    expect(a?.plugins).toEqual([
      {
        name: 'roger',
        where: `${yaml}:9`,
        destination: undefined,
        maxAttempts: 3,
        deadLetter: join(state, 'roger', 'dead-letter'),
        retryDelay: 500,
        retryDelayMax: 30_000,
        timeout: 20_000,
        concurrency: 1,
        onChange: { key: 'host', field: 'body.state' },
        actions: [
          { type: 'command', command: './set-mode', timeout: 30 },
          { type: 'http', url: 'http://127.0.0.1:8080/hook' },
          { type: 'spool', path: join(dir.path, 'y', 'out') },
          { type: 'log', headers: ['host', 'state'] },
        ],
      },
      {
        name: 'audit',
        where: `${yaml}:26`,
        destination: '/queue/audit',
        maxAttempts: 5,
        deadLetter: '/var/spool/audit-dead',
        retryDelay: 1000,
        retryDelayMax: 30_000,
        timeout: 60_000,
        concurrency: 4,
        actions: [{ type: 'log' }],
      },
    ]);
    const strip = (x: typeof a) => ({ ...x, file: undefined, plugins: x?.plugins.map((p) => ({ ...p, where: undefined })) });
    expect(strip(b)).toEqual(strip(a));
    expect(strip(c)).toEqual(strip(a));
    // check's view: the reference's keys and units, defaults filled in.
    expect(describeConfig(a as NonNullable<typeof a>)).toMatchObject({
      state_dir: state,
      metrics: '127.0.0.1:9466',
      plugins: {
        roger: {
          destination: '/topic/roger.state',
          retry_delay: 0.5,
          timeout: 20,
          actions: [{ timeout: 30 }, { timeout: 20 }, {}, {}],
        },
        audit: { destination: '/queue/audit', max_attempts: 5 },
      },
    });
  });

  test('plugins config - no plugins: the defaults, and nothing more in check', () => {
    const c = loadConfig({ file: write('n/megabus.yaml', `${HEAD.join('\n')}\n`) });
    expect(c.plugins).toEqual([]);
    expect(c.stateDir).toBe('/var/lib/megabusclt');
    expect(c.metrics).toBeUndefined();
    expect(describeConfig(c)).not.toHaveProperty('plugins');
  });

  test('plugins config - every problem at once, in file order, as FILE:LINE: key', () => {
    const file = write(
      'p/megabus.yaml',
      [
        'server: mb.example.org', // 1
        'auth_method: password', // 2
        'user: u', // 3
        'password: p', // 4
        'metrics: localhost:99999', // 5
        'plugins:', // 6
        '  roger:', // 7
        '    max_atempts: 3', // 8
        '    retry_delay: soon', // 9
        '    on_change:', // 10
        '      key: host', // 11
        '    actions:', // 12
        '      - type: command', // 13
        '      - type: http', // 14
        '        url: ftp://x', // 15
        '      - type: mail', // 16
        '      - type: log', // 17
        '        level: loud', // 18
        '    schedule:', // 19
        '      key: event_id', // 20
        '  bad/name:', // 21
        '    actions:', // 22
        '      - type: log', // 23
        '  empty:', // 24
        '    destination: /queue/x', // 25
        'colour: red', // 26
        '',
      ].join('\n'),
    );
    expect(problemsOf(() => loadConfig({ file }))).toEqual([
      `${file}:5: metrics: expected [host:]port (port 1 to 65535), got "localhost:99999"`,
      `${file}:7: plugins.roger.destination: missing: no destination here, in consumer.destination or in destination`,
      `${file}:8: plugins.roger.max_atempts: unknown key`,
      `${file}:9: plugins.roger.retry_delay: expected seconds >= 0, got "soon"`,
      `${file}:10: plugins.roger.on_change.field: missing: a header name or body.PATH`,
      `${file}:13: plugins.roger.actions[0].command: missing: a command action needs command`,
      `${file}:15: plugins.roger.actions[1].url: expected an http:// or https:// URL, got "ftp://x"`,
      `${file}:16: plugins.roger.actions[2].type: expected one of command, http, spool, log, got "mail"`,
      `${file}:18: plugins.roger.actions[3].level: expected debug or info or warning or error, got "loud"`,
      `${file}:19: plugins.roger.schedule: not supported yet (timed schedules come next)`,
      `${file}:21: plugins.bad/name: a plugin name is letters, digits, _, . and - only`,
      `${file}:24: plugins.empty.actions: missing: at least one action`,
      `${file}:26: colour: unknown key`,
    ]);
  });

  test('plugins config - the filter keys of a plugin (the parser of mb-filter) replace the top-level ones; their problems named', () => {
    const yaml = write(
      'f/megabus.yaml',
      [
        ...HEAD, // 1-5
        'host_selector: "disk%"', // 6
        'plugins:', // 7
        '  disks:', // 8
        '    hostgroup_selector: "eos/%"', // 9
        '    use_broker_filtering: true', // 10
        '    actions: [{type: log}]', // 11
        '  all:', // 12
        '    actions: [{type: log}]', // 13
        '',
      ].join('\n'),
    );
    const apache = write(
      'f/megabus.conf',
      [
        ...HEAD.map((l) => l.replace(': ', ' ')),
        'host_selector disk%',
        '<plugin disks>',
        '  hostgroup_selector eos/%',
        '  use_broker_filtering yes',
        '  <action>',
        '    type log',
        '  </action>',
        '</plugin>',
        '<plugin all>',
        '  <action>',
        '    type log',
        '  </action>',
        '</plugin>',
        '',
      ].join('\n'),
    );
    for (const file of [yaml, apache]) {
      const c = loadConfig({ file });
      expect(c.filter).toEqual({ hostSelector: 'disk%', useBrokerFiltering: false });
      expect(c.plugins.map((p) => [p.name, p.filter])).toEqual([
        ['disks', { hostgroupSelector: 'eos/%', useBrokerFiltering: true }],
        ['all', undefined],
      ]);
      expect(describeConfig(c)).toMatchObject({
        host_selector: 'disk%',
        plugins: { disks: { hostgroup_selector: 'eos/%', use_broker_filtering: true } },
      });
    }
    const bad = write(
      'f/bad.yaml',
      [
        ...HEAD,
        'plugins:',
        '  p:',
        '    selector: "state = "',
        '    use_broker_filtering: perhaps',
        '    actions: [{type: log}]',
        '',
      ].join('\n'),
    );
    const problems = problemsOf(() => loadConfig({ file: bad }));
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(new RegExp(`^${bad}:8: plugins\\.p\\.selector: `));
    expect(problems[1]).toBe(
      `${bad}:9: plugins.p.use_broker_filtering: expected a boolean (true/false, yes/no, on/off, 1/0), got "perhaps"`,
    );
  });

  test('plugins config - Apache style: a plugin given twice and an on_change given twice are refused, lines are right', () => {
    const file = write(
      'q/megabus.conf',
      [
        'server mb.example.org', // 1
        'auth_method password', // 2
        'user u', // 3
        'password p', // 4
        'destination /queue/x', // 5
        '<plugin a>', // 6
        '  <on_change>', // 7
        '    key body.host', // 8
        '    field body', // 9
        '  </on_change>', // 10
        '  <on_change>', // 11
        '  </on_change>', // 12
        '  <action>', // 13
        '    type log', // 14
        '  </action>', // 15
        '</plugin>', // 16
        '<plugin a>', // 17
        '</plugin>', // 18
        '',
      ].join('\n'),
    );
    expect(problemsOf(() => loadConfig({ file }))).toEqual([
      `${file}:9: plugins.a.on_change.field: expected a header name or body.PATH, got "body"`,
      `${file}:11: plugins.a.on_change: given more than once (first at ${file}:7)`,
      `${file}:17: plugins.a: given more than once (first at ${file}:6)`,
    ]);
  });
});
