// The protocol-agnostic part of the broker modules: broker lists (plain, failover:, file:) with a module's own
// server parser and error, and the jittered exponential backoff between connection attempts.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { removeDir, tempDir } from '@msgbricks/test-support';
import { abortableSleep, Backoff, FAILOVER_DEFAULTS, parseBrokerList, shuffle } from '../src';

class TestUriError extends Error {}

/** A toy module: `x://NAME`, the server is its name; `where` kept to check what the lists pass. */
function parseServer(uri: string, where: string): { name: string; where: string } {
  const m = /^x:\/\/(\w+)$/.exec(uri.trim());
  if (m === null) throw new TestUriError(`bad server ${JSON.stringify(uri)}${where}`);
  return { name: m[1] as string, where };
}

const parse = (uri: string) => parseBrokerList(uri, parseServer, (message) => new TestUriError(message));

/** The message of what parse throws, which must be the module's error. */
function failure(uri: string): string {
  try {
    parse(uri);
  } catch (err) {
    expect(err).toBeInstanceOf(TestUriError);
    return (err as Error).message;
  }
  throw new Error(`${uri} parsed`);
}

let dir: string;
beforeEach(() => {
  dir = tempDir('agent-failover-');
});
afterEach(() => removeDir(dir));

function file(name: string, text: string): string {
  const p = join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

test('failover - a plain URI is one server and a single attempt', () => {
  expect(parse('  x://a  ')).toEqual({
    servers: [{ name: 'a', where: '' }],
    randomize: false,
    initialReconnectDelay: 10,
    maxReconnectDelay: 30000,
    backOffMultiplier: 2,
    useExponentialBackOff: true,
    maxReconnectAttempts: 0,
    failover: false,
  });
});

test('failover - a failover: list, in parentheses or not, gets the defaults and says where each server came from', () => {
  const list = parse('failover:(x://a, x://b,,)');
  expect(list).toEqual({
    servers: [{ name: 'a', where: ' in failover:(x://a, x://b,,)' }, expect.anything()],
    ...FAILOVER_DEFAULTS,
  });
  expect(list).toMatchObject({ randomize: true, maxReconnectAttempts: -1, failover: true });
  expect(parse('FAILOVER:x://a,x://b').servers.map((s) => s.name)).toEqual(['a', 'b']);
});

test('failover - options are parsed (percent-decoded), unknown ones ignored', () => {
  expect(
    parse(
      'failover:(x://a)?randomize=no&useExponentialBackOff=0&initialReconnectDelay=5&maxReconnectDelay=7&backOffMultiplier=1.5&maxReconnectAttempts=%33&other=1&',
    ),
  ).toMatchObject({
    randomize: false,
    useExponentialBackOff: false,
    initialReconnectDelay: 5,
    maxReconnectDelay: 7,
    backOffMultiplier: 1.5,
    maxReconnectAttempts: 3,
    failover: true,
  });
  expect(parse('failover:(x://a)?randomize=YES').randomize).toBe(true);
});

test('failover - errors are the module error with the messages of stompclt', () => {
  expect(failure('')).toBe('empty broker URI');
  expect(failure('   ')).toBe('empty broker URI');
  expect(failure('failover:()')).toBe('failover URI "failover:()" lists no broker');
  expect(failure('failover:( , )')).toBe('failover URI "failover:( , )" lists no broker');
  expect(failure('failover:(x://a')).toBe('invalid failover URI "failover:(x://a": expected failover:(uri1,uri2,...)?options');
  expect(failure('failover:(x://a)?randomize=maybe')).toBe('invalid failover option randomize=maybe: expected true or false');
  expect(failure('failover:(x://a)?initialReconnectDelay=')).toBe(
    'invalid failover option initialReconnectDelay=: expected a number >= 0',
  );
  expect(failure('failover:(x://a)?maxReconnectDelay=soon')).toMatch(/maxReconnectDelay=soon: expected a number >= 0/);
  expect(failure('failover:(x://a)?backOffMultiplier=0.5')).toMatch(/expected a number >= 1$/);
  expect(failure('failover:(x://a)?maxReconnectAttempts=-2')).toMatch(/expected a number >= -1$/);
  expect(failure('failover:(x://a,y://b)')).toBe('bad server "y://b" in failover:(x://a,y://b)');
  expect(failure('y://b')).toBe('bad server "y://b"');
});

test('failover - file: with several URIs is a failover list with the defaults; comments and blank lines skipped', () => {
  const p = file('list', '# brokers\nx://a # the first\n\n  x://b\r\n');
  expect(parse(`file:${p}`)).toEqual({
    servers: [
      { name: 'a', where: ` in ${p}` },
      { name: 'b', where: ` in ${p}` },
    ],
    ...FAILOVER_DEFAULTS,
  });
});

test('failover - file: with a single line is that URI, plain or failover', () => {
  expect(parse(`file:${file('plain', 'x://a\n')}`)).toMatchObject({ servers: [{ name: 'a' }], failover: false });
  expect(parse(`file:${file('fo', '# one list\nfailover:(x://a,x://b)?randomize=false\n')}`)).toMatchObject({
    servers: [{ name: 'a' }, { name: 'b' }],
    randomize: false,
    failover: true,
  });
});

test('failover - file: errors: unreadable, empty, a failover line among others, a bad line', () => {
  expect(failure(`file:${join(dir, 'missing')}`)).toMatch(
    new RegExp(`^cannot read broker URI file ${join(dir, 'missing')}: ENOENT`),
  );
  const empty = file('empty', '# nothing\n\n');
  expect(failure(`file:${empty}`)).toBe(`broker URI file ${empty} lists no broker`);
  const mixed = file('mixed', 'x://a\nfailover:(x://b)\n');
  expect(failure(`file:${mixed}`)).toBe(`broker URI file ${mixed}: a failover URI must be alone in the file`);
  const bad = file('bad', 'x://a\ny://b\n');
  expect(failure(`file:${bad}`)).toBe(`bad server "y://b" in ${bad}`);
  // A file naming itself would recurse forever.
  const self = join(dir, 'self');
  fs.writeFileSync(self, `file:${self}\n`);
  expect(failure(`file:${self}`)).toBe(`broker URI file ${self}: a file: URI cannot list another file:`);
});

test('failover - a jittered wait is between 0.5 and 1.5 times the delay, capped at max', () => {
  const random = jest.spyOn(Math, 'random');
  try {
    const b = new Backoff(100, 1000, 2);
    random.mockReturnValue(0);
    expect(b.nextWait()).toBe(50);
    random.mockReturnValue(0.999999);
    expect(b.nextWait()).toBeCloseTo(150, 3);
    random.mockReturnValue(0.5);
    expect(b.nextWait()).toBe(100);
    random.mockReturnValue(0.999999);
    expect(new Backoff(800, 1000, 2).nextWait()).toBe(1000);
  } finally {
    random.mockRestore();
  }
  const b = new Backoff(100, 1000, 2);
  for (let i = 0; i < 1000; i++) {
    const w = b.nextWait();
    expect(w).toBeGreaterThanOrEqual(50);
    expect(w).toBeLessThan(150);
  }
});

test('failover - the delay grows by the multiplier, capped at max; the wait does not change it', () => {
  const b = new Backoff(10, 100, 3);
  const seen: number[] = [];
  for (let i = 0; i < 5; i++) {
    b.nextWait();
    seen.push(b.current);
    b.grow();
  }
  expect(seen).toEqual([10, 30, 90, 100, 100]);
  const flat = new Backoff(10, 100, 1);
  flat.grow();
  expect(flat.current).toBe(10);
});

test('failover - Backoff.of takes max and multiplier from the reconnect options, else from the URI', () => {
  const uri = { ...FAILOVER_DEFAULTS, maxReconnectDelay: 500, backOffMultiplier: 4 };
  expect(Backoff.of(10, uri, undefined)).toMatchObject({ current: 10, max: 500, multiplier: 4 });
  expect(Backoff.of(10, uri, false)).toMatchObject({ max: 500, multiplier: 4 });
  expect(Backoff.of(10, uri, { maxDelay: 50, multiplier: 1.5 })).toMatchObject({ max: 50, multiplier: 1.5 });
  // useExponentialBackOff=false: a constant delay, whatever multiplier is given.
  expect(Backoff.of(10, { ...uri, useExponentialBackOff: false }, { multiplier: 3 })).toMatchObject({ multiplier: 1 });
});

test('failover - abortable sleep returns early on abort, at once when already aborted', async () => {
  const abort = new AbortController();
  let t = performance.now();
  const sleeping = abortableSleep(10_000, abort.signal);
  setTimeout(() => abort.abort(), 20);
  await sleeping;
  expect(performance.now() - t).toBeLessThan(5000);
  t = performance.now();
  await abortableSleep(10_000, abort.signal);
  expect(performance.now() - t).toBeLessThan(1000);
  t = performance.now();
  await abortableSleep(30);
  expect(performance.now() - t).toBeGreaterThanOrEqual(25);
});

test('failover - shuffle returns a permutation and leaves the list alone', () => {
  const list = Object.freeze([1, 2, 3, 4, 5, 6, 7, 8]);
  const orders = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const s = shuffle(list);
    expect([...s].sort()).toEqual([...list]);
    orders.add(s.join());
  }
  expect(list).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  expect(orders.size).toBeGreaterThan(1);
});
