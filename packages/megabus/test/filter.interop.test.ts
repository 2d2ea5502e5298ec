// The same filter configuration gets the same messages whether ActiveMQ filters (use_broker_filtering) or the client
// does, and on RabbitMQ, which has no selectors. Each row's messages are queued first (a SEND to a destination with
// a subscription whose selector fails on it gets an ERROR from ActiveMQ), then consumed from one queue with the
// selector on the SUBSCRIBE and from a copy without; what the broker kept is drained afterwards.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { RejectedError } from '@msgbricks/agent';
import { Consumer, type FilterConfig, type MegabusEvent, Publisher } from '@msgbricks/megabus';
import type { Broker } from '@msgbricks/test-support';
import * as brokers from '@msgbricks/test-support';
import { removeDir, tempDir } from '@msgbricks/test-support';

jest.setTimeout(240_000);

let amq: Broker;
let rabbit: Broker;
let tmp: string;
let unique = 0;

beforeAll(async () => {
  [amq, rabbit] = await Promise.all([brokers.startActiveMQ(), brokers.startRabbitMQ()]);
  tmp = tempDir('megabus-filter-interop-');
});

afterAll(async () => {
  await Promise.all([amq?.stop(), rabbit?.stop()]);
  removeDir(tmp);
});

/** The messages of every row (`seq` is their index), string headers as STOMP carries them. */
const MESSAGES: Record<string, string>[] = [
  /* 0 */ { host: 'disk_01', hostgroup: 'eos/disk', prio: '5', state: 'draining' },
  /* 1 a leading zero, not the literal _ */ { host: 'diskx01', hostgroup: 'eos/disk/new', prio: '05', state: 'production' },
  /* 2 a plus sign */ { host: 'disk_02', hostgroup: 'castor/disk', prio: '+5', state: 'draining' },
  /* 3 not a number, a hostgroup without / */ { host: 'lb01', hostgroup: 'eos', prio: 'abc', state: 'draining' },
  /* 4 upper case, a decimal */ { host: 'DISK_01', hostgroup: 'eos/disk', prio: '7.0', state: 'DRAINING' },
  /* 5 no state */ { host: 'disk_1', hostgroup: 'eosx/y', prio: '2' },
  /* 6 nothing */ {},
  /* 7 a quote, a literal _ in a hostgroup */ { host: "it's", hostgroup: 'eos_disk', prio: '10' },
];

/** A filter configuration (YAML lines) and the messages ActiveMQ delivers for it (docs/selector.md says why). */
const ROWS: { name: string; lines: string[]; selected: number[] }[] = [
  { name: 'a selector', lines: [`selector: "state = 'draining'"`], selected: [0, 2, 3] },
  { name: 'hostgroup_selector eos/%', lines: ['hostgroup_selector: eos/%'], selected: [0, 1, 4] },
  { name: 'host_selector with a literal _', lines: ['host_selector: disk_0%'], selected: [0, 2] },
  { name: 'host_selector with a quote', lines: [`host_selector: "it's"`], selected: [7] },
  {
    name: 'three keys with AND; an integer literal converts +5 and 05, not 7.0',
    lines: ['selector: prio > 3', 'hostgroup_selector: eos%', 'host_selector: disk%'],
    selected: [0, 1],
  },
  { name: 'a decimal literal converts 7.0 and +5', lines: ['selector: prio > 3.0'], selected: [0, 1, 2, 4, 7] },
  { name: 'a string literal compares strings', lines: [`selector: "prio = '5'"`], selected: [0] },
  { name: 'NULL on the right of <> is true', lines: [`selector: "'draining' <> state"`], selected: [1, 4, 5, 6, 7] },
  { name: 'NULL on the left of <> is unknown', lines: [`selector: "state <> 'draining'"`], selected: [1, 4] },
  {
    name: '-- is two minus signs (NULL on the right: true without state), kept apart from the shortcut',
    lines: [`selector: "state = 'draining' -- comment"`, 'host_selector: disk%'],
    selected: [5],
  },
];

const ALL = MESSAGES.map((_, i) => i);

function configFile(b: Broker, port: number, destination: string, lines: string[]): string {
  const file = join(tmp, `megabus-${unique++}.yaml`);
  const text = [
    `servers: ["${b.host}:${port}"]`,
    'auth_method: password',
    'user: guest',
    'password: guest',
    `destination: ${destination}`,
    'connect_timeout: 5',
    'max_reconnect_delay: 0.5',
    ...lines,
  ];
  fs.writeFileSync(file, `${text.join('\n')}\n`);
  return file;
}

/** Waits for `cond`, at most `ms`: what arrived by then is compared (a row that differs shows what it got). */
async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
}

async function publishAll(file: string): Promise<void> {
  const p = new Publisher({ config: file });
  for (const [seq, header] of MESSAGES.entries()) await p.send(`message ${seq}`, { ...header, seq: String(seq) });
  await p.close();
}

interface Run {
  got: number[];
  filtered: number;
  events: MegabusEvent[];
}

/**
 * Consumes `file`'s destination until `done` says so (or 30 s passed), then a moment more (nothing else may come),
 * and stops.
 * `filtering` replaces the file's filter (a plugin's way).
 */
