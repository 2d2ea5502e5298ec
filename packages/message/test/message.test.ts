import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { MessageError } from '../src/errors';
import { Message } from '../src/message';

const CORPUS = join(__dirname, 'fixtures', 'compliance');
const s = (m: Message, compression?: 'zlib' | 'lz4' | 'snappy') =>
  m.serialize(compression ? { compression } : {}).toString('latin1');

describe('message model', () => {
  test('message - the compliance corpus: every file deserializes and its md5 is its name', () => {
    const files = fs.readdirSync(CORPUS);
    expect(files).toHaveLength(37);
    for (const f of files) {
      const m = Message.deserialize(fs.readFileSync(join(CORPUS, f)));
      expect([f, m.md5()]).toEqual([f, f.split('.')[0]]);
      // And it survives our own round trip.
      expect(Message.deserialize(m.serialize()).md5()).toBe(m.md5());
    }
  });

  test('message - python-messaging vectors: spacing, key order, text flag, md5 and size', () => {
    const m = new Message({ body: 'hello', header: { subject: 'test', a: 'b' } });
    expect(s(m)).toBe('{"header": {"subject": "test", "a": "b"}, "body": "hello", "text": true}');
    expect(m.md5()).toBe('3cc6def7040ebaf636db9f7bf59e7803');
    expect(m.size()).toBe(23);
  });

  test('message - the empty message is {} and an empty text body loses its flag on the wire', () => {
    expect(s(new Message())).toBe('{}');
    expect(new Message().md5()).toBe('1d9d0faf7130b6c7ff996a8d94f424a0');
    const t = new Message({ body: '' });
    expect(t.text).toBe(true);
    expect(s(t)).toBe('{}');
    expect(t.md5()).not.toBe(new Message().md5());
    expect(Message.deserialize(t.serialize()).md5()).toBe('1d9d0faf7130b6c7ff996a8d94f424a0');
  });

  test('message - binary bodies: printable UTF-8 stays a string, anything else is base64', () => {
    expect(s(new Message({ body: Buffer.from('hello') }))).toBe('{"body": "hello"}');
    expect(s(new Message({ body: Buffer.from([0xe2, 0x82, 0xac]) }))).toBe('{"body": "\\u20ac"}');
    expect(s(new Message({ body: Buffer.from('a\tb') }))).toBe('{"body": "YQli", "encoding": "base64"}');
    expect(s(new Message({ body: Buffer.from([0]) }))).toBe('{"body": "AA==", "encoding": "base64"}');
    expect(s(new Message({ body: Buffer.from([0xff]) }))).toBe('{"body": "/w==", "encoding": "base64"}');
    // U+007F..U+00FF force base64 even when the bytes are valid UTF-8.
    expect(s(new Message({ body: Buffer.from('é', 'utf8') }))).toBe('{"body": "w6k=", "encoding": "base64"}');
    expect(s(new Message({ body: Buffer.from('\u0100', 'utf8') }))).toBe('{"body": "\\u0100"}');
  });

  test('message - ensure_ascii escaping: lowercase \\uXXXX, surrogate pairs, DEL, named escapes', () => {
    const m = new Message({ body: 'é\u{1F600}\x7f"\\/\n\r\t\b\f\x01', header: { ké: 'v\u2028' } });
    expect(s(m)).toBe(
      '{"header": {"k\\u00e9": "v\\u2028"}, "body": "\\u00e9\\ud83d\\ude00\\u007f\\"\\\\/\\n\\r\\t\\b\\f\\u0001", "text": true}',
    );
    expect(Message.deserialize(m.serialize()).equals(m)).toBe(true);
  });

  test('message - header keys keep insertion order, integer-like ones too', () => {
    const m = Message.deserialize('{"header": {"b": "1", "10": "x", "a": "2"}}');
    expect(m.headerEntries()).toEqual([
      ['b', '1'],
      ['10', 'x'],
      ['a', '2'],
    ]);
    expect(s(m)).toBe('{"header": {"b": "1", "10": "x", "a": "2"}}');
    expect(
      s(
        new Message({
          header: [
            ['z', '1'],
            ['1', '2'],
          ],
        }),
      ),
    ).toBe('{"header": {"z": "1", "1": "2"}}');
  });

  test('message - compression rule: at least 255 bytes and under 90 %', () => {
    expect(s(new Message({ body: 'a'.repeat(300) }), 'zlib')).toBe(
      '{"body": "eJxLTBwFxAIA2KhxrQ==", "text": true, "encoding": "utf8+zlib+base64"}',
    );
    expect(s(new Message({ body: Buffer.alloc(254, 97) }), 'zlib')).toBe(`{"body": "${'a'.repeat(254)}"}`);
    expect(s(new Message({ body: 'a'.repeat(254) }), 'zlib')).toBe(`{"body": "${'a'.repeat(254)}", "text": true}`);
    expect(s(new Message({ body: Buffer.alloc(255, 97) }), 'zlib')).toMatch(
      /^\{"body": "eJ[^"]+", "encoding": "zlib\+base64"\}$/,
    );
    const random = randomBytes(1024);
    expect(s(new Message({ body: random }), 'zlib')).toBe(`{"body": "${random.toString('base64')}", "encoding": "base64"}`);
  });

  test('message - every codec round-trips every kind of body', () => {
    const bodies: (string | Buffer)[] = [
      '',
      'text',
      'é☺\u{1F600}',
      Buffer.alloc(0),
      Buffer.from([0, 1, 255]),
      Buffer.from('printable'),
    ];
    for (const n of [254, 255, 1024, 100 * 1024]) {
      bodies.push(
        'x'.repeat(n),
        'é'.repeat(n / 2),
        Buffer.alloc(n, 0),
        Buffer.from(Array.from({ length: n }, (_, i) => (i * 31) % 256)),
      );
    }
    for (const compression of [undefined, 'zlib', 'lz4', 'snappy'] as const) {
      for (const body of bodies) {
        const m = new Message({ body, header: { h: 'v', é: '\t\n' } });
        const back = Message.deserialize(m.serialize(compression ? { compression } : {}));
        if (m.body.length === 0) expect(back.body.length).toBe(0);
        else expect(back.equals(m)).toBe(true);
      }
    }
  });

  test('message - reads Perl forms: compact, raw UTF-8, sorted tokens, pretty-printed, empty encoding', () => {
    const raw = Buffer.from('{"text":1,"body":"Déjà Vu ☺","header":{"k":"é"}}', 'utf8');
    const m = Message.deserialize(raw);
    expect(m.text).toBe(true);
    expect(m.body).toBe('Déjà Vu ☺');
    expect(m.header).toEqual({ k: 'é' });
    const z = new Message({ body: 'b'.repeat(400) }).serialize({ compression: 'zlib' }).toString();
    const sorted = z.replace('utf8+zlib+base64', 'base64+utf8+zlib');
    expect(Message.deserialize(sorted).body).toBe('b'.repeat(400));
    expect(Message.deserialize('{\n  "body" : "x",\n  "encoding" : ""\n}\n').body).toEqual(Buffer.from('x'));
    expect(Message.deserialize('{"body": "aGk=\\n", "encoding": "base64"}').body).toEqual(Buffer.from('hi'));
  });

  test('message - size counts characters of text and bytes of binary', () => {
    expect(new Message({ body: 'é☺', header: { ké: 'v' } }).size()).toBe(2 + 1 + 2 + 1 + 2);
    expect(new Message({ body: Buffer.from('é☺') }).size()).toBe(5 + 1);
    expect(new Message({ body: '\u{1F600}' }).size()).toBe(2);
  });

  test('message - text and binary conversions in the constructor', () => {
    expect(new Message({ body: Buffer.from('é'), text: true }).body).toBe('é');
    expect(new Message({ body: 'é', text: false }).body).toEqual(Buffer.from('é'));
    expect(() => new Message({ body: Buffer.from([0xff]), text: true })).toThrow(MessageError);
    expect(() => new Message({ header: { a: 1 as unknown as string } })).toThrow(/must be strings/);
    expect(() => new Message({ body: 42 as unknown as string })).toThrow(MessageError);
    const m = new Message({ body: 'x', header: { a: 'b' } });
    expect(m.with({ body: Buffer.from('y') }).text).toBe(false);
    expect(m.with({ header: { c: 'd' } }).equals(new Message({ body: 'x', header: { c: 'd' } }))).toBe(true);
  });

  test.each([
    ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), 'ERR_MESSAGE_UTF8'],
    ['invalid JSON', '{"body": ', 'ERR_MESSAGE_JSON'],
    ['trailing data', '{} {}', 'ERR_MESSAGE_JSON'],
    ['not an object', '[1]', 'ERR_MESSAGE_INVALID'],
    ['header not an object', '{"header": "x"}', 'ERR_MESSAGE_INVALID'],
    ['header value not a string', '{"header": {"a": 1}}', 'ERR_MESSAGE_INVALID'],
    ['body not a string', '{"body": 1}', 'ERR_MESSAGE_INVALID'],
    ['unknown encoding token', '{"body": "x", "encoding": "rot13"}', 'ERR_MESSAGE_ENCODING'],
    ['encoding not a string', '{"body": "x", "encoding": 1}', 'ERR_MESSAGE_ENCODING'],
    ['bad base64', '{"body": "abcde", "encoding": "base64"}', 'ERR_MESSAGE_BASE64'],
    ['missing padding', '{"body": "ab", "encoding": "base64"}', 'ERR_MESSAGE_BASE64'],
    ['non-ASCII base64', '{"body": "aGk\u00e9", "encoding": "base64"}', 'ERR_MESSAGE_BASE64'],
    ['corrupt zlib', '{"body": "AAAA", "encoding": "zlib+base64"}', 'ERR_MESSAGE_CODEC'],
    ['corrupt lz4', '{"body": "/////wAA", "encoding": "lz4+base64"}', 'ERR_MESSAGE_CODEC'],
    ['corrupt snappy', '{"body": "/////w==", "encoding": "snappy+base64"}', 'ERR_MESSAGE_CODEC'],
    ['text flag on non-UTF-8', '{"body": "/w==", "text": true, "encoding": "base64"}', 'ERR_MESSAGE_UTF8'],
    ['lone surrogate', '{"body": "\\ud800"}', 'ERR_MESSAGE_UTF8'],
  ])('message - bad input: %s is a MessageError', (_what, input, code) => {
    let err: unknown;
    try {
      Message.deserialize(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MessageError);
    expect(err).toMatchObject({ code });
  });

  test('message - unsupported compression is refused', () => {
    expect(() => new Message({ body: 'x' }).serialize({ compression: 'gzip' as 'zlib' })).toThrow(/unsupported compression/);
  });
});
