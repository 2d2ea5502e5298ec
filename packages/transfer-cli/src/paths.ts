/**
 * Spool paths compared as the file system sees them: a spool named through a symbolic link (or a bind mount) is the
 * same spool, for the "same queue for input and output" and single-instance guards.
 */
import * as fs from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

/** The path with every symbolic link resolved; for a path that does not exist yet, its nearest existing parent's. */
export function canonicalPath(path: string): string {
  const abs = resolve(path);
  try {
    return fs.realpathSync(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return abs;
    const parent = dirname(abs);
    return parent === abs ? abs : join(canonicalPath(parent), basename(abs));
  }
}

/** Whether two paths name the same directory: the same canonical path, or the same device and inode (bind mounts). */
export function sameDirectory(a: string, b: string): boolean {
  if (canonicalPath(a) === canonicalPath(b)) return true;
  try {
    const sa = fs.statSync(a);
    const sb = fs.statSync(b);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return false;
  }
}
