import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQS } from '@msgbricks/message';
import { bodies, fill, locks, readAll, start, stompclt, useTempDir, waitFor } from './helpers';

const dir = useTempDir();

const q = (name: string, type = 'DQS') => `path=${join(dir.path, name)} type=${type}`;

describe('stompclt - queue to queue', () => {
  test('stompclt - moves a DQS queue into a DQN queue with --remove and prints --statistics', async () => {
    const sent = await fill(join(dir.path, 'a'), 30);
    const r = stompclt(['--incoming-queue', q('a'), '--outgoing-queue', q('b', 'DQN'), '--remove', '--statistics'], dir.path);
    expect(r.status).toBe(0);
    expect(bodies(await readAll(join(dir.path, 'b'), 'DQN'))).toEqual([...sent].sort());
    expect(await new DQS(join(dir.path, 'a')).count()).toBe(0);
    expect(r.out).toMatch(/^count: 30 messages$/m);
    expect(r.out).toMatch(/^elapsed: \d+\.\d{3} seconds$/m);
    expect(r.out).toMatch(/^rate: [\d.]+ msg\/s/m);
    expect(r.out).toMatch(/^throughput: [\d.]+ MB\/s$/m);
    expect(r.out).toMatch(/^average size: \d+ bytes$/m);
    // Nothing left behind: no journal, no instance lock.
    expect(fs.readdirSync(dir.path).sort()).toEqual(['a', 'b']);
  });

  test('stompclt - without --remove the incoming elements stay, unlocked (-s short alias)', async () => {
    await fill(join(dir.path, 'a'), 5);
    const r = stompclt(['--incoming-queue', q('a'), '--outgoing-queue', q('b'), '-s'], dir.path);
    expect(r.status).toBe(0);
    expect(await new DQS(join(dir.path, 'a')).count()).toBe(5);
    expect(locks(join(dir.path, 'a'))).toEqual([]);
    expect((await readAll(join(dir.path, 'b'), 'DQS')).length).toBe(5);
    expect(r.out).toMatch(/^count: 5 messages$/m);
  });

  test('stompclt - --count (-c) stops after N messages, with --window', async () => {
    await fill(join(dir.path, 'a'), 20);
    const r = stompclt(
      ['--incoming-queue', q('a'), '--outgoing-queue', q('b'), '--remove', '-c', '7', '--window', '2'],
      dir.path,
    );
    expect(r.status).toBe(0);
    expect((await readAll(join(dir.path, 'b'), 'DQS')).length).toBe(7);
    expect(await new DQS(join(dir.path, 'a')).count()).toBe(13);
    expect(locks(join(dir.path, 'a'))).toEqual([]);
  });

  test('stompclt - --callback-code changes headers and drops messages', async () => {
    await fill(join(dir.path, 'a'), 10);
    const code = "if (Number(hdr.n) % 2 === 1) return 'odd'; hdr.seen = 'yes';";
    const r = stompclt(['--incoming-queue', q('a'), '--outgoing-queue', q('b'), '--remove', '--callback-code', code], dir.path);
    expect(r.status).toBe(0);
    const got = await readAll(join(dir.path, 'b'), 'DQS');
    expect(bodies(got)).toEqual(['msg-0', 'msg-2', 'msg-4', 'msg-6', 'msg-8']);
    expect(got.every((m) => m.header.seen === 'yes')).toBe(true);
    // Dropped messages are consumed, as stompclt does.
    expect(await new DQS(join(dir.path, 'a')).count()).toBe(0);
  });

  test('stompclt - --callback-path module with --callback-data', async () => {
    await fill(join(dir.path, 'a'), 3);
    const mod = join(dir.path, 'cb.js');
    fs.writeFileSync(
      mod,
      `let tag;
       exports.start = (data) => { tag = data.tag; };
       exports.check = async (msg) => msg.with({ header: { ...msg.header, tag } });`,
    );
    const r = stompclt(
      ['--incoming-queue', q('a'), '--outgoing-queue', q('b'), '--callback-path', mod, '--callback-data', 'tag=blue x=1'],
      dir.path,
    );
    expect(r.status).toBe(0);
    const got = await readAll(join(dir.path, 'b'), 'DQS');
    expect(got.map((m) => m.header.tag)).toEqual(['blue', 'blue', 'blue']);
  });

  test('stompclt - --loop with --timeout-inactivity picks up later elements, then stops', async () => {
    await fill(join(dir.path, 'a'), 3, 'early');
    const run = start(
      ['--incoming-queue', q('a'), '--outgoing-queue', q('b'), '--remove', '--loop', '--timeout-inactivity', '1.5'],
      dir.path,
    );
    await waitFor('early messages', async () => (await readAll(join(dir.path, 'b'), 'DQS')).length === 3);
    await fill(join(dir.path, 'a'), 2, 'late');
    const r = await run.done;
    expect(r.status).toBe(0);
    expect(bodies(await readAll(join(dir.path, 'b'), 'DQS'))).toEqual(['early-0', 'early-1', 'early-2', 'late-0', 'late-1']);
  });

  test('stompclt - --duration ends a looping run', async () => {
    await fill(join(dir.path, 'a'), 2);
    const t0 = Date.now();
    const r = stompclt(
      ['--incoming-queue', q('a'), '--outgoing-queue', q('b'), '--remove', '--loop', '--duration', '1'],
      dir.path,
    );
    expect(r.status).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    expect((await readAll(join(dir.path, 'b'), 'DQS')).length).toBe(2);
  });

  test('stompclt - --lazy and a NULL outgoing queue', async () => {
    await fill(join(dir.path, 'a'), 4);
    const r = stompclt(['--incoming-queue', q('a'), '--outgoing-queue', 'type=NULL', '--remove', '--lazy', '-s'], dir.path);
    expect(r.status).toBe(0);
    expect(await new DQS(join(dir.path, 'a')).count()).toBe(0);
    expect(r.out).toMatch(/^count: 4 messages$/m);
  });
});

