import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '@msgbricks/config-general';
import { DEFAULTS, entries, loadConfig, type SupervisorSpec, splitCommand } from '@msgbricks/supervisor';
import { useTempDir } from '@msgbricks/test-support';

const dir = useTempDir('supervise-config-');

function write(files: Record<string, string>): string {
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir.path, name), text);
  return path.join(dir.path, Object.keys(files)[0] as string);
}

/** Every problem of a configuration that does not load, as `file:line: key: message` with the directory cut. */
function problems(file: string): string[] {
  try {
    loadConfig(file);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message.split('\n').map((l) => l.replaceAll(`${dir.path}/`, ''));
  }
  throw new Error('loaded');
}

/** What a tree means, without where each entry came from. */
function meaning(spec: unknown): unknown {
  return JSON.parse(JSON.stringify(spec, (k, v) => (k === 'where' ? undefined : v)));
}

// cern-mig/python-simplevisor examples/simplevisor.conf.example, simplevisor.services.example and
// docs/configuration.rst's other_service.conf, comments shortened.
const EXAMPLE = {
  'simplevisor.conf': `# Simplevisor has one main configuration file. The format of the configuration
# file is the Apache Style Config
<simplevisor>
    # file used to store the status
    store = /var/cache/simplevisor/simplevisor.json

    # pid file, ignored if simplevisor-control is used
    #pidfile = /path/to/pid

    # interval (sleep time) between supervision cycles
    #interval = 120
\t
    # configure the logging system, must be one of: stdout,syslog,file
    log = stdout

    #logfile = /var/log/simplevisor/simplevisor.log
\t
    #loglevel = info
</simplevisor>

<<include simplevisor.services.example>>
`,
  'simplevisor.services.example': `# file inclusion with <<include relative_file_path.conf>>

<entry>
    type = supervisor
    name = svisor1
    max_restarts = 10
    max_time = 60
    strategy = one_for_one
    <children>
\t    <entry>
\t        type = service
\t        name = httpd
\t        expected = stopped
\t        control = /sbin/service httpd
\t    </entry>
        <<include other_service.conf>>
    </children>
</entry>
`,
  'other_service.conf': `<entry>
    type = service
    name = custom1
    start = /path/to/script --conf /path/to/conf --daemon
    # If you cannot provide a status or stop command you can specify a
    # pattern which will be used to look for the process in the process table
    pattern = /path/to/script --conf /path/to/conf --daemon
</entry>
`,
};

