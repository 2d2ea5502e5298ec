import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQS } from '@msgbricks/message';
import { backdate } from '@msgbricks/test-support';
import { bodies, CLI, expectUsageError, fill, readAll, start, stompclt, useTempDir, waitFor } from './helpers';

/**
 * Hostile and odd entries in a spool (issue 11 items 7 and 8), against the built command and real files: a link is
 * never followed, one bad element never stops the spool. Both dirq paths: the native binding and JavaScript.
 */

const dir = useTempDir();
const q = (name: string) => `path=${join(dir.path, name)} type=DQS`;

/** Plants a symbolic link to a file outside the spool as an element of `queue`; returns the target. */
function plantLink(queue: string): { target: string; mtimeMs: number; element: string } {
  const target = join(dir.path, 'passwd');
  fs.writeFileSync(target, 'root:x:0:0:root:/root:/bin/bash\n');
  backdate(target, 5000);
  const bucket = fs.readdirSync(queue).filter((d) => /^[0-9a-f]{8}$/.test(d))[0] as string;
  const element = `${bucket}/00000000000001`; // sorts first: read before the real elements
  fs.symlinkSync(target, join(queue, element));
  return { target, mtimeMs: fs.statSync(target).mtimeMs, element };
}

describe.each([
  ['native', {}],
  ['javascript', { MSGBRICKS_DIRQ_NATIVE: '0' }],
] as const)('stompclt spool faults (dirq %s path)', (_path, env) => {
  test('stompclt spool faults - a symlinked element is never read nor sent; the dead-letter queue records it without content', async () => {
    const sent = await fill(join(dir.path, 'in'), 3);
    const link = plantLink(join(dir.path, 'in'));
    const r = stompclt(
      ['--incoming-queue', q('in'), '--outgoing-queue', q('out'), '--dead-letter-queue', q('dlq'), '--remove'],
      dir.path,
      env,
    );
    expect(r.status).toBe(0);
    expect(bodies(await readAll(join(dir.path, 'out'), 'DQS'))).toEqual(sent);
    const dead = await readAll(join(dir.path, 'dlq'), 'DQS');
    expect(dead.length).toBe(1);
    expect(dead[0]?.body.length).toBe(0);
    expect(dead[0]?.getHeader('x-msgbricks-dead-letter-reason')).toMatch(/symbolic link, never followed/);
    expect(dead[0]?.getHeader('x-msgbricks-dead-letter-source')).toBe(join(dir.path, 'in', link.element));
    expect(r.err).toMatch(/symbolic link refused: recorded in the dead-letter queue without its target, and removed/);
    expect(r.err).not.toMatch(/root:x:0/);
    // The link itself is gone (it held nothing); its target is untouched.
    expect(fs.existsSync(join(dir.path, 'in', link.element))).toBe(false);
    expect(fs.readFileSync(link.target, 'utf8')).toBe('root:x:0:0:root:/root:/bin/bash\n');
    expect(fs.statSync(link.target).mtimeMs).toBe(link.mtimeMs);
    expect(await new DQS(join(dir.path, 'in')).count()).toBe(0);
  });

  test('stompclt spool faults - without a dead-letter queue a symlinked element is skipped and the rest transferred', async () => {
    const sent = await fill(join(dir.path, 'in'), 3);
    const link = plantLink(join(dir.path, 'in'));
    const r = stompclt(['--incoming-queue', q('in'), '--outgoing-queue', q('out'), '--remove'], dir.path, env);
    expect(r.status).toBe(0);
    expect(bodies(await readAll(join(dir.path, 'out'), 'DQS'))).toEqual(sent);
    expect(r.err).toMatch(/element cannot be locked or read: skipped.*ELOOP: a symbolic link, never followed/);
    expect(fs.lstatSync(join(dir.path, 'in', link.element)).isSymbolicLink()).toBe(true);
    expect(fs.existsSync(join(dir.path, 'in', `${link.element}.lck`))).toBe(false);
    expect(fs.statSync(link.target).mtimeMs).toBe(link.mtimeMs);
  });

  test('stompclt spool faults - a stray file with a counter directory name is ignored with one warning', async () => {
    // Was: "fatal: transfer failed err=cannot opendir(.../12345678): ENOTDIR", exit 1, nothing transferred.
    const sent = await fill(join(dir.path, 'in'), 3);
    fs.writeFileSync(join(dir.path, 'in', '12345678'), 'stray');
    fs.writeFileSync(join(dir.path, 'in', 'README'), 'stray');
    const r = stompclt(['--incoming-queue', q('in'), '--outgoing-queue', q('out'), '--remove'], dir.path, env);
    expect(r.status).toBe(0);
    expect(bodies(await readAll(join(dir.path, 'out'), 'DQS'))).toEqual(sent);
    expect(r.err.match(/stray file at the top of the queue: ignored/g)?.length).toBe(1);
    expect(fs.readFileSync(join(dir.path, 'in', '12345678'), 'utf8')).toBe('stray');
  });
});

