import * as fs from 'node:fs';
import { join } from 'node:path';
import { Consumer, type MegabusEvent, type ResolvedAddress } from '@msgbricks/megabus';
import { freePorts, useTempDir } from '@msgbricks/test-support';

// No broker: addresses where nothing listens, so every connection keeps trying (a broker away for maintenance).
const dir = useTempDir('megabus-consumer-');

function configFile(extra: string[] = []): string {
  const file = join(dir.path, 'megabus.yaml');
  const lines = ['server: mb.test', 'auth_method: password', 'user: guest', 'password: guest', 'resolve_interval: 0.05'];
  fs.writeFileSync(file, `${[...lines, 'max_reconnect_delay: 0.2', ...extra, ''].join('\n')}`);
  return file;
}

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('megabus consumer', () => {
  test('consumer - needs a destination, and a handler or a spool', () => {
    expect(() => new Consumer({ config: configFile(), handler: () => {} })).toThrow(
      expect.objectContaining({ code: 'ERR_MEGABUS_DESTINATION' }),
    );
    expect(() => new Consumer({ config: configFile(['destination: /queue/x']) })).toThrow(
      expect.objectContaining({ code: 'ERR_MEGABUS_HANDLER' }),
    );
  });

  test('consumer - a broker that left the alias is kept until quiet, kept if it comes back, closed when quiet though never reached', async () => {
    const [p1, p2] = await freePorts(2);
    let alias: number[] = [p1 as number, p2 as number];
    const resolver = async (): Promise<ResolvedAddress[]> => alias.map((port) => ({ address: '127.0.0.1', port }));
    const events: MegabusEvent[] = [];
    const c = new Consumer({
      config: configFile(['destination: /queue/x', 'consumer:', '  drain_quiet: 1.5']),
      resolver,
      handler: () => {},
      onEvent: (e) => events.push(e),
    });
    await c.start();
    const b2 = `127.0.0.1:${p2}`;
    expect(c.brokers).toEqual([
      { broker: `127.0.0.1:${p1}`, state: 'active' },
      { broker: b2, state: 'active' },
    ]);
    alias = [p1 as number];
    await until('draining', () => c.brokers.some((b) => b.state === 'draining'));
    // Back before it was quiet long enough: kept.
    alias = [p1 as number, p2 as number];
    await until('undrained', () => events.some((e) => e.type === 'undrained'));
    expect(events.some((e) => e.type === 'drained')).toBe(false);
    alias = [p1 as number];
    const left = Date.now();
    await until('drained', () => events.some((e) => e.type === 'drained'));
    expect(Date.now() - left).toBeGreaterThanOrEqual(1500);
    expect(events.filter((e) => e.type === 'drained')).toEqual([{ type: 'drained', broker: b2 }]);
    expect(c.brokers).toEqual([{ broker: `127.0.0.1:${p1}`, state: 'active' }]);
    await c.stop();
    expect(events.filter((e) => e.type === 'connected')).toEqual([]);
  });
});