describe('stompclt - dead letters', () => {
  test('stompclt - a corrupt spool element goes to the dead-letter spool and the transfer continues', async () => {
    const a = join(dir.path, 'a');
    await fill(a, 3, 'before');
    await new DQS(a).add(Buffer.from('this is not a serialized message'));
    await fill(a, 3, 'after');
    const r = stompclt(
      ['--incoming-queue', q('a'), '--outgoing-queue', q('b'), '--dead-letter-queue', q('dead'), '--remove', '-s'],
      dir.path,
    );
    expect(r.status).toBe(0);
    expect(bodies(await readAll(join(dir.path, 'b'), 'DQS'))).toEqual([
      'after-0',
      'after-1',
      'after-2',
      'before-0',
      'before-1',
      'before-2',
    ]);
    const dead = await readAll(join(dir.path, 'dead'), 'DQS');
    expect(dead.length).toBe(1);
    expect(dead[0]?.body.toString()).toBe('this is not a serialized message');
    expect(dead[0]?.header['x-msgbricks-dead-letter-reason']).toMatch(/corrupt element/);
    expect(dead[0]?.header['x-msgbricks-dead-letter-source']).toContain(a);
    expect(await new DQS(a).count()).toBe(0);
    expect(r.err).toMatch(/corrupt element moved to the dead-letter queue/);
  });

  test('stompclt - a failing callback dead-letters the message with its reason', async () => {
    await fill(join(dir.path, 'a'), 4);
    const code = "if (hdr.n === '2') throw new Error('boom'); ";
    const r = stompclt(
      [
        '--incoming-queue',
        q('a'),
        '--outgoing-queue',
        q('b'),
        '--dead-letter-queue',
        q('dead'),
        '--remove',
        '--callback-code',
        code,
      ],
      dir.path,
    );
    expect(r.status).toBe(0);
    expect(bodies(await readAll(join(dir.path, 'b'), 'DQS'))).toEqual(['msg-0', 'msg-1', 'msg-3']);
    const dead = await readAll(join(dir.path, 'dead'), 'DQS');
    expect(dead.map((m) => m.body.toString())).toEqual(['msg-2']);
    expect(dead[0]?.header['x-msgbricks-dead-letter-reason']).toBe('callback failed: boom');
  });

  test('stompclt - without a dead-letter queue a failing message is released, not lost', async () => {
    await fill(join(dir.path, 'a'), 3);
    const code = "if (hdr.n === '1') throw new Error('boom'); ";
    const r = stompclt(['--incoming-queue', q('a'), '--outgoing-queue', q('b'), '--remove', '--callback-code', code], dir.path);
    expect(r.status).toBe(0);
    expect(bodies(await readAll(join(dir.path, 'b'), 'DQS'))).toEqual(['msg-0', 'msg-2']);
    expect(bodies(await readAll(join(dir.path, 'a'), 'DQS'))).toEqual(['msg-1']);
    expect(locks(join(dir.path, 'a'))).toEqual([]);
    expect(r.err).toMatch(/released/);
  });
});
