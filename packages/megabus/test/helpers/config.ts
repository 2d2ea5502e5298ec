import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError } from '@msgbricks/config-general';

/** Writes `text` to `name` under the directory `dir()` gives (a test's temporary directory), returns its path. */
export function writer(dir: () => string): (name: string, text: string) => string {
  return (name, text) => {
    const file = join(dir(), name);
    fs.mkdirSync(dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    return file;
  };
}

/** The problems of the ConfigError `fn` throws, one line each (fails when it throws nothing or something else). */
export function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message.split('\n');
  }
  throw new Error('no ConfigError');
}
