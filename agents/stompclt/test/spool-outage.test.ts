// A spool that cannot be used for a while (issue 11, item 6): EACCES, EROFS... on the outgoing or dead-letter spool,
// or an incoming spool that cannot be listed. The agent waits with backoff (said once per state change, a gauge while
// it lasts), never releases and fetches again in a hot loop, and goes on once the error has cleared; with
// --timeout-spool-fault it gives up with exit 1, the spool left as it was. The errors are real: the tests run as
// root, for whom EACCES never happens, so the command runs as nobody (setpriv); EROFS is a read-only bind mount in a
// mount namespace of the command's own (unshare), made writable again from outside (nsenter).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQS } from '@msgbricks/message';
import { bodies, CLI, fill, freePort, locks, type Running, readAll, scrapeMetrics, start, useTempDir, waitFor } from './helpers';

jest.setTimeout(90_000);
const dir = useTempDir();
const NOBODY = 65534;

const startWith = (prefix: string[], args: string[]): Running => start(args, dir.path, CLI, prefix);

const asNobody = (args: string[]) => startWith(['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'], args);

function chownR(path: string, uid: number): void {
  fs.chownSync(path, uid, uid);
  if (!fs.lstatSync(path).isDirectory()) return;
  for (const e of fs.readdirSync(path)) chownR(join(path, e), uid);
}

/** A directory nobody owns, under the test's (made traversable): the agent writes its lock and journal there. */
function nobodysDir(): string {
  fs.chmodSync(dir.path, 0o755);
  const base = join(dir.path, 'n');
  fs.mkdirSync(base, { mode: 0o755 });
  fs.chownSync(base, NOBODY, NOBODY);
  return base;
}

/** --incoming-queue BASE/in --outgoing-queue BASE/out --remove, and `more`. */
const spoolArgs = (base: string, ...more: string[]) => [
  '--incoming-queue',
  `path=${join(base, 'in')} type=DQS`,
  '--outgoing-queue',
  `path=${join(base, 'out')} type=DQS`,
  '--remove',
  ...more,
];