describe('supervise config', () => {
  test("config - simplevisor's own example configuration is accepted and means the same", () => {
    const config = loadConfig(write(EXAMPLE));
    expect(config.global).toMatchObject({
      store: '/var/cache/simplevisor/simplevisor.json',
      pidfile: undefined,
      interval: 60,
      log: 'stdout',
      loglevel: 'warning',
      logname: 'simplevisor',
      holdDown: DEFAULTS.holdDown,
    });
    expect(meaning(config.root)).toEqual({
      type: 'supervisor',
      name: 'svisor1',
      path: 'svisor1',
      strategy: 'one_for_one',
      // The example's max_restarts/max_time: OTP's intensity, 10 restarts in 60 s.
      intensity: { kind: 'otp', maxRestarts: 10, maxTime: 60 },
      expected: 'none',
      children: [
        {
          type: 'service',
          kind: 'lsb',
          name: 'httpd',
          path: 'svisor1/httpd',
          expected: 'stopped',
          timeout: 60,
          start: ['/sbin/service', 'httpd', 'start'],
          stop: ['/sbin/service', 'httpd', 'stop'],
          status: ['/sbin/service', 'httpd', 'status'],
          restart: ['/sbin/service', 'httpd', 'restart'],
        },
        {
          type: 'service',
          kind: 'lsb',
          name: 'custom1',
          path: 'svisor1/custom1',
          expected: 'running',
          timeout: 60,
          start: ['/path/to/script', '--conf', '/path/to/conf', '--daemon'],
          pattern: '/path/to/script --conf /path/to/conf --daemon',
        },
      ],
    });
    // Each entry knows the file and line it was declared at, through the includes.
    expect(entries(config.root).map((e) => e.where.replace(`${dir.path}/`, ''))).toEqual([
      'simplevisor.services.example:3',
      'simplevisor.services.example:10',
      'other_service.conf:1',
    ]);
  });

  test('config - the same tree in JSON (--conftype json) and YAML means the same', () => {
    const apache = loadConfig(write(EXAMPLE));
    const json = write({
      'tree.json': JSON.stringify({
        simplevisor: { store: '/var/cache/simplevisor/simplevisor.json', log: 'stdout' },
        entry: {
          type: 'supervisor',
          name: 'svisor1',
          max_restarts: 10,
          max_time: 60,
          strategy: 'one_for_one',
          children: {
            entry: [
              { type: 'service', name: 'httpd', expected: 'stopped', control: '/sbin/service httpd' },
              {
                type: 'service',
                name: 'custom1',
                start: '/path/to/script --conf /path/to/conf --daemon',
                pattern: '/path/to/script --conf /path/to/conf --daemon',
              },
            ],
          },
        },
      }),
    });
    const yaml = write({
      'tree.yaml': `simplevisor:
  store: /var/cache/simplevisor/simplevisor.json
  log: stdout
entry:
  type: supervisor
  name: svisor1
  max_restarts: 10
  max_time: 60
  children:
    entry:
      - { type: service, name: httpd, expected: stopped, control: /sbin/service httpd }
      - type: service
        name: custom1
        start: /path/to/script --conf /path/to/conf --daemon
        pattern: /path/to/script --conf /path/to/conf --daemon
`,
    });
    expect(meaning(loadConfig(json))).toEqual({ ...(meaning(apache) as object), file: json });
    expect(meaning(loadConfig(yaml))).toEqual({ ...(meaning(apache) as object), file: yaml });
    // A JSON file named otherwise is read as JSON when told so.
    fs.renameSync(json, path.join(dir.path, 'tree.conf'));
    expect((loadConfig(path.join(dir.path, 'tree.conf'), { conftype: 'json' }).root as SupervisorSpec).children).toHaveLength(2);
  });

  test('config - defaults, inherited expected, variables scoped to their subtree, %20 in commands', () => {
    const file = write({
      'v.conf': `<simplevisor>
  var_base = /opt/app
</simplevisor>
<entry>
  type = supervisor
  name = top
  expected = stopped
  <children>
    <entry>
      type = supervisor
      name = inner
      var_conf = \${var_base}/etc
      <children>
        <entry>
          type = service
          name = worker
          command = \${var_base}/bin/worker --conf \${var_conf}/worker.conf --title my%20worker
        </entry>
      </children>
    </entry>
    <entry>
      type = service
      name = other
      expected = running
      command = /bin/true \${var_conf}
    </entry>
  </children>
</entry>
`,
    });
    const unknownVar = '$' + '{var_conf}';
    expect(problems(file)).toEqual([`v.conf:25: command: unknown variable ${unknownVar}`]);
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(` ${unknownVar}\n`, '\n'));
    const config = loadConfig(file);
    const top = config.root as SupervisorSpec;
    expect(top.intensity).toEqual({ kind: 'window', window: 12, adjustments: 3 });
    const inner = top.children[0] as SupervisorSpec;
    expect(inner.expected).toBe('stopped');
    expect(inner.children[0]).toMatchObject({
      path: 'top/inner/worker',
      kind: 'process',
      expected: 'stopped',
      argv: ['/opt/app/bin/worker', '--conf', '/opt/app/etc/worker.conf', '--title', 'my worker'],
      stopTimeout: DEFAULTS.stopTimeout,
      readiness: { kind: 'none' },
      output: 'log',
    });
    expect(top.children[1]).toMatchObject({ expected: 'running' });
    expect(splitCommand('  a%20b   c ')).toEqual(['a b', 'c']);
  });

  test('config - every problem at once, each with file, line and key', () => {
    const file = write({
      'bad.conf': `<simplevisor>
  interval = soon
  logg = file
</simplevisor>
<entry>
  type = supervisor
  name = top
  strategy = one_for_none
  window = 12
  max_restarts = 3
  <children>
    <entry>
      type = service
      name = a
      comand = /bin/a
    </entry>
    <entry>
      type = service
      name = b
      command = /bin/b
      ready = url
    </entry>
    <entry>
      type = service
      name = b
      start = /bin/b
      pattern = b
      status = /bin/b-status
    </entry>
    <entry>
      type = supervisor
      name = empty
    </entry>
  </children>
</entry>
`,
    });
    expect(problems(file)).toEqual([
      'bad.conf:3: logg: unknown key in <simplevisor> (did you mean log?)',
      'bad.conf:2: interval: not a number >= 0.01: "soon"',
      'bad.conf:8: strategy: must be one of one_for_one, one_for_all, rest_for_one, not "one_for_none"',
      'bad.conf:10: max_restarts: give either window/adjustments (simplevisor) or max_restarts/max_time (OTP), not both',
      'bad.conf:15: comand: unknown key in a service entry (did you mean command?)',
      'bad.conf:12: start: service top/a needs command, start or control',
      'bad.conf:17: ready_url: ready = url needs an http:// or https:// ready_url',
      'bad.conf:27: pattern: cannot be combined with status, stop or control',
      'bad.conf:23: name: two entries named b in top (the first at bad.conf:17)',
      'bad.conf:30: children: supervisor top/empty has no <children> block (a supervisor needs at least one child)',
    ]);
  });
});
