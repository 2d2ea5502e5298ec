import { MessageError } from '../src/errors';
import { Generator, type GeneratorOptions } from '../src/generator';
import { Message } from '../src/message';

function many(options: GeneratorOptions, n: number): Message[] {
  const g = new Generator({ seed: 42, ...options });
  return Array.from({ length: n }, () => g.message());
}

function bodyLength(m: Message): number {
  return typeof m.body === 'string' ? Array.from(m.body).length : m.body.length;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function problemsOf(options: unknown): string {
  try {
    new Generator(options as GeneratorOptions);
  } catch (err) {
    expect(err).toBeInstanceOf(MessageError);
    expect((err as MessageError).code).toBe('ERR_MESSAGE_GENERATOR');
    return (err as Error).message;
  }
  throw new Error('no error');
}

describe('message generator - python defaults', () => {
  test('message generator - index bodies count from 0, text, no header', () => {
    const g = new Generator();
    const msgs = [g.message(), g.message(), g.message()];
    expect(msgs.map((m) => m.body)).toEqual(['0', '1', '2']);
    expect(msgs.every((m) => m.text)).toBe(true);
    expect(msgs.every((m) => Object.keys(m.header).length === 0)).toBe(true);
    expect(g.index).toBe(3);
  });

  test('message generator - index ignores body size, size 0 gives an empty binary body (python quirk)', () => {
    expect(many({ bodySize: 100 }, 2).map((m) => m.body)).toEqual(['0', '1']);
    const [m] = many({ bodySize: 0, bodyContent: 'text' }, 1);
    expect(m?.text).toBe(false);
    expect(bodyLength(m as Message)).toBe(0);
  });

  test('message generator - body_content text, binary, base64 have the exact size and python classes', () => {
    for (const size of [1, 7, 1024, 10240]) {
      const [t] = many({ bodyContent: 'text', bodySize: size }, 1);
      const [b] = many({ bodyContent: 'binary', bodySize: size }, 1);
      const [s] = many({ bodyContent: 'base64', bodySize: size }, 1);
      expect(t?.text).toBe(true);
      expect(t?.body).toMatch(/^[0-9a-f]+$/);
      expect(bodyLength(t as Message)).toBe(size);
      expect(b?.text).toBe(false);
      expect(Buffer.isBuffer(b?.body)).toBe(true);
      expect(Buffer.from(b?.body as Uint8Array).toString('latin1')).toMatch(/^[0-9a-f]+$/);
      expect(bodyLength(b as Message)).toBe(size);
      expect(s?.text).toBe(true);
      expect(s?.body).toMatch(/^[A-Za-z0-9+/]+$/);
      expect(bodyLength(s as Message)).toBe(size);
    }
  });

  test('message generator - negative sizes are Irwin-Hall around n, within 0..2n', () => {
    const sizes = many({ bodyContent: 'text', bodySize: -100 }, 2000).map(bodyLength);
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(200);
    expect(Math.abs(mean(sizes) - 100)).toBeLessThan(5);
    // Σ12 U(0,1) has variance 1, so the size's standard deviation is n/6 ≈ 16.7.
    const sd = Math.sqrt(mean(sizes.map((s) => (s - 100) ** 2)));
    expect(sd).toBeGreaterThan(13);
    expect(sd).toBeLessThan(20);
  });

  test('message generator - header names are prefix + base64url, values hex, sizes randomised', () => {
    const msgs = many({ headerCount: 5 }, 200);
    const names: number[] = [];
    const values: number[] = [];
    for (const m of msgs) {
      for (const [k, v] of Object.entries(m.header)) {
        expect(k).toMatch(/^rnd-[A-Za-z0-9_-]*$/);
        expect(v).toMatch(/^[0-9a-f]*$/);
        names.push(k.length - 4);
        values.push(v.length);
      }
    }
    expect(Math.max(...names)).toBeLessThanOrEqual(32);
    expect(Math.max(...values)).toBeLessThanOrEqual(64);
    expect(Math.abs(mean(names) - 16)).toBeLessThan(2);
    expect(Math.abs(mean(values) - 32)).toBeLessThan(3);
  });

  test('message generator - exact header sizes and count, custom prefixes', () => {
    const [m] = many(
      { headerCount: 3, headerNameSize: 20, headerValueSize: 10, headerNamePrefix: 'x-', headerValuePrefix: 'v=' },
      1,
    );
    const entries = Object.entries((m as Message).header);
    expect(entries).toHaveLength(3);
    for (const [k, v] of entries) {
      expect(k).toMatch(/^x-[A-Za-z0-9_-]{20}$/);
      expect(v).toMatch(/^v=[0-9a-f]{10}$/);
    }
  });

  test('message generator - the text option overrides the type python implies', () => {
    const [b] = many({ bodyContent: 'text', bodySize: 10, text: false }, 1);
    expect(b?.text).toBe(false);
    const [t] = many({ bodyContent: 'binary', bodySize: 10, text: 1 }, 1);
    expect(t?.text).toBe(true);
    expect(t?.body).toMatch(/^[0-9a-f]{10}$/);
  });
});

describe('message generator - Perl options', () => {
  test('message generator - entropy classes', () => {
    const gen = (bodyEntropy: GeneratorOptions['bodyEntropy'], text: GeneratorOptions['text'] = 1) =>
      many({ bodyEntropy, text, bodySize: 300 }, 20);
    for (const m of gen(0)) expect(m.body).toMatch(/^([A-Z])\1{299}$/);
    for (const m of gen(1)) expect(m.body).toMatch(/^[0-9a-f]{300}$/);
    for (const m of gen(2)) expect(m.body).toMatch(/^[A-Za-z0-9_-]{300}$/);
    for (const m of gen(3)) expect(m.body).toMatch(/^[\x20-\x7e]{300}$/);
    for (const m of [...gen(4), ...gen('unicode')]) {
      expect(m.text).toBe(true);
      expect(bodyLength(m)).toBe(300);
      expect(m.body).toMatch(/\P{ASCII}/u);
    }
  });

  test('message generator - entropy 4 is random bytes for a binary body', () => {
    const msgs = many({ bodyEntropy: 4, bodySize: 4096 }, 3);
    for (const m of msgs) {
      expect(m.text).toBe(false);
      const body = Buffer.from(m.body as Uint8Array);
      expect(body.length).toBe(4096);
      expect(new Set(body).size).toBeGreaterThan(200);
      // Random bytes are not valid UTF-8 (with overwhelming probability) and so round trip through base64.
      expect(m.serialize().toString()).toMatch(/"encoding": "base64"/);
      expect(Message.deserialize(m.serialize()).equals(m)).toBe(true);
    }
  });

  test('message generator - binary unicode is whole UTF-8 characters of the exact byte size', () => {
    for (const m of many({ bodyEntropy: 'unicode', text: 0, bodySize: 101 }, 20)) {
      const body = Buffer.from(m.body as Uint8Array);
      expect(body.length).toBe(101);
      expect(new TextDecoder('utf-8', { fatal: true }).decode(body)).not.toContain('\ufffd');
    }
  });

  test('message generator - Perl defaults: empty binary body when only the entropy is given', () => {
    const [m] = many({ bodyEntropy: 1 }, 1);
    expect(m?.text).toBe(false);
    expect(bodyLength(m as Message)).toBe(0);
  });

  test('message generator - X-Y is uniform within bounds, X^Y normal within bounds', () => {
    const uni = many({ bodyEntropy: 1, bodySize: '10-20' }, 1100).map(bodyLength);
    expect(Math.min(...uni)).toBe(10);
    expect(Math.max(...uni)).toBe(20);
    for (let v = 10; v <= 20; v++) expect(uni.filter((x) => x === v).length).toBeGreaterThan(50);
    const nor = many({ bodyEntropy: 1, bodySize: '100^200' }, 2000).map(bodyLength);
    expect(Math.min(...nor)).toBeGreaterThanOrEqual(100);
    expect(Math.max(...nor)).toBeLessThanOrEqual(200);
    expect(Math.abs(mean(nor) - 150.5)).toBeLessThan(3);
    // Concentrated in the middle, unlike the uniform distribution.
    expect(nor.filter((x) => x < 125 || x > 176).length).toBeLessThan(100);
  });

  test("message generator - text '0-1' mixes text and binary bodies", () => {
    const msgs = many({ text: '0-1', bodyEntropy: 3, bodySize: 10 }, 200);
    const texts = msgs.filter((m) => m.text).length;
    expect(texts).toBeGreaterThan(60);
    expect(texts).toBeLessThan(140);
  });

  test('message generator - entropy ranges and unicode headers', () => {
    const msgs = many(
      { headerCount: '2-6', headerNameSize: '10-20', headerNameEntropy: '1-2', headerValueSize: 8, headerValueEntropy: 4 },
      100,
    );
    for (const m of msgs) {
      const entries = Object.entries(m.header);
      expect(entries.length).toBeGreaterThanOrEqual(2);
      expect(entries.length).toBeLessThanOrEqual(6);
      for (const [k, v] of entries) {
        expect(k).toMatch(/^rnd-[A-Za-z0-9_-]{10,20}$/);
        expect(Array.from(v)).toHaveLength(8);
      }
    }
  });
});

describe('message generator - seeds and round trips', () => {
  test('message generator - the same seed gives the same messages, another seed others', () => {
    const opts: GeneratorOptions = { bodyEntropy: '0-4', text: '0-1', bodySize: '0-200', headerCount: -3 };
    const a = many({ ...opts, seed: 'x' }, 20).map((m) => m.serialize().toString('base64'));
    const b = many({ ...opts, seed: 'x' }, 20).map((m) => m.serialize().toString('base64'));
    const c = many({ ...opts, seed: 'y' }, 20).map((m) => m.serialize().toString('base64'));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  test('message generator - every kind of generated message survives serialize/deserialize', () => {
    const g = new Generator({
      seed: 7,
      bodyEntropy: '0-4',
      text: '0-1',
      bodySize: '1^3000',
      headerCount: '0-4',
      headerValueEntropy: '0-4',
    });
    for (let i = 0; i < 100; i++) {
      const m = g.message();
      for (const compression of [undefined, 'zlib'] as const) {
        const back = Message.deserialize(m.serialize(compression === undefined ? {} : { compression }));
        expect(back.md5()).toBe(m.md5());
      }
    }
  });

  test('message generator - fromKeywords maps python and Perl names', () => {
    expect(Generator.fromKeywords({ body_content: 'text', body_size: 5, header_count: 2, header_name_prefix: 'p-' })).toEqual({
      bodyContent: 'text',
      bodySize: 5,
      headerCount: 2,
      headerNamePrefix: 'p-',
    });
    expect(Generator.fromKeywords({ 'body-length': '1-2', 'body-entropy': 3, 'header-value-length': 4, text: '0-1' })).toEqual({
      bodySize: '1-2',
      bodyEntropy: 3,
      headerValueSize: 4,
      text: '0-1',
    });
  });
});

describe('message generator - errors', () => {
  test('message generator - every problem is reported at once', () => {
    const msg = problemsOf({
      bodyContent: 'json',
      bodySize: 'lots',
      headerCount: 1.5,
      headerNameEntropy: 5,
      headerValueEntropy: 'chaos',
      text: 2,
      seed: {},
      bogus: 1,
    });
    for (const part of [
      'bodyContent',
      'bodySize',
      'headerCount',
      'headerNameEntropy',
      'headerValueEntropy',
      'text',
      'seed',
      'bogus',
    ]) {
      expect(msg).toContain(part);
    }
    expect(msg.split('; ')).toHaveLength(8);
  });

  test('message generator - ranges, sizes and exclusive options are checked', () => {
    expect(problemsOf({ bodySize: '9-3' })).toMatch(/bodySize: X must not exceed Y/);
    expect(problemsOf({ bodySize: 2 ** 31 })).toMatch(/bodySize: at most/);
    expect(problemsOf({ bodySize: -(2 ** 30) })).toMatch(/bodySize: at most/);
    expect(problemsOf({ bodyContent: 'text', bodyEntropy: 1 })).toMatch(/one or the other/);
    expect(problemsOf({ body_size: 3 })).toMatch(/body_size: unknown option \(did you mean bodySize\?\)/);
    expect(problemsOf({ headerNamePrefix: 3 })).toMatch(/headerNamePrefix: expected a string/);
  });

  test('message generator - fromKeywords reports an option given twice along with the rest', () => {
    expect(() => Generator.fromKeywords({ body_size: 1, 'body-length': 2, header_count: 'x' })).toThrow(
      /bodySize: given twice \(body_size and body-length\); headerCount/,
    );
  });
});
