import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQS } from '@msgbricks/message';
import { expectUsageError, fill, freePort, locks, readAll, scrapeMetrics, start, stompclt, useTempDir, waitFor } from './helpers';

const dir = useTempDir();

const q = (name: string, type = 'DQS') => `path=${join(dir.path, name)} type=${type}`;

/** A callback module that makes each message take `ms` milliseconds, so a run can be caught mid-transfer. */
function slowCallback(ms: number): string {
  const file = join(dir.path, 'slow.js');
  fs.writeFileSync(file, `exports.check = (msg) => new Promise((r) => setTimeout(() => r(msg), ${ms}));`);
  return file;
}

function uniqueBodies(path: string): Promise<Set<string>> {
  return readAll(path, 'DQS').then((ms) => new Set(ms.map((m) => m.body.toString())));
}

describe('stompclt - crash and signals', () => {
  test('stompclt - SIGKILL mid-transfer then restart: everything arrives (lock journal)', async () => {
    const sent = await fill(join(dir.path, 'a'), 120);
    const args = ['--incoming-queue', q('a'), '--outgoing-queue', q('b'), '--remove', '--callback-path', slowCallback(10)];
    const first = start(args, dir.path);
    await waitFor('a few messages', async () => (await readAll(join(dir.path, 'b'), 'DQS')).length >= 10);
    first.child.kill('SIGKILL');
    await first.done;
    expect(fs.existsSync(`${join(dir.path, 'a')}.stompclt.journal`)).toBe(true);
    expect(locks(join(dir.path, 'a')).length).toBeGreaterThan(0);
    // The restart is not refused (the dead instance's lock is broken) and releases its element locks at once.
    const t0 = Date.now();
    const r = stompclt([...args.slice(0, -2)], dir.path);
    expect(r.status).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10000);
    expect([...(await uniqueBodies(join(dir.path, 'b')))].sort()).toEqual([...sent].sort());
    expect(await new DQS(join(dir.path, 'a')).count()).toBe(0);
    expect(locks(join(dir.path, 'a'))).toEqual([]);
  });

  test('stompclt - SIGTERM stops gracefully: nothing lost, nothing locked, exit 0', async () => {
    const sent = await fill(join(dir.path, 'a'), 200);
    const run = start(
      ['--incoming-queue', q('a'), '--outgoing-queue', q('b'), '--remove', '--callback-path', slowCallback(10), '-s'],
      dir.path,
    );
    await waitFor('a few messages', async () => (await readAll(join(dir.path, 'b'), 'DQS')).length >= 5);
    run.child.kill('SIGTERM');
    const r = await run.done;
    expect(r.status).toBe(0);
    expect(r.err).toMatch(/stopping/);
    expect(r.out).toMatch(/stopped by: signal/);
    const moved = await readAll(join(dir.path, 'b'), 'DQS');
    const left = await readAll(join(dir.path, 'a'), 'DQS');
    expect(moved.length).toBeLessThan(200);
    expect([...moved, ...left].map((m) => m.body.toString()).sort()).toEqual([...sent].sort());
    expect(locks(join(dir.path, 'a'))).toEqual([]);
  });
});

describe('stompclt - process control', () => {
  test('stompclt - --pidfile with --status and --quit', async () => {
    await fill(join(dir.path, 'a'), 3);
    const pid = join(dir.path, 'stompclt.pid');
    expect(stompclt(['--status', '--pidfile', pid], dir.path).status).toBe(3);
    const run = start(['--incoming-queue', q('a'), '--outgoing-queue', q('b'), '--remove', '--loop', '--pidfile', pid], dir.path);
    await waitFor('pid file', () => fs.existsSync(pid));
    expect(fs.readFileSync(pid, 'utf8')).toBe(`${run.child.pid}\n`);
    const st = stompclt(['--status', '--pidfile', pid], dir.path);
    expect(st.status).toBe(0);
    expect(st.out).toMatch(/running \(pid \d+\)/);
    // Asynchronously: a spawnSync would keep jest from reaping the instance, which would then look alive.
    const qt = await start(['--quit', '--pidfile', pid], dir.path).done;
    expect(qt.status).toBe(0);
    expect(qt.out).toMatch(/stopped/);
    expect((await run.done).status).toBe(0);
    expect(fs.existsSync(pid)).toBe(false);
    expect(stompclt(['--status', '--pidfile', pid], dir.path).status).toBe(3);
    expect((await readAll(join(dir.path, 'b'), 'DQS')).length).toBe(3);
  });

  test('stompclt - --status reports a dead instance whose pid file remains (LSB 1)', () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    const pid = join(dir.path, 'stompclt.pid');
    fs.writeFileSync(pid, `${dead}\n`);
    const r = stompclt(['--status', '--pidfile', pid], dir.path);
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/dead/);
  });

  test('stompclt - a second instance on the same incoming queue is refused (exit 2)', async () => {
    await fill(join(dir.path, 'a'), 1);
    const args = ['--incoming-queue', q('a'), '--outgoing-queue', q('b'), '--remove', '--loop'];
    const run = start(args, dir.path);
    await waitFor('first instance', async () => (await readAll(join(dir.path, 'b'), 'DQS')).length === 1);
    const second = stompclt(['--incoming-queue', q('a'), '--outgoing-queue', q('c'), '--loop'], dir.path);
    expectUsageError(
      second,
      new RegExp(`another stompclt \\(pid ${run.child.pid}\\) is already using .*/a as its incoming queue`),
    );
    run.child.kill('SIGTERM');
    expect((await run.done).status).toBe(0);
    // Once the first one has gone, the same command runs.
    expect(stompclt(['--incoming-queue', q('a'), '--outgoing-queue', q('c'), '--duration', '0.2'], dir.path).status).toBe(0);
  });

  test('stompclt - --metrics-port serves Prometheus text at /metrics', async () => {
    await fill(join(dir.path, 'a'), 4);
    const port = await freePort();
    const run = start(
      ['--incoming-queue', q('a'), '--outgoing-queue', q('b'), '--remove', '--loop', '--metrics-port', String(port)],
      dir.path,
    );
    let text = '';
    await waitFor('metrics', async () => {
      text = await scrapeMetrics(port).catch(() => '');
      return /^stompclt_messages_acked_total 4$/m.test(text);
    });
    expect(text).toMatch(/^stompclt_messages_in_total 4$/m);
    expect(text).toMatch(/^stompclt_messages_out_total 4$/m);
    expect(text).toMatch(/^stompclt_messages_pending 0$/m);
    expect(text).toMatch(/^stompclt_messages_dead_lettered_total 0$/m);
    expect(text).toMatch(/^# TYPE stompclt_messages_in_total counter$/m);
    run.child.kill('SIGINT');
    expect((await run.done).status).toBe(0);
  });
});
