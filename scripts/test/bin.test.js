// Commands on the PATH after `npm ci` (docs/decisions.md, "Commands on the PATH"). npm links a workspace's commands
// into node_modules/.bin while it installs, before `prepare` builds dist/, and skips a command whose file does not
// exist yet. So a command's file must be in git: on a fresh clone only committed files exist at link time.
//
// Honest on the tree it runs in: CI runs it right after `npm ci` on a clean clone (.ci/run), and the links it checks
// are npm's, made by that install; nothing here makes a link. A link npm made in another way (an `npm install` after
// a build, with `bin` pointing into dist/) resolves to a file git does not track, and fails here.

const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { root, commands } = require('../workspaces.js');

jest.setTimeout(60_000);

/** git's index entries under the repository: path -> mode ('100755' for an executable file). */
function gitModes() {
  const out = execFileSync('git', ['ls-files', '--stage', '-z'], { cwd: root, encoding: 'utf8' });
  const modes = new Map();
  for (const entry of out.split('\0')) {
    const m = /^(\d+) [0-9a-f]+ \d+\t(.*)$/s.exec(entry);
    if (m) modes.set(m[2], m[1]);
  }
  return modes;
}

const all = commands();

describe('commands', () => {
  test('commands - the four commands are declared (and every other workspace command is checked below)', () => {
    expect(all.map((c) => c.command)).toEqual(expect.arrayContaining(['dirq', 'msggen', 'stompclt', 'amqpclt']));
  });

  test.each(all)('commands - $command: its file ($dir/$target) is committed, executable, outside dist/', ({ dir, target }) => {
    const file = path.posix.join(dir, path.posix.normalize(target));
    expect(file.startsWith(`${dir}/`)).toBe(true);
    expect(file).not.toMatch(/\/dist\//);
    expect(gitModes().get(file)).toBe('100755');
    // The shebang makes it runnable through the link; the exec bit in git makes it runnable at all.
    expect(fs.readFileSync(path.join(root, file), 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
  });

  test.each(all)(
    'commands - $command: node_modules/.bin links it, and `--help` through the link exits 0',
    ({ command, dir, target }) => {
      const link = path.join(root, 'node_modules', '.bin', command);
      expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
      expect(fs.realpathSync(link)).toBe(fs.realpathSync(path.join(root, dir, target)));
      const r = spawnSync(link, ['--help'], { cwd: root, encoding: 'utf8', timeout: 30_000 });
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
      expect(r.stdout).toMatch(new RegExp(`\\b${command}\\b`));
    },
  );

  test('commands - `npx stompclt --help` from the repository runs the linked command, without the registry', () => {
    // --offline: were the link missing, npx would look for a package called stompclt on the registry; here it fails.
    const r = spawnSync('npx', ['--offline', 'stompclt', '--help'], { cwd: root, encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: stompclt /);
  });
});
