import * as fs from 'node:fs';
import type { PurgeResult } from './base';
import { FileSystemError, QueueError } from './errors';

function unsupported(method: string): never {
  throw new QueueError('ERR_DIRQ_UNSUPPORTED', `unsupported method: ${method}()`);
}

/** A black hole: what is added disappears (python-dirq's QueueNull, Perl's Directory::Queue::Null). */
export class QueueNull implements AsyncIterable<string> {
  readonly path = 'NULL';
  readonly id = 'NULL';

  async add(_data: unknown): Promise<string> {
    return '';
  }

  async addMany(items: Iterable<unknown>): Promise<string[]> {
    return Array.from(items, () => '');
  }

  /** Deletes the file, as python-dirq does. */
  async addPath(file: string): Promise<string> {
    try {
      fs.unlinkSync(file);
    } catch (err) {
      throw new FileSystemError('unlink', file, err);
    }
    return '';
  }

  async count(): Promise<number> {
    return 0;
  }

  async purge(): Promise<PurgeResult> {
    return { removedTemporary: 0, brokenLocks: 0, removedDirectories: 0, warnings: [] };
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<string> {}

  async lock(_name: string): Promise<boolean> {
    return unsupported('lock');
  }
  async unlock(_name: string): Promise<boolean> {
    return unsupported('unlock');
  }
  async get(_name: string): Promise<never> {
    return unsupported('get');
  }
  getPath(_name: string): string {
    return unsupported('getPath');
  }
  async remove(_name: string): Promise<void> {
    return unsupported('remove');
  }
  async touch(_name: string): Promise<void> {
    return unsupported('touch');
  }
}
