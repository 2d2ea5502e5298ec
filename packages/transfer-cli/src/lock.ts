/**
 * One instance per spool and role (docs/stompclt.md "Process control"): a proper-lockfile lock
 * `<spool>.<program>.<role>.lock` beside the queue, refreshed while the instance runs, plus a
 * `<spool>.<program>.<role>.owner` file with the holder's pid so that the lock of a dead instance
 * (SIGKILL, crash) is broken at once instead of after the stale delay.
 */
import * as fs from 'node:fs';
import * as lockfile from 'proper-lockfile';
import { AlreadyRunningError } from './errors';
import { canonicalPath } from './paths';
import { program } from './program';

/** Milliseconds after which a lock not refreshed is stale (another host, or an owner file lost). */
const STALE_MS = 10_000;

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readPid(file: string): number | undefined {
  try {
    const n = Number.parseInt(fs.readFileSync(file, 'utf8').split('\n')[0] ?? '', 10);
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

export interface SpoolLock {
  readonly lockPath: string;
  release(): Promise<void>;
}

/**
 * Takes the lock of `spool` in `role` or throws AlreadyRunningError naming the holder's pid.
 * `onCompromised` is called if the lock is lost while held (its directory removed or not refreshable).
 */
export async function lockSpool(spool: string, role: string, onCompromised: (err: Error) => void): Promise<SpoolLock> {
  // Links resolved: the same spool by another path is the same instance.
  const target = `${canonicalPath(spool)}.${program().name}.${role}`;
  const lockPath = `${target}.lock`;
  const ownerPath = `${target}.owner`;
  const take = () => lockfile.lock(target, { realpath: false, lockfilePath: lockPath, stale: STALE_MS, onCompromised });
  let release: () => Promise<void>;
  try {
    release = await take();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
    const owner = readPid(ownerPath);
    if (owner === undefined || isAlive(owner)) {
      const who = owner === undefined ? `another ${program().name}` : `another ${program().name} (pid ${owner})`;
      throw new AlreadyRunningError(`${who} is already using ${spool} as its ${role} queue (lock ${lockPath})`);
    }
    // The holder died without releasing: its lock is broken now, not STALE_MS later.
    fs.rmSync(lockPath, { recursive: true, force: true });
    try {
      release = await take();
    } catch (again) {
      if ((again as NodeJS.ErrnoException).code !== 'ELOCKED') throw again;
      throw new AlreadyRunningError(
        `another ${program().name} is already using ${spool} as its ${role} queue (lock ${lockPath})`,
      );
    }
  }
  try {
    fs.writeFileSync(ownerPath, `${process.pid}\n`);
  } catch (err) {
    // A full file system must not keep the agent from draining the spool that fills it: without the owner file
    // the next instance only waits for this lock to go stale (STALE_MS) instead of breaking it at once.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOSPC' && code !== 'EDQUOT') throw err;
    fs.rmSync(ownerPath, { force: true });
  }
  return {
    lockPath,
    async release() {
      if (readPid(ownerPath) === process.pid) fs.rmSync(ownerPath, { force: true });
      await release().catch(() => undefined);
    },
  };
}
