/**
 * on_change: a plugin's actions run only when the watched field changed value for a key (a host's Roger state). The
 * last value of each key is kept in `<state_dir>/<plugin>/on_change.json` and updated only once the actions
 * succeeded: a restart does not fire again for a value already acted on, and a crash in the middle of the actions
 * leaves the old value, so the message (still in the plugin's spool) is acted on again.
 *
 * The file: `{"version":1,"values":{"disk42":"draining",...}}`, replaced whole by write to `on_change.json.tmp`, fsync,
 * rename, fsync of the directory: it is the old or the new one after a crash, never half of one.
 */
import * as fs from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FileSystemError } from '@msgbricks/dirq';
import { StateError } from '../errors';

export const ON_CHANGE_FILE = 'on_change.json';

function stateError(e: FileSystemError): StateError {
  return new StateError('ERR_MEGABUS_STATE', e.message, { cause: e });
}

async function fsyncDir(dir: string): Promise<void> {
  const h = await fs.open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** The persisted last values of one plugin, with changes serialised per key. */
export class ChangeState {
  private readonly values: Map<string, string>;
  /** Per key, the change in progress (a second message for the key waits for it). */
  private readonly busy = new Map<string, Promise<unknown>>();
  /** Writes of the file, one at a time, each with every value known then. */
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    readonly file: string,
    values: Map<string, string>,
  ) {
    this.values = values;
  }

  /** Reads `<dir>/on_change.json` (none yet: no value known). A file that is not ours is an error, not a reset. */
  static async open(dir: string): Promise<ChangeState> {
    const file = join(dir, ON_CHANGE_FILE);
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new ChangeState(file, new Map());
      throw stateError(new FileSystemError('open', file, err));
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new StateError('ERR_MEGABUS_STATE', `${file}: not JSON (${(err as Error).message}); move it away to start afresh`);
    }
    const values = (parsed as { values?: unknown }).values;
    if (values === null || typeof values !== 'object' || Array.isArray(values))
      throw new StateError('ERR_MEGABUS_STATE', `${file}: no "values" object; move it away to start afresh`);
    return new ChangeState(file, new Map(Object.entries(values as Record<string, unknown>).map(([k, v]) => [k, String(v)])));
  }

  /** The last value acted on for `key`. */
  get(key: string): string | undefined {
    return this.values.get(key);
  }

  get size(): number {
    return this.values.size;
  }

  /**
   * Runs `act` unless `value` is the last value of `key`; once it succeeded, `value` is the last value (on disk before
   * this resolves). Resolves true when `act` ran. Messages for one key go one after the other, so two changes of a
   * host never race; different keys go in parallel.
   */
  change(key: string, value: string, act: () => Promise<void>): Promise<boolean> {
    const before = this.busy.get(key) ?? Promise.resolve();
    const run = before
      .catch(() => undefined)
      .then(async () => {
        if (this.values.get(key) === value) return false;
        await act();
        await this.persist(key, value);
        return true;
      });
    this.busy.set(key, run);
    void run
      .catch(() => undefined)
      .finally(() => {
        if (this.busy.get(key) === run) this.busy.delete(key);
      });
    return run;
  }

  /**
   * Writes the file with `key` set to `value`, then sets it in memory: a failed write leaves the old value, so the
   * retry of the message acts again instead of finding it "unchanged" with nothing on disk.
   */
  private persist(key: string, value: string): Promise<void> {
    const p = this.writing
      .catch(() => undefined)
      .then(async () => {
        // Built once the previous write is done: it holds every value written so far, and no value not yet written.
        await this.write(new Map(this.values).set(key, value));
        this.values.set(key, value);
      });
    this.writing = p;
    return p;
  }

  private async write(values: Map<string, string>): Promise<void> {
    const tmp = `${this.file}.tmp`;
    const text = `${JSON.stringify({ version: 1, values: Object.fromEntries(values) })}\n`;
    try {
      // N.B. one writer per plugin (the process holds it; writes go one at a time): a fixed temporary name is safe.
      const h = await fs.open(tmp, 'w', 0o640);
      try {
        await h.writeFile(text);
        await h.sync();
      } finally {
        await h.close();
      }
    } catch (err) {
      throw stateError(new FileSystemError('write', tmp, err));
    }
    try {
      await fs.rename(tmp, this.file);
      await fsyncDir(dirname(this.file));
    } catch (err) {
      throw stateError(new FileSystemError('rename', tmp, err, this.file));
    }
  }
}
