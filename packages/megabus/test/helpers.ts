import * as fs from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '@msgbricks/config-general';

/** Writes `text` to `name` under the directory `dir.path` (made as needed); returns the file's path. */
export function writer(dir: { readonly path: string }): (name: string, text: string) => string {
  return (name, text) => {
    const file = join(dir.path, name);
    fs.mkdirSync(join(file, '..'), { recursive: true });
    fs.writeFileSync(file, text);
    return file;
  };
}

/** The lines of the ConfigError `fn` throws (it must throw one). */
export function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message.split('\n');
  }
  throw new Error('no ConfigError');
}
