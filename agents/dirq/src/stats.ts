import * as fs from 'node:fs';
import { join } from 'node:path';
import type { QueueType } from './open';
import { Progress } from './progress';

const DIR_RE = /^[0-9a-f]{8}$/;
const ELT_RE = /^[0-9a-f]{14}$/;
const FIELD_RE = /^[0-9a-zA-Z]+$/;

export interface Stats {
  type: QueueType;
  elements: number;
  locked: number;
  /** Simple: `.tmp` files; normal: element directories under temporary/. */
  temporary: number;
  /** Normal queues only: element directories under obsolete/ (being removed). */
  obsolete?: number;
  directories: number;
  /** Sum of the element files' sizes (all field files for a normal queue). */
  bytes: number;
  /** By creation time, which the element name encodes: locking and touch change mtimes, not names. */
  oldest: { name: string; created: string; ageSeconds: number } | null;
}

/** Entries of a directory, or none if it vanished (a purge or remove racing with us). */
function entries(path: string): fs.Dirent[] {
  try {
    return fs.readdirSync(path, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

function sizeOf(path: string): number {
  try {
    return fs.lstatSync(path).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

/** Seconds since the epoch encoded in an element name (8 hex seconds, 5 hex microseconds). */
export function nameTime(elt: string): number {
  return Number.parseInt(elt.slice(0, 8), 16) + Number.parseInt(elt.slice(8, 13), 16) / 1e6;
}

/** The sorted intermediate directories of a queue. */
export function intermediateDirs(path: string): string[] {
  return entries(path)
    .map((e) => e.name)
    .filter((n) => DIR_RE.test(n))
    .sort();
}

/**
 * Walks the queue read-only, one intermediate directory at a time, with the
 * same rules as the library (14-hex names only; `.lck`/`locked` for locks).
 * It reads the directories directly because the library has no API for
 * sizes, lock or temporary counts.
 */
export function queueStats(path: string, type: QueueType): Stats {
  const dirs = intermediateDirs(path);
  const progress = new Progress('stats', dirs.length);
  const s: Stats = { type, elements: 0, locked: 0, temporary: 0, directories: dirs.length, bytes: 0, oldest: null };
  let oldest: { name: string; time: number } | undefined;
  const seen = (name: string, elt: string) => {
    const time = nameTime(elt);
    if (oldest === undefined || time < oldest.time) oldest = { name, time };
  };
  dirs.forEach((dir, i) => {
    const dirPath = join(path, dir);
    for (const e of entries(dirPath)) {
      if (type === 'simple') {
        if (ELT_RE.test(e.name)) {
          s.elements++;
          s.bytes += sizeOf(join(dirPath, e.name));
          seen(`${dir}/${e.name}`, e.name);
        } else if (e.name.endsWith('.lck') && ELT_RE.test(e.name.slice(0, -4))) {
          s.locked++;
        } else if (e.name.endsWith('.tmp')) {
          s.temporary++;
        }
      } else if (ELT_RE.test(e.name)) {
        s.elements++;
        seen(`${dir}/${e.name}`, e.name);
        for (const f of entries(join(dirPath, e.name))) {
          if (f.name === 'locked') s.locked++;
          else if (FIELD_RE.test(f.name)) s.bytes += sizeOf(join(dirPath, e.name, f.name));
        }
      }
    }
    progress.update(i + 1);
  });
  progress.finish();
  if (type === 'normal') {
    s.temporary = entries(join(path, 'temporary')).filter((e) => ELT_RE.test(e.name)).length;
    s.obsolete = entries(join(path, 'obsolete')).filter((e) => ELT_RE.test(e.name)).length;
  }
  if (oldest !== undefined) {
    const age = Math.max(0, Date.now() / 1000 - oldest.time);
    s.oldest = {
      name: oldest.name,
      created: new Date(Math.floor(oldest.time * 1000)).toISOString(),
      ageSeconds: Math.round(age * 1000) / 1000,
    };
  }
  return s;
}
