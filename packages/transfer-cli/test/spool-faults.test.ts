import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQN } from '@msgbricks/message';
import { useTempDir } from '@msgbricks/test-support';
import { pino } from 'pino';
import { logPurge } from '../src/modules';

function capture(level = 'info') {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level, base: undefined, timestamp: false }, { write: (l: string) => lines.push(JSON.parse(l)) });
  return { logger, lines };
}

describe('transfer-cli spool faults', () => {
  const tmp = useTempDir('transfer-faults-');

  test('spool faults - the periodic purge logs each entry it left, and a failed purge as a warning', async () => {
    const q = new DQN(join(tmp.path, 'in'));
    fs.writeFileSync(join(q.path, 'temporary', 'core'), 'not ours');
    const { logger, lines } = capture();
    logPurge(logger, q.path, { result: await q.purge() });
    expect(lines).toEqual([
      {
        level: 40,
        queue: q.path,
        path: join(q.path, 'temporary', 'core'),
        reason: 'not an element: left in place',
        msg: 'purge: unexpected entry left in place',
      },
    ]);
    fs.rmSync(q.path, { recursive: true });
    const failed = await q.purge().then(
      () => undefined,
      (e: Error) => e,
    );
    logPurge(logger, q.path, { error: failed as Error });
    expect(lines[1]).toMatchObject({ level: 40, msg: expect.stringMatching(/^purge failed: the transfer goes on/) });
    expect(String(lines[1]?.err)).toMatch(/ENOENT/);
  });

  test('spool faults - with the run record, an entry left in place is warned of once, not at every purge', async () => {
    const q = new DQN(join(tmp.path, 'once'));
    fs.writeFileSync(join(q.path, 'temporary', 'core'), 'not ours');
    const { logger, lines } = capture('debug');
    const told = new Set<string>();
    for (let i = 0; i < 3; i++) logPurge(logger, q.path, { result: await q.purge() }, told);
    const left = lines.filter((l) => l.msg === 'purge: unexpected entry left in place');
    expect(left.map((l) => l.level)).toEqual([40, 20, 20]);
    // A new entry is news: warned of once too.
    fs.writeFileSync(join(q.path, 'temporary', 'core2'), 'not ours either');
    logPurge(logger, q.path, { result: await q.purge() }, told);
    const warned = lines.filter((l) => l.level === 40).map((l) => l.path);
    expect(warned).toEqual([join(q.path, 'temporary', 'core'), join(q.path, 'temporary', 'core2')]);
  });
});
