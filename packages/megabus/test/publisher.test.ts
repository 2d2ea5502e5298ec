import * as fs from 'node:fs';
import { join } from 'node:path';
import {
  type MegabusEvent,
  NoBrokerError,
  Publisher,
  parseAddress,
  ResolveError,
  resolveBrokers,
  staticResolver,
} from '@msgbricks/megabus';
import { DQS, Message } from '@msgbricks/message';
import { freePorts, layout, useTempDir } from '@msgbricks/test-support';

// No broker at all: addresses where nothing listens (a refused connection is what a stopped broker gives).
const dir = useTempDir('megabus-publisher-');

function configFile(extra: string[] = []): string {
  const file = join(dir.path, 'megabus.yaml');
  fs.writeFileSync(
    file,
    [
      'server: mb.test',
      'auth_method: password',
      'user: guest',
      'password: guest',
      'destination: /queue/test',
      'max_reconnect_delay: 0.2',
      ...extra,
      '',
    ].join('\n'),
  );
  return file;
}

const aliasOf = (ports: number[]) => staticResolver({ 'mb.test': ports.map((p) => `127.0.0.1:${p}`) });

describe('megabus publisher', () => {
  test('publisher - with no broker and no spool, send rejects with NoBrokerError naming every broker tried once', async () => {
    const ports = await freePorts(3);
    const events: MegabusEvent[] = [];
    const p = new Publisher({ config: configFile(), resolver: aliasOf(ports), onEvent: (e) => events.push(e) });
    const err = await p.send('hello').catch((e) => e);
    expect(err).toBeInstanceOf(NoBrokerError);
    expect(err.code).toBe('ERR_MEGABUS_NO_BROKER');
    expect(err.failures.map((f: string) => f.split(': ')[0]).sort()).toEqual(ports.map((port) => `127.0.0.1:${port}`).sort());
    expect(events.filter((e) => e.type === 'broker-failed')).toHaveLength(3);
    await p.close();
    await expect(p.send('after')).rejects.toMatchObject({ code: 'ERR_MEGABUS_CLOSED' });
  });

  test('publisher - with a spool, sends succeed while no broker answers; the spool is kept for the next run, which starts from it', async () => {
    const ports = await freePorts(2);
    const spool = join(dir.path, 'spool');
    const file = configFile(['publisher:', `  spool: ${spool}`]);
    const p = new Publisher({ config: file, resolver: aliasOf(ports) });
    for (let i = 0; i < 5; i++) await p.send(new Message({ header: { seq: String(i) }, body: `m${i}` }));
    expect(await p.spooled()).toBe(5);
    await p.close();
    const files = layout(spool).filter((f) => !f.endsWith('/'));
    expect(files).toHaveLength(5);
    expect(files.every((f) => /^[0-9a-f]{8}\/[0-9a-f]{14}$/.test(f))).toBe(true);
    // The element files are python-messaging's JSON, with the defaults applied (destination, persistent).
    const first = JSON.parse(fs.readFileSync(join(spool, files[0] as string), 'utf8'));
    expect(first).toEqual({ header: { seq: '0', destination: '/queue/test', persistent: 'true' }, body: 'm0', text: true });
    const events: MegabusEvent[] = [];
    const again = new Publisher({ config: file, resolver: aliasOf(ports), onEvent: (e) => events.push(e) });
    await again.send('sixth');
    // Straight to the spool: earlier messages are waiting there, so this one goes behind them.
    expect(events.filter((e) => e.type === 'spooled')).toHaveLength(1);
    expect(await again.spooled()).toBe(6);
    await again.close();
  });

  test('publisher - after a crash the next run unlocks the element the forwarder held (its journal), so order holds', async () => {
    const ports = await freePorts(1);
    const spool = join(dir.path, 'spool');
    const q = new DQS(spool);
    const names = [await q.addMessage(new Message({ body: 'first' })), await q.addMessage(new Message({ body: 'second' }))];
    // As a forwarder leaves it when killed: the head element locked, and written down as held.
    expect(await q.lock(names[0] as string)).toBe(true);
    fs.writeFileSync(`${spool}.journal`, `+${names[0]}\n`);
    expect(layout(spool).filter((f) => f.endsWith('.lck'))).toEqual([`${names[0]}.lck`]);
    const p = new Publisher({ config: configFile(['publisher:', `  spool: ${spool}`]), resolver: aliasOf(ports) });
    expect(await p.drain(0)).toBe(2);
    await p.close();
    expect(layout(spool).filter((f) => !f.endsWith('/'))).toEqual(names);
    // Nothing held at the end: the journal is removed.
    expect(fs.existsSync(`${spool}.journal`)).toBe(false);
  });

  test('publisher - an alias that does not resolve is a broker failure: the message is spooled', async () => {
    const spool = join(dir.path, 'spool');
    const events: MegabusEvent[] = [];
    const p = new Publisher({
      config: configFile(['publisher:', `  spool: ${spool}`]),
      resolver: async () => {
        throw Object.assign(new Error('getaddrinfo ENOTFOUND mb.test'), { code: 'ENOTFOUND' });
      },
      onEvent: (e) => events.push(e),
    });
    await p.send('hello');
    expect(await p.spooled()).toBe(1);
    expect(events[0]).toMatchObject({ type: 'resolve-failed' });
    await p.close();
  });
});

describe('megabus resolver', () => {
  test('resolver - addresses with and without ports, IPv6, the static list, an empty alias', async () => {
    expect(parseAddress('mb1:61613')).toEqual({ address: 'mb1', port: 61613 });
    expect(parseAddress('[::1]:61613')).toEqual({ address: '::1', port: 61613 });
    expect(parseAddress('::1')).toEqual({ address: '::1' });
    expect(() => parseAddress('mb1:99999')).toThrow(ResolveError);
    const resolver = staticResolver({ a: ['10.0.0.1', '10.0.0.2:7000', '::2', '10.0.0.1'] });
    const ids = (await resolveBrokers({ alias: 'a', port: 61613, multiple: true }, resolver)).map((e) => e.id);
    expect(ids).toEqual(['10.0.0.1:61613', '10.0.0.2:7000', '[::2]:61613']);
    expect((await resolveBrokers({ alias: 'a', port: 1, multiple: false }, resolver)).map((e) => e.id)).toEqual(['a:1']);
    await expect(resolveBrokers({ alias: 'none', port: 1, multiple: true }, resolver)).rejects.toThrow(
      'none resolves to no address',
    );
  });
});