describe('stompclt spool faults - permissions', () => {
  // The tests run as root (CI too), for whom EACCES never happens: the command runs as nobody (setpriv), the honest
  // way to meet a file it may not read. The spool belongs to nobody; one element belongs to root, mode 0600.
  const asNobody = (args: string[]) =>
    spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, ...args], {
      cwd: dir.path,
      input: '',
      env: { ...process.env, STOMPCLT_DEBUG: '' },
      timeout: 30000,
    });

  test('stompclt spool faults - an element the agent may not read is skipped, even with a dead-letter queue; the rest goes', async () => {
    const sent = await fill(join(dir.path, 'in'), 3);
    const unreadable = join(dir.path, 'in', fs.readdirSync(join(dir.path, 'in'))[0] as string, '00000000000001');
    fs.writeFileSync(unreadable, 'private');
    fs.chmodSync(unreadable, 0o600);
    for (const p of [
      dir.path,
      join(dir.path, 'in'),
      ...fs.readdirSync(join(dir.path, 'in')).map((d) => join(dir.path, 'in', d)),
    ]) {
      fs.chownSync(p, 65534, 65534);
    }
    for (const d of fs.readdirSync(join(dir.path, 'in'))) {
      for (const e of fs.readdirSync(join(dir.path, 'in', d))) {
        if (join(dir.path, 'in', d, e) !== unreadable) fs.chownSync(join(dir.path, 'in', d, e), 65534, 65534);
      }
    }
    fs.chmodSync(dir.path, 0o755);
    const r = asNobody(['--incoming-queue', q('in'), '--outgoing-queue', q('out'), '--dead-letter-queue', q('dlq'), '--remove']);
    const err = r.stderr.toString('utf8');
    expect(r.status).toBe(0);
    expect(bodies(await readAll(join(dir.path, 'out'), 'DQS'))).toEqual(sent);
    // link() is EPERM (fs.protected_hardlinks) or open() EACCES, depending on the host's setting: either is named.
    expect(err).toMatch(/element cannot be locked or read: skipped.*(EPERM|EACCES)/);
    expect(fs.readFileSync(unreadable, 'utf8')).toBe('private');
    expect(fs.existsSync(join(dir.path, 'dlq')) ? await new DQS(join(dir.path, 'dlq')).count() : 0).toBe(0);
  });
});

describe('stompclt spool faults - spool paths through links', () => {
  test('stompclt spool faults - the same queue by another path (a symlink to it, or to a parent) is refused for input and output', async () => {
    await fill(join(dir.path, 'real'), 1);
    fs.symlinkSync(join(dir.path, 'real'), join(dir.path, 'alias'));
    fs.mkdirSync(join(dir.path, 'links'));
    fs.symlinkSync(dir.path, join(dir.path, 'links', 'up'));
    for (const other of [join(dir.path, 'alias'), join(dir.path, 'links', 'up', 'real')]) {
      for (const role of ['--outgoing-queue', '--dead-letter-queue']) {
        const args = ['--incoming-queue', q('real'), '--outgoing-queue', q('out'), role, `path=${other} type=DQS`];
        const r = stompclt(args, dir.path);
        expectUsageError(r, /is the incoming queue .*: it would feed itself/);
      }
    }
    expect(await new DQS(join(dir.path, 'real')).count()).toBe(1);
  });

  test('stompclt spool faults - the same queue through a bind mount (same device and inode) is refused', () => {
    // A bind mount in a private mount namespace (unshare, as the full-disk tests): realpath cannot see it.
    fs.mkdirSync(join(dir.path, 'real'));
    fs.mkdirSync(join(dir.path, 'bound'));
    const script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"';
    const r = spawnSync(
      'unshare',
      [
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        script,
        'sh',
        join(dir.path, 'real'),
        join(dir.path, 'bound'),
        process.execPath,
        CLI,
        '--incoming-queue',
        q('real'),
        '--outgoing-queue',
        q('bound'),
      ],
      { cwd: dir.path, input: '', env: { ...process.env, STOMPCLT_DEBUG: '' }, timeout: 30000 },
    );
    expect(r.stderr.toString('utf8')).toMatch(/outgoing-queue is the incoming queue .*: it would feed itself/);
    expect(r.status).toBe(2);
  });

  test('stompclt spool faults - a second instance on the same spool through a symlink is refused', async () => {
    await fill(join(dir.path, 'real'), 1);
    fs.symlinkSync(join(dir.path, 'real'), join(dir.path, 'alias'));
    const run = start(['--incoming-queue', q('real'), '--outgoing-queue', q('b'), '--remove', '--loop'], dir.path);
    try {
      await waitFor('first instance', async () => (await readAll(join(dir.path, 'b'), 'DQS')).length === 1);
      const second = stompclt(['--incoming-queue', q('alias'), '--outgoing-queue', q('c'), '--loop'], dir.path);
      expectUsageError(
        second,
        new RegExp(`another stompclt \\(pid ${run.child.pid}\\) is already using .*alias as its incoming queue`),
      );
    } finally {
      run.child.kill('SIGTERM');
    }
    expect((await run.done).status).toBe(0);
  });
});
