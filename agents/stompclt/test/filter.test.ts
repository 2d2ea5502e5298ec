// --filter between spools: what the selector does not select is consumed and counted as filtered, nothing is lost.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQS, Message } from '@msgbricks/message';
import { expectUsageError, locks, readAll, stompclt, useTempDir } from './helpers';

const dir = useTempDir();

const q = (name: string) => `path=${join(dir.path, name)} type=DQS`;

/** 12 messages: state, prio and hostgroup vary; `i` numbers them. */
async function fillVaried(path: string): Promise<Record<string, string>[]> {
  const queue = new DQS(path);
  const headers: Record<string, string>[] = [];
  for (let i = 0; i < 12; i++) {
    const h: Record<string, string> = { i: String(i), state: i % 3 === 0 ? 'devel' : 'production', prio: String(i % 6) };
    if (i % 4 !== 3) h.hostgroup = i % 2 === 0 ? 'castor/disk' : 'eos/fst';
    headers.push(h);
    await queue.addMessage(new Message({ header: h, body: `m${i}` }));
  }
  return headers;
}

const SELECTOR = "state = 'production' AND (prio > 3 OR hostgroup LIKE 'castor/%')";
// Written out by hand from fillVaried: production is i % 3 != 0; prio > 3 is i % 6 in 4, 5; castor is even i but
// i % 4 == 3 (no hostgroup, which is odd anyway).
const SELECTED = ['10', '11', '2', '4', '5', '8'];

describe('stompclt - --filter', () => {
  test('stompclt - --filter sends what the selector selects and consumes the rest, counted as filtered', async () => {
    await fillVaried(join(dir.path, 'a'));
    const r = stompclt(
      ['--incoming-queue', q('a'), '--outgoing-queue', q('b'), '--remove', '--filter', SELECTOR, '-s'],
      dir.path,
    );
    expect(r.status).toBe(0);
    const got = await readAll(join(dir.path, 'b'), 'DQS');
    expect(got.map((m) => m.header.i).sort()).toEqual(SELECTED);
    // The filtered messages are consumed, as a callback's drops: nothing is left in the incoming queue, no locks.
    expect(await new DQS(join(dir.path, 'a')).count()).toBe(0);
    expect(locks(join(dir.path, 'a'))).toEqual([]);
    expect(r.out).toMatch(/^count: 12 messages$/m);
    expect(r.out).toMatch(/^sent: 6, dropped: 0, filtered: 6, dead-lettered: 0, released: 0, stopped by: end$/m);
    expect(r.err).toMatch(/transfer finished received=12 sent=6 dropped=0 filtered=6 /);
  });

  test('stompclt - the filter runs before the callback, and the configuration key works as the option', async () => {
    await fillVaried(join(dir.path, 'a'));
    const cfg = join(dir.path, 'f.conf');
    fs.writeFileSync(cfg, `incoming-queue = ${q('a')}\noutgoing-queue = ${q('b')}\nremove = 1\nfilter = ${SELECTOR}\n`);
    // The callback drops every message it sees whose i is below 5: it never sees the filtered ones.
    const code = "if (Number(hdr.i) < 5) return 'small'; hdr.seen = 'yes';";
    const r = stompclt(['--config', cfg, '--callback-code', code, '-s'], dir.path);
    expect(r.status).toBe(0);
    const got = await readAll(join(dir.path, 'b'), 'DQS');
    expect(got.map((m) => m.header.i).sort()).toEqual(['10', '11', '5', '8']);
    expect(got.every((m) => m.header.seen === 'yes')).toBe(true);
    expect(r.out).toMatch(/^sent: 4, dropped: 2, filtered: 6, /m);
  });

  test('stompclt - a filter that selects nothing consumes everything; headers of any name are read as they are', async () => {
    const queue = new DQS(join(dir.path, 'a'));
    await queue.addMessage(new Message({ header: { 'my-prop': '1', constructor: 'x' }, body: 'a' }));
    await queue.addMessage(new Message({ header: { constructor: 'x' }, body: 'b' }));
    // AMQ-3355: my-prop is my - prop, NULL here; constructor is a header like any other.
    const r = stompclt(
      ['--incoming-queue', q('a'), '--outgoing-queue', q('b'), '--remove', '--filter', "my-prop = 1 OR constructor = 'y'", '-s'],
      dir.path,
    );
    expect(r.status).toBe(0);
    expect(await readAll(join(dir.path, 'b'), 'DQS')).toEqual([]);
    expect(r.out).toMatch(/^sent: 0, dropped: 0, filtered: 2, /m);
  });

  test('stompclt - an invalid selector is a configuration error: exit 2, the position, nothing consumed', async () => {
    await fillVaried(join(dir.path, 'a'));
    const r = stompclt(
      ['--incoming-queue', q('a'), '--outgoing-queue', q('b'), '--filter', "state = 'production' AND"],
      dir.path,
    );
    expectUsageError(
      r,
      /^stompclt: command line: --filter: invalid selector at column 25: expected one of .* but found the end$/m,
    );
    expect(await new DQS(join(dir.path, 'a')).count()).toBe(12);

    const cfg = join(dir.path, 'bad.conf');
    fs.writeFileSync(cfg, `incoming-queue = ${q('a')}\noutgoing-queue = ${q('b')}\nfilter = prio = NULL\n`);
    const c = stompclt(['--config', cfg], dir.path);
    expectUsageError(
      c,
      new RegExp(`^stompclt: ${cfg.replace(/[.]/g, '\\.')}:3: filter: invalid selector at column 8: "NULL": `, 'm'),
    );
  });

  test('stompclt - --filter-on-broker needs --filter and an incoming broker', () => {
    const r = stompclt(['--incoming-queue', q('a'), '--outgoing-queue', q('b'), '--filter-on-broker'], dir.path);
    expectUsageError(r, /^stompclt: command line: --filter-on-broker: needs filter$/m);
    expect(r.err).toMatch(/^stompclt: command line: --filter-on-broker: needs an incoming broker \(incoming-broker-uri\)$/m);
  });
});
