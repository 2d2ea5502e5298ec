import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQS } from '@msgbricks/message';
import { bodies, expectUsageError, fill, locks, readAll, stompclt, useTempDir } from './helpers';

const dir = useTempDir();

const q = (name: string, type = 'DQS') => `path=${join(dir.path, name)} type=${type}`;

describe('stompclt - callbacks in a worker thread', () => {
  test('stompclt - callback code that cannot be loaded is bad input: exit 2 with the reason, the spool untouched', async () => {
    await fill(join(dir.path, 'a'), 3);
    const args = ['--incoming-queue', q('a'), '--outgoing-queue', q('b'), '--remove'];
    expectUsageError(
      stompclt([...args, '--callback-code', 'if ('], dir.path),
      /^stompclt: invalid callback code: Unexpected token/m,
    );
    const mod = join(dir.path, 'bad.js');
    fs.writeFileSync(mod, "throw new Error('cannot start here');");
    expectUsageError(
      stompclt([...args, '--callback-path', mod], dir.path),
      /^stompclt: cannot load callback module .*bad\.js: cannot start here$/m,
    );
    expectUsageError(stompclt([...args, '--callback-path', join(dir.path, 'none.js')], dir.path), /callback module not found: /);
    expect(await new DQS(join(dir.path, 'a')).count()).toBe(3);
    expect(locks(join(dir.path, 'a'))).toEqual([]);
    expect(fs.existsSync(`${join(dir.path, 'a')}.stompclt.journal`)).toBe(false);
  });

  test('stompclt - process.exit() in the callback dead-letters that message; a new worker takes the others', async () => {
    await fill(join(dir.path, 'a'), 6);
    const mod = join(dir.path, 'cb.js');
    fs.writeFileSync(
      mod,
      `let tag;
       exports.start = (data) => { tag = data.tag; };
       exports.check = (msg) => {
         if (msg.getHeader('n') === '2') process.exit(3);
         return msg.with({ header: { ...msg.header, tag } });
       };`,
    );
    const r = stompclt(
      [
        '--incoming-queue',
        q('a'),
        '--outgoing-queue',
        q('b'),
        '--dead-letter-queue',
        q('dead'),
        '--remove',
        '--callback-path',
        mod,
        '--callback-data',
        'tag=blue',
      ],
      dir.path,
    );
    expect(r.status).toBe(0);
    const got = await readAll(join(dir.path, 'b'), 'DQS');
    expect(bodies(got)).toEqual(['msg-0', 'msg-1', 'msg-3', 'msg-4', 'msg-5']);
    // The new worker was started with the same data.
    expect(got.every((m) => m.getHeader('tag') === 'blue')).toBe(true);
    const dead = await readAll(join(dir.path, 'dead'), 'DQS');
    expect(dead.map((m) => [m.body.toString(), m.getHeader('x-msgbricks-dead-letter-reason')])).toEqual([
      ['msg-2', 'callback failed: callback worker exited with code 3'],
    ]);
    expect(r.err).toMatch(
      /error: callback worker died: a new one takes the next message err="callback worker exited with code 3"/,
    );
    expect(await new DQS(join(dir.path, 'a')).count()).toBe(0);
  });

  test('stompclt - what the callback prints reaches stdout, and a timer it leaves does not keep the command alive', () => {
    const mod = join(dir.path, 'cb.js');
    fs.writeFileSync(
      mod,
      `setInterval(() => {}, 1000);
       exports.check = (msg) => { console.log('seen ' + msg.getHeader('n')); return msg; };
       exports.stop = () => console.log('stopped');`,
    );
    return fill(join(dir.path, 'a'), 2).then(() => {
      const t0 = Date.now();
      const r = stompclt(['--incoming-queue', q('a'), '--outgoing-queue', 'type=NULL', '--callback-path', mod], dir.path);
      expect(r.status).toBe(0);
      expect(
        r.out
          .split('\n')
          .filter((l) => l !== '')
          .sort(),
      ).toEqual(['seen 0', 'seen 1', 'stopped']);
      expect(Date.now() - t0).toBeLessThan(5000);
    });
  });
});
