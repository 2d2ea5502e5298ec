// amqpclt --filter between spools (filter.interop.test.ts has it against a broker).
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQS } from '@msgbricks/message';
import { checkBuilt, expectOk, fillSamples, readAll, run, tempDir } from './helpers';

jest.setTimeout(300_000);

let tmp: string;

beforeAll(() => {
  checkBuilt();
  tmp = tempDir();
});

afterAll(async () => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const statistics = (out: string) => /^sent: (\d+), dropped: (\d+), filtered: (\d+), /m.exec(out)?.slice(1).map(Number);
// sample(i): kind is 'text' for even i, 'bin' for odd; seq is i.
const SELECTOR = "kind = 'text' AND seq < 10";

test('amqpclt filter - between spools: what the selector does not select is consumed and counted', async () => {
  const a = join(tmp, 'a');
  const b = join(tmp, 'b');
  await fillSamples(a, 30, '/queue/x');
  const r = await run(
    ['--incoming-queue', `path=${a}`, '--outgoing-queue', `path=${b}`, '--remove', '--filter', SELECTOR, '-s'],
    tmp,
  );
  expectOk(r);
  expect((await readAll(b, 'DQS')).map((m) => m.header.seq).sort()).toEqual(['0', '2', '4', '6', '8']);
  expect(statistics(r.out)).toEqual([5, 0, 25]);
  expect(await new DQS(a).count()).toBe(0);
});

test('amqpclt filter - an invalid selector: exit 2 with the position', async () => {
  const r = await run(
    ['--incoming-queue', `path=${join(tmp, 'a')}`, '--outgoing-queue', `path=${join(tmp, 'b')}`, '--filter', 'seq <'],
    tmp,
  );
  expect(r.status).toBe(2);
  expect(r.err).toMatch(/^amqpclt: command line: --filter: invalid selector at column 6: expected /m);
  expect(r.err).not.toMatch(/\n\s+at /);
});
