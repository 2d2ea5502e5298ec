import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { useTempDir } from '@msgbricks/test-support';
import { alive, processIdentity } from '../src/proc';

describe('supervisor proc', () => {
  const tmp = useTempDir('proc-');

  test('supervisor proc - a live process whose command name holds ") Z" is alive, and not once it is gone', async () => {
    // /proc/PID/stat shows the executable's name in parentheses: a name with ") Z" once read as a zombie's state.
    const exe = join(tmp.path, 'a) Z b');
    fs.copyFileSync('/bin/sleep', exe);
    fs.chmodSync(exe, 0o755);
    const child = spawn(exe, ['30'], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const pid = child.pid as number;
      expect(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')).toContain('(a) Z b)');
      expect(alive(pid)).toBe(true);
      expect(processIdentity(pid)).toBeDefined();
    } finally {
      child.kill('SIGKILL');
    }
    await exited;
    expect(alive(child.pid as number)).toBe(false);
  });
});