async function consume(file: string, done: (r: Run) => boolean, filtering?: FilterConfig): Promise<Run> {
  const run: Run = { got: [], filtered: 0, events: [] };
  const c = new Consumer({
    config: file,
    ...(filtering === undefined ? {} : { filtering }),
    onEvent: (e) => run.events.push(e),
    handler: (m) => {
      run.got.push(Number(m.header.seq));
    },
  });
  await c.start();
  const seen = () => ({ ...run, filtered: c.filtered });
  await until(() => done(seen()), 30_000);
  await new Promise((r) => setTimeout(r, 300));
  await c.stop();
  run.filtered = c.filtered;
  run.got.sort((a, b) => a - b);
  return run;
}

describe('megabus filter interop', () => {
  test('filter - ActiveMQ: broker-side and client-side filtering give exactly the same messages; the broker keeps the others', async () => {
    for (const row of ROWS) {
      const dest = `/queue/megabus.filter.${process.pid}.${unique++}`;
      const onBroker = configFile(amq, amq.ports.stomp, `${dest}.broker`, [...row.lines, 'use_broker_filtering: true']);
      const onClient = configFile(amq, amq.ports.stomp, `${dest}.client`, row.lines);
      await publishAll(onBroker);
      await publishAll(onClient);
      const client = await consume(onClient, (r) => r.got.length + r.filtered === MESSAGES.length);
      const broker = await consume(onBroker, (r) => r.got.length >= client.got.length);
      expect([row.name, broker.got]).toEqual([row.name, client.got]);
      expect([row.name, client.got]).toEqual([row.name, row.selected]);
      // The broker filtered: the client had nothing left to drop; the client-side consumer dropped the rest.
      expect([row.name, broker.filtered]).toEqual([row.name, 0]);
      expect([row.name, client.filtered]).toEqual([row.name, MESSAGES.length - row.selected.length]);
      expect(client.events.filter((e) => e.type === 'filtered')).toHaveLength(client.filtered);
      // What ActiveMQ did not deliver is still queued: exactly the others.
      const rest = await consume(onBroker, (r) => r.got.length >= MESSAGES.length - row.selected.length, {
        useBrokerFiltering: false,
      });
      expect([row.name, rest.got]).toEqual([row.name, ALL.filter((i) => !row.selected.includes(i))]);
    }
  });

  test('filter - a broker-side selector that fails on a message makes ActiveMQ refuse the SEND; client-side it is only not selected', async () => {
    // `1 + prio` fails on a string (arithmetic never converts, docs/selector.md); without prio it is NULL.
    const lines = ['selector: 1 + prio = 6'];
    for (const onBroker of [true, false]) {
      const file = configFile(amq, amq.ports.stomp, `/topic/megabus.fail.${process.pid}.${unique++}`, [
        ...lines,
        `use_broker_filtering: ${onBroker}`,
      ]);
      const got: string[] = [];
      const events: MegabusEvent[] = [];
      const c = new Consumer({ config: file, onEvent: (e) => events.push(e), handler: (m) => void got.push(m.body.toString()) });
      await c.start();
      await until(() => events.some((e) => e.type === 'connected'), 30_000);
      const p = new Publisher({ config: file });
      const sent = await p.send('with prio', { prio: '5' }).then(
        () => 'sent',
        (err) => err,
      );
      await p.send('marker', { mark: '1' }).catch(() => undefined);
      await p.close();
      // Broker-side, nothing is to come: a moment for anything that would.
      await until(() => !onBroker && got.length + c.filtered >= 2, onBroker ? 500 : 30_000);
      await c.stop();
      if (onBroker) {
        expect(sent).toBeInstanceOf(RejectedError);
        expect(c.filtered).toBe(0);
      } else {
        expect(sent).toBe('sent');
        expect(c.filtered).toBe(2);
      }
      expect(got).toEqual([]);
    }
  });

  test('filter - RabbitMQ ignores selectors: with use_broker_filtering the client filters, the same messages again', async () => {
    for (const row of ROWS) {
      const dest = `/queue/megabus.filter.${process.pid}.${unique++}`;
      const file = configFile(rabbit, rabbit.ports.stomp, dest, [...row.lines, 'use_broker_filtering: true']);
      await publishAll(file);
      const r = await consume(file, (x) => x.got.length + x.filtered === MESSAGES.length);
      expect([row.name, r.got, r.filtered]).toEqual([row.name, row.selected, MESSAGES.length - row.selected.length]);
    }
  });

  test('filter - AMQP 1.0 on RabbitMQ: the jms-selector source filter is ignored, the client filters', async () => {
    const row = ROWS[4] as (typeof ROWS)[number];
    const dest = `/queue/megabus.filter.${process.pid}.${unique++}`;
    const file = configFile(rabbit, rabbit.ports.amqp as number, dest, [
      'protocol: amqp',
      ...row.lines,
      'use_broker_filtering: true',
    ]);
    await publishAll(file);
    const r = await consume(file, (x) => x.got.length + x.filtered === MESSAGES.length);
    expect([r.got, r.filtered]).toEqual([row.selected, MESSAGES.length - row.selected.length]);
  });
});
