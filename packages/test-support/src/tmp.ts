import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';

/**
 * Temporary directories for tests: every suite builds its fixtures in fresh ones (under os.tmpdir()) and removes
 * them after. `useTempDir` registers the jest hooks; the others are for directories with another lifetime.
 */

/** A fresh temporary directory; remove it with removeDir. */
export function tempDir(prefix = 'msgbricks-test-'): string {
  return fs.mkdtempSync(join(os.tmpdir(), prefix));
}

export function removeDir(dir: string | undefined): void {
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * For a test file or describe block: each test gets a fresh temporary directory (`dir.path`, set by beforeEach),
 * removed after it (afterEach).
 */
export function useTempDir(prefix?: string): { readonly path: string } {
  const dir = { path: '' };
  beforeEach(() => {
    dir.path = tempDir(prefix);
  });
  afterEach(() => removeDir(dir.path));
  return dir;
}

/** Every file and directory under `root`, relative, sorted, directories with a trailing slash: the raw layout a test asserts on. */
export function layout(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(join(root, rel), { withFileTypes: true })) {
      const p = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        out.push(`${p}/`);
        walk(p);
      } else out.push(p);
    }
  };
  walk('');
  return out.sort();
}

/** Sets a file's or directory's mtime `seconds` into the past. */
export function backdate(path: string, seconds: number): void {
  const t = Date.now() / 1000 - seconds;
  fs.utimesSync(path, t, t);
}
