import fc from 'fast-check';
import { MessageError } from '../src/errors';
import { Message } from '../src/message';

function onlyMessageErrors(input: Buffer | string): void {
  try {
    Message.deserialize(input);
  } catch (err) {
    if (!(err instanceof MessageError)) throw new Error(`not a MessageError: ${(err as Error)?.stack ?? String(err)}`);
  }
}

const header = fc.dictionary(fc.string({ unit: 'grapheme', maxLength: 8 }), fc.string({ unit: 'grapheme', maxLength: 16 }), {
  maxKeys: 4,
});
const body = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 600 }),
  fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)),
);
const compression = fc.constantFrom(undefined, 'zlib' as const, 'lz4' as const, 'snappy' as const);

describe('message fuzz', () => {
  test('message fuzz - arbitrary bytes never raise anything but a MessageError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (a) => onlyMessageErrors(Buffer.from(a))),
      { numRuns: 3000 },
    );
  });

  test('message fuzz - JSON-shaped garbage never raises anything but a MessageError', () => {
    const field = fc.oneof(
      fc.json(),
      fc.string(),
      fc.constantFrom('base64', 'zlib+base64', 'lz4+base64', 'snappy+base64', 'utf8', 'x'),
    );
    const obj = fc.record(
      { header: fc.oneof(fc.json(), fc.dictionary(fc.string(), fc.string())), body: field, text: fc.json(), encoding: field },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(obj, (o) => onlyMessageErrors(JSON.stringify(o))),
      { numRuns: 3000 },
    );
  });

  test('message fuzz - mutated valid messages never raise anything but a MessageError', () => {
    const valid = fc
      .tuple(header, body, compression)
      .map(([h, b, c]) => new Message({ header: h, body: b }).serialize(c ? { compression: c } : {}));
    fc.assert(
      fc.property(valid, fc.nat(), fc.integer({ min: 0, max: 255 }), (buf, at, byte) => {
        const m = Buffer.from(buf);
        if (m.length > 0) m[at % m.length] = byte;
        onlyMessageErrors(m);
      }),
      { numRuns: 3000 },
    );
  });

  test('message fuzz - serialize then deserialize gives an equal message with the same md5', () => {
    fc.assert(
      fc.property(header, body, compression, (h, b, c) => {
        const m = new Message({ header: h, body: b });
        const back = Message.deserialize(m.serialize(c ? { compression: c } : {}));
        if (m.body.length === 0) {
          // An empty body is not serialized, and with it goes the text flag.
          expect(back.body.length).toBe(0);
        } else {
          expect(back.equals(m)).toBe(true);
          expect(back.md5()).toBe(m.md5());
        }
        expect(back.serialize().every((x) => x < 0x80)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});
