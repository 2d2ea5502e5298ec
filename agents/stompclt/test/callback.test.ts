import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQS } from '@msgbricks/message';
import { bodies, checkBuilt, expectUsageError, fill, locks, readAll, stompclt, tempDir } from './helpers';

let tmp: string;
beforeAll(checkBuilt);
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const q = (name: string, type = 'DQS') => `path=${join(tmp, name)} type=${type}`;

describe('stompclt - callbacks in a worker thread', () => {
  test('stompclt - callback code that cannot be loaded is bad input: exit 2 with the reason, the spool untouched', async () => {
    await fill(join(tmp, 'a'), 3);
    const args = ['--incoming-queue', q('a'), '--outgoing-queue', q('b'), '--remove'];
    expectUsageError(stompclt([...args, '--callback-code', 'if ('], tmp), /^stompclt: invalid callback code: Unexpected token/m);
    const mod = join(tmp, 'bad.js');
    fs.writeFileSync(mod, "throw new Error('cannot start here');");
    expectUsageError(
      stompclt([...args, '--callback-path', mod], tmp),
      /^stompclt: cannot load callback module .*bad\.js: cannot start here$/m,
    );
    expectUsageError(stompclt([...args, '--callback-path', join(tmp, 'none.js')], tmp), /callback module not found: /);
    expect(await new DQS(join(tmp, 'a')).count()).toBe(3);
    expect(locks(join(tmp, 'a'))).toEqual([]);
    expect(fs.existsSync(`${join(tmp, 'a')}.stompclt.journal`)).toBe(false);
  });

  test('stompclt - process.exit() in the callback dead-letters that message; a new worker takes the others', async () => {
    await fill(join(tmp, 'a'), 6);
    const mod = join(tmp, 'cb.js');
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
      tmp,
    );
    expect(r.status).toBe(0);
    const got = await readAll(join(tmp, 'b'), 'DQS');
    expect(bodies(got)).toEqual(['msg-0', 'msg-1', 'msg-3', 'msg-4', 'msg-5']);
    // The new worker was started with the same data.
    expect(got.every((m) => m.getHeader('tag') === 'blue')).toBe(true);
    const dead = await readAll(join(tmp, 'dead'), 'DQS');
    expect(dead.map((m) => [m.body.toString(), m.getHeader('x-msgbricks-dead-letter-reason')])).toEqual([
      ['msg-2', 'callback failed: callback worker exited with code 3'],
    ]);
    expect(r.err).toMatch(
      /error: callback worker died: a new one takes the next message err="callback worker exited with code 3"/,
    );
    expect(await new DQS(join(tmp, 'a')).count()).toBe(0);
  });

  test('stompclt - what the callback prints reaches stdout, and a timer it leaves does not keep the command alive', () => {
    const mod = join(tmp, 'cb.js');
    fs.writeFileSync(
      mod,
      `setInterval(() => {}, 1000);
       exports.check = (msg) => { console.log('seen ' + msg.getHeader('n')); return msg; };
       exports.stop = () => console.log('stopped');`,
    );
    return fill(join(tmp, 'a'), 2).then(() => {
      const t0 = Date.now();
      const r = stompclt(['--incoming-queue', q('a'), '--outgoing-queue', 'type=NULL', '--callback-path', mod], tmp);
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
