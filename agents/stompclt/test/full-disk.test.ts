import * as fs from 'node:fs';
import { join } from 'node:path';
import { CLI, type DriverMessage, fill, inNamespace, useTempDir } from './helpers';

const dir = useTempDir();

jest.setTimeout(120_000);

test('stompclt - full disk: the outgoing spool fills up, the transfer waits without losing or releasing anything, then finishes', async () => {
  const N = 300;
  const tmp = dir.path;
  await fill(join(tmp, 'in'), N);
  fs.mkdirSync(join(tmp, 'mnt'));
  // Room for a few elements (a page each) but not a whole group-commit batch: a batch fails half written.
  const { result, stderr } = await inNamespace([
    CLI,
    'out',
    join(tmp, 'in'),
    '',
    join(tmp, 'mnt'),
    '4m',
    String(40 * 1024),
    '--remove',
    '-s',
  ]);
  expect(result.driverError).toBeUndefined();
  const r = result as {
    status: number;
    err: string;
    stdout: string;
    whileFull: { in: number; out: number; running: boolean };
    out: DriverMessage[];
    inLeft: number;
  };
  expect({ status: r.status, stderr }).toEqual({ status: 0, stderr: '' });
  // While full: still running, and every message is in one spool or the other (at least once).
  expect(r.whileFull.running).toBe(true);
  expect(r.whileFull.in + r.whileFull.out).toBeGreaterThanOrEqual(N);
  expect(r.whileFull.in).toBeGreaterThan(0);
  // Said once, not once per retry; then said that it goes on.
  expect(r.err.match(/file system full/g)).toHaveLength(1);
  expect(r.err).toMatch(/outgoing queue: space again, writing/);
  expect(r.err).not.toMatch(/pipeline error/);
  expect(r.err).toMatch(/transfer finished received=300 sent=300 dropped=0 filtered=0 deadLettered=0 released=0 /);
  // Every message arrived; the incoming spool is empty.
  expect(r.inLeft).toBe(0);
  const seen = new Set(r.out.map((m) => Number(m.header.n)));
  expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i));
  for (const m of r.out) expect(Buffer.from(m.body, 'base64').toString()).toBe(`msg-${m.header.n}`);
  expect(r.stdout).toMatch(/^sent: 300,/m);
});

test('stompclt - full disk: a spool whose file system is full is drained all the same (the lock journal waits for space)', async () => {
  const N = 200;
  const tmp = dir.path;
  await fill(join(tmp, 'in'), N);
  fs.mkdirSync(join(tmp, 'mnt'));
  // The spool is copied onto the tmpfs, then the ballast takes every byte left.
  const { result, stderr } = await inNamespace([
    CLI,
    'in',
    join(tmp, 'in'),
    join(tmp, 'out'),
    join(tmp, 'mnt'),
    '4m',
    '0',
    '--remove',
    '-s',
  ]);
  expect(result.driverError).toBeUndefined();
  const r = result as { status: number; err: string; stdout: string; out: DriverMessage[]; inLeft: number };
  expect({ status: r.status, stderr }).toEqual({ status: 0, stderr: '' });
  expect(r.err).toMatch(/lock journal: file system full; the transfer goes on/);
  // Each removal frees a page: the journal is written again before the end.
  expect(r.err).toMatch(/lock journal: space again, written in full/);
  expect(r.inLeft).toBe(0);
  expect(new Set(r.out.map((m) => Number(m.header.n))).size).toBe(N);
  expect(r.stdout).toMatch(/^sent: 200,/m);
});