const count = (text: string, re: RegExp) => text.match(new RegExp(re.source, 'g'))?.length ?? 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('stompclt spool outage - EACCES on the outgoing spool: waits (said once, gauge set), goes on once writable, nothing lost or doubled', async () => {
  const base = nobodysDir();
  const sent = await fill(join(base, 'in'), 20);
  chownR(join(base, 'in'), NOBODY);
  // The outgoing spool belongs to root: nobody may not write in it.
  new DQS(join(base, 'out'));
  const port = await freePort();
  const run = asNobody(spoolArgs(base, '--metrics-port', String(port)));
  await waitFor('the fault logged', () => /spool unusable \(EACCES/.test(run.err()), 30_000);
  let text = '';
  await waitFor('the fault gauge', async () => {
    text = await scrapeMetrics(port).catch(() => '');
    return /^stompclt_spool_fault\{.*side="outgoing",errno="EACCES"\} 1$/m.test(text);
  });
  expect(text).toMatch(
    new RegExp(`^stompclt_spool_fault\\{queue="${join(base, 'out')}",side="outgoing",errno="EACCES"\\} 1$`, 'm'),
  );
  expect(text).toMatch(/^stompclt_spool_faults_total 1$/m);
  expect(text).toMatch(/^stompclt_messages_released_total 0$/m);
  // Waiting, not spinning: a second later still one warning, and the messages still in the incoming spool.
  await sleep(1500);
  expect(count(run.err(), /spool unusable/)).toBe(1);
  expect(run.child.exitCode).toBeNull();
  expect(await new DQS(join(base, 'in')).count()).toBe(20);
  chownR(join(base, 'out'), NOBODY);
  const r = await run.done;
  expect(r.status).toBe(0);
  expect(r.err).toMatch(/outgoing queue: spool usable again, going on/);
  expect(r.err).toMatch(
    /transfer finished received=20 sent=20 dropped=0 filtered=0 deadLettered=0 released=0 acked=20 skipped=0 spoolFaults=1 /,
  );
  expect(r.err).not.toMatch(/pipeline error/);
  const got = await readAll(join(base, 'out'), 'DQS');
  expect(got).toHaveLength(20);
  expect(bodies(got)).toEqual([...sent].sort());
  expect(await new DQS(join(base, 'in')).count()).toBe(0);
});

test('stompclt spool outage - --timeout-spool-fault: gives up with exit 1, every element back in the incoming spool, unlocked', async () => {
  const base = nobodysDir();
  await fill(join(base, 'in'), 10);
  chownR(join(base, 'in'), NOBODY);
  new DQS(join(base, 'out'));
  const t0 = Date.now();
  const r = await asNobody(spoolArgs(base, '--timeout-spool-fault', '1')).done;
  expect(r.status).toBe(1);
  // One second of fault, then the stop: messages waiting for the spool are given back at once, not after a linger.
  expect(Date.now() - t0).toBeLessThan(15_000);
  expect(r.err).toMatch(/spool unusable for too long: giving up/);
  expect(r.err).toMatch(/released=10 /);
  expect(await new DQS(join(base, 'in')).count()).toBe(10);
  expect(locks(join(base, 'in'))).toEqual([]);
  expect(await new DQS(join(base, 'out')).count()).toBe(0);
});

test('stompclt spool outage - an incoming spool that cannot be listed: idle and retried, the daemon goes on once it can', async () => {
  const base = nobodysDir();
  const first = await fill(join(base, 'in'), 5, 'first');
  chownR(join(base, 'in'), NOBODY);
  fs.mkdirSync(join(base, 'out'));
  fs.chownSync(join(base, 'out'), NOBODY, NOBODY);
  const run = asNobody(spoolArgs(base, '--loop'));
  await waitFor('the first messages', async () => (await readAll(join(base, 'out'), 'DQS')).length === 5, 30_000);
  fs.chmodSync(join(base, 'in'), 0o000);
  await waitFor('the fault logged', () => /incoming queue: spool unusable \(EACCES/.test(run.err()), 30_000);
  const second = await fill(join(base, 'in'), 5, 'second');
  chownR(join(base, 'in'), NOBODY);
  await sleep(1000);
  expect(count(run.err(), /spool unusable/)).toBe(1);
  expect(run.child.exitCode).toBeNull();
  fs.chmodSync(join(base, 'in'), 0o755);
  await waitFor('the other messages', async () => (await readAll(join(base, 'out'), 'DQS')).length === 10, 30_000);
  run.child.kill('SIGTERM');
  const r = await run.done;
  expect(r.status).toBe(0);
  expect(r.err).toMatch(/incoming queue: spool usable again, going on/);
  expect(bodies(await readAll(join(base, 'out'), 'DQS'))).toEqual([...first, ...second].sort());
});

test('stompclt spool outage - EROFS on the dead-letter spool (a read-only mount): the dead letters wait, the rest goes, then they are written', async () => {
  const dlq = join(dir.path, 'dlq');
  new DQS(dlq);
  await fill(join(dir.path, 'in'), 12);
  const callback = join(dir.path, 'cb.js');
  fs.writeFileSync(
    callback,
    `exports.check = (m) => { if (Number(m.header.n) % 4 === 0) throw new Error('refused'); return m; };`,
  );
  // The command in a mount namespace of its own, where the dead-letter spool is a read-only bind mount of itself.
  const script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"';
  const run = startWith(
    ['unshare', '-m', 'sh', '-c', script, 'sh', dlq],
    spoolArgs(dir.path, '--dead-letter-queue', `path=${dlq} type=DQS`, '--callback-path', callback),
  );
  await waitFor('the fault logged', () => /dead-letter queue: spool unusable \(EROFS/.test(run.err()), 30_000);
  await waitFor('the other messages', async () => (await readAll(join(dir.path, 'out'), 'DQS')).length === 9, 30_000);
  expect(await new DQS(dlq).count()).toBe(0);
  expect(run.child.exitCode).toBeNull();
  // Writable again, from outside the namespace.
  const rw = spawn('nsenter', ['-t', String(run.child.pid), '-m', 'mount', '-o', 'remount,bind,rw', dlq]);
  expect(await new Promise((resolve) => rw.on('close', resolve))).toBe(0);
  const r = await run.done;
  expect(r.status).toBe(0);
  expect(r.err).toMatch(/dead-letter queue: spool usable again, going on/);
  expect(count(r.err, /spool unusable/)).toBe(1);
  expect(r.err).toMatch(/transfer finished received=12 sent=9 dropped=0 filtered=0 deadLettered=3 released=0 /);
  const dead = await readAll(dlq, 'DQS');
  expect(dead.map((m) => m.header.n).sort()).toEqual(['0', '4', '8']);
  expect(await new DQS(join(dir.path, 'in')).count()).toBe(0);
});
