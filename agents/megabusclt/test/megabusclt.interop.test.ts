/**
 * megabusclt as users run it, against the project's RabbitMQ: a plugin consumes a queue and runs a command per
 * message; megabusclt is SIGKILLed in the middle and started again: every message is acted on (at least once).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Publisher } from '@msgbricks/megabus';
import type { Broker } from '@msgbricks/test-support';
import * as brokers from '@msgbricks/test-support';

jest.setTimeout(240_000);

const CLI = join(__dirname, '..', 'dist', 'main.js');
let rabbit: Broker;
let tmp: string;

beforeAll(async () => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} missing: run npx tsc -b first`);
  rabbit = await brokers.startRabbitMQ();
  tmp = brokers.tempDir('megabusclt-interop-');
});

afterAll(async () => {
  await rabbit?.stop();
  brokers.removeDir(tmp);
});

interface Run {
  child: ChildProcess;
  err: () => string;
  exit: Promise<number | null>;
}

function megabusclt(args: string[]): Run {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  child.stdout?.resume();
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, err: () => err, exit };
}

async function until(what: string, cond: () => boolean, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const lines = (file: string): string[] => {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(0, -1);
  } catch {
    return [];
  }
};

/** The configuration lines of the suite's RabbitMQ (plain STOMP, its user). */
const brokerLines = () => [
  `servers: ${rabbit.host}:${rabbit.ports.stomp}`,
  'auth_method: password',
  `user: ${rabbit.user}`,
  `password: ${rabbit.password}`,
];

test('megabusclt - a plugin over RabbitMQ: SIGKILLed mid-way and restarted, every message is acted on; health, metrics, statistics', async () => {
  const COUNT = 300;
  const destination = `/queue/megabusclt.${process.pid}`;
  const handled = join(tmp, 'handled.txt');
  const [port] = await brokers.freePorts(1);
  const config = join(tmp, 'megabus.yaml');
  fs.writeFileSync(
    config,
    [
      ...brokerLines(),
      `destination: ${destination}`,
      'connect_timeout: 5',
      'max_reconnect_delay: 0.5',
      'consumer:',
      '  prefetch: 20',
      'state_dir: state',
      `metrics: ${port}`,
      'plugins:',
      '  record:',
      '    actions:',
      '      - type: command',
      // Slow enough (a process and 10 ms per message) for the kill to find work in the plugin's spool.
      `        command: 'sleep 0.01; echo "$MSG_HEADER_SEQ" >> ${handled}'`,
      '',
    ].join('\n'),
  );
  const publisher = new Publisher({ config });
  try {
    for (let i = 0; i < COUNT; i++) await publisher.send(`message ${i}`, { seq: String(i) });
  } finally {
    await publisher.close();
  }

  const first = megabusclt(['--config', config, '--stats-interval', '1']);
  await until('a third acted on', () => lines(handled).length >= COUNT / 3);
  first.child.kill('SIGKILL');
  expect(await first.exit).toBeNull();
  const atKill = lines(handled).length;
  expect(atKill).toBeLessThan(COUNT);
  expect(first.err()).toMatch(/megabusclt\[\d+\]: info: megabusclt started config=\S+megabus\.yaml/);
  expect(first.err()).toMatch(/info: plugin started plugin=record destination=\/queue\/megabusclt\./);
  expect(first.err()).toMatch(/info: connected plugin=record broker=/);

  const second = megabusclt(['--config', config, '-d', '--stats-interval', '1']);
  await until('every message acted on', () => new Set(lines(handled)).size === COUNT);
  const seqs = lines(handled).map(Number);
  expect([...new Set(seqs)].sort((a, b) => a - b)).toEqual(Array.from({ length: COUNT }, (_, i) => i));
  // At least once: the messages in flight at the kill may be acted on twice, no more than the window holds.
  expect(seqs.length - COUNT).toBeLessThanOrEqual(20);

  await until('a statistics line', () => /info: statistics plugin=record received=\d+ filtered=0 acted=/.test(second.err()));
  expect(second.err()).toMatch(/debug: handled plugin=record element=[0-9a-f]{8}\/[0-9a-f]{14} attempt=1 outcome=acted/);
  const health = await fetch(`http://127.0.0.1:${port}/healthz`);
  expect(health.status).toBe(200);
  expect(await health.json()).toMatchObject({ status: 'ok', plugins: { record: { brokers: 1, queued: 0 } } });
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  expect(metrics).toMatch(/^megabusclt_messages_acted_total\{plugin="record"\} \d+$/m);
  expect(metrics).toMatch(/^megabusclt_brokers_connected\{plugin="record"\} 1$/m);
  expect(metrics).toMatch(/^process_resident_memory_bytes \d+/m);

  second.child.kill('SIGTERM');
  expect(await second.exit).toBe(0);
  expect(second.err()).toMatch(/info: stopping: finishing the actions in flight signal=SIGTERM/);
  expect(second.err()).toMatch(/info: stopped\n$/);
  // Nothing left behind: the spool is empty, the pid file gone.
  expect(fs.readdirSync(join(tmp, 'state')).sort()).toEqual(['record']);
});

test('megabusclt - spool-examples/megabus-roger/run.sh: Roger state changes switch the disk servers, a repeated state does not', async () => {
  const work = join(tmp, 'roger');
  const [port] = await brokers.freePorts(1);
  const run = spawn('sh', [join(__dirname, '..', '..', '..', 'spool-examples', 'megabus-roger', 'run.sh')], {
    env: {
      ...process.env,
      WORK: work,
      METRICS_PORT: String(port),
      BROKER_HOST: rabbit.host,
      BROKER_STOMP_PORT: String(rabbit.ports.stomp),
      BROKER_USER: rabbit.user,
      BROKER_PASSWORD: rabbit.password,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  run.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  run.stderr?.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const status = await new Promise<number | null>((resolve) => run.on('exit', resolve));
  expect({ status, out }).toMatchObject({ status: 0 });
  // Four messages, three switches: disk42's second "draining" changed nothing.
  expect(fs.readFileSync(join(work, 'modes', 'switches.log'), 'utf8')).toBe(
    'disk42 draining read-only\ndisk43 production read-write\ndisk42 production read-write\n',
  );
  expect(fs.readFileSync(join(work, 'modes', 'disk42'), 'utf8')).toBe('read-write\n');
  expect(fs.readFileSync(join(work, 'modes', 'disk43'), 'utf8')).toBe('read-write\n');
  expect(JSON.parse(fs.readFileSync(join(work, 'state', 'roger', 'on_change.json'), 'utf8'))).toEqual({
    version: 1,
    values: { disk42: 'production', disk43: 'production' },
  });
  const log = fs.readFileSync(join(work, 'megabusclt.log'), 'utf8');
  expect(log.match(/info: roger state changed plugin=roger/g)).toHaveLength(3);
  expect(log.match(/outcome=unchanged/g)).toHaveLength(1);
  // run.sh stopped megabusclt on its way out: SIGTERM, a clean stop.
  expect(log).toMatch(/info: stopped\n$/);
});

test('megabusclt - plugins on one topic, each with its filter (its own keys, else the top level ones): each acts on what it selects', async () => {
  const topic = `/topic/megabusclt.filters.${process.pid}`;
  const work = join(tmp, 'filters');
  fs.mkdirSync(work);
  const config = join(work, 'megabus.yaml');
  const record = (name: string) => `        command: 'echo "$MSG_HEADER_HOST" >> ${join(work, `${name}.txt`)}'`;
  fs.writeFileSync(
    config,
    [
      ...brokerLines(),
      `destination: ${topic}`,
      'selector: "kind = \'roger\'"',
      'state_dir: state',
      'plugins:',
      '  disks:',
      '    host_selector: "disk%"',
      '    actions:',
      '      - type: command',
      record('disks'),
      '  draining:',
      '    selector: "state = \'draining\'"',
      '    actions:',
      '      - type: command',
      record('draining'),
      '  roger:',
      '    actions:',
      '      - type: command',
      record('roger'),
      '',
    ].join('\n'),
  );
  const run = megabusclt(['--config', config, '--stats-interval', '0']);
  try {
    // A topic keeps nothing for subscribers to come: publish once all three are subscribed.
    await until('three plugins connected', () => (run.err().match(/info: connected plugin=/g) ?? []).length === 3);
    const publisher = new Publisher({ config });
    try {
      for (const [host, state, kind] of [
        ['disk1', 'draining', 'roger'],
        ['web1', 'draining', 'roger'],
        ['disk2', 'production', 'other'],
        ['web2', 'production', 'roger'],
      ] as const)
        await publisher.send('{}', { host, state, kind });
    } finally {
      await publisher.close();
    }
    const read = (name: string) => lines(join(work, `${name}.txt`));
    await until(
      'every plugin done',
      () => read('disks').length === 2 && read('draining').length === 2 && read('roger').length === 3,
    );
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
    expect(read('disks')).toEqual(['disk1', 'disk2']);
    expect(read('draining')).toEqual(['disk1', 'web1']);
    expect(read('roger')).toEqual(['disk1', 'web1', 'web2']);
    // What a plugin's filter did not select is acknowledged and counted, not kept.
    expect(run.err()).toMatch(/info: statistics plugin=disks received=2 filtered=2 acted=2 /);
    expect(run.err()).toMatch(/info: statistics plugin=draining received=2 filtered=2 acted=2 /);
    expect(run.err()).toMatch(/info: statistics plugin=roger received=3 filtered=1 acted=3 /);
  } finally {
    run.child.kill('SIGKILL');
  }
});
