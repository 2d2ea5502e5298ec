import { RejectedError } from '@msgbricks/agent';
import { amqpToMessage, isTextContentType, messageToAmqp } from '@msgbricks/amqp';
import { Message } from '@msgbricks/message';
import { type Message as RheaMessage, message as rheaMessage } from 'rhea';

/** Through the wire format: encode with rhea, decode with rhea, as a broker hop would. */
function wire(m: RheaMessage): RheaMessage {
  return rheaMessage.decode(rheaMessage.encode(m)) as unknown as RheaMessage;
}

const roundTrip = (m: Message, persistent?: boolean) => amqpToMessage(wire(messageToAmqp(m, { persistent })));

test('amqp mapping - text bodies round trip as one UTF-8 data section with a text content-type', () => {
  for (const body of ['hello', '', 'NUL\0inside\0', 'Déjà vu ☺ 𝄞 日本語', 'x'.repeat(100_000)]) {
    const m = new Message({ header: { a: '1' }, body });
    const amqp = messageToAmqp(m);
    const section = amqp.body as { typecode: number; content: Buffer };
    expect(section.typecode).toBe(0x75);
    expect(section.content).toEqual(Buffer.from(body, 'utf8'));
    expect(amqp.content_type).toBe('text/plain; charset=UTF-8');
    const back = roundTrip(m);
    expect(back.text).toBe(true);
    expect(back.body).toBe(body);
    expect(back.header).toEqual({ a: '1', 'content-type': 'text/plain; charset=UTF-8', persistent: 'true' });
  }
});

test('amqp mapping - binary bodies round trip byte for byte (NUL, 0xff, empty, invalid UTF-8)', () => {
  const bodies = [Buffer.from([0, 255, 0, 10, 13, 0xfe, 0]), Buffer.alloc(0), Buffer.from([0xc3, 0x28]), Buffer.alloc(70_000, 7)];
  for (const body of bodies) {
    const back = roundTrip(new Message({ header: { kind: 'bin' }, body }));
    expect(back.text).toBe(false);
    expect(back.body).toEqual(body);
    expect(back.header).toEqual({ kind: 'bin', persistent: 'true' });
  }
  // A text content-type with bytes that are not UTF-8 stays binary rather than fail.
  const odd = amqpToMessage(
    wire({ body: rheaMessage.data_section(Buffer.from([0xff, 0xfe])), content_type: 'text/plain; charset=UTF-8' }),
  );
  expect(odd.text).toBe(false);
  expect(odd.body).toEqual(Buffer.from([0xff, 0xfe]));
});

test('amqp mapping - well-known headers to AMQP header and properties, the others to application properties', () => {
  const m = new Message({
    header: [
      ['destination', '/queue/x'],
      ['message-id', 'id-1'],
      ['correlation-id', 'corr'],
      ['reply-to', '/queue/replies'],
      ['subject', 'subj'],
      ['content-type', 'application/json; charset=utf-8'],
      ['content-encoding', 'gzip'],
      ['to', '/queue/to'],
      ['user-id', 'üser'],
      ['priority', '7'],
      ['expiration', '60000'],
      ['x-amqp-creation-time', '1700000000000'],
      ['x-amqp-absolute-expiry-time', '1700000060000'],
      ['x-amqp-group-id', 'g'],
      ['x-amqp-group-sequence', '3'],
      ['x-amqp-reply-to-group-id', 'rg'],
      ['persistent', 'false'],
      ['colour', 'blue'],
      ['ünïcode-name', 'välue'],
      ['empty', ''],
    ],
    body: '{"a":1}',
  });
  const amqp = messageToAmqp(m);
  expect(amqp).toMatchObject({
    message_id: 'id-1',
    correlation_id: 'corr',
    reply_to: '/queue/replies',
    subject: 'subj',
    content_type: 'application/json; charset=utf-8',
    content_encoding: 'gzip',
    to: '/queue/to',
    priority: 7,
    ttl: 60000,
    group_id: 'g',
    group_sequence: 3,
    reply_to_group_id: 'rg',
    durable: false,
  });
  expect(amqp.user_id).toEqual(Buffer.from('üser'));
  expect(amqp.creation_time).toEqual(new Date(1700000000000));
  expect(amqp.application_properties).toEqual({ colour: 'blue', 'ünïcode-name': 'välue', empty: '' });
  const back = amqpToMessage(wire(amqp));
  const want = m.header;
  delete want.destination;
  delete want.persistent;
  expect(back.header).toEqual(want);
  expect(back.body).toBe('{"a":1}');
});

test('amqp mapping - persistent: default from the option (true), the header overrides it', () => {
  const durable = (header: Record<string, string>, persistent?: boolean) =>
    messageToAmqp(new Message({ header, body: 'x' }), { persistent }).durable;
  expect(durable({})).toBe(true);
  expect(durable({}, false)).toBe(false);
  expect(durable({ persistent: 'true' }, false)).toBe(true);
  expect(durable({ persistent: 'FALSE' })).toBe(false);
  expect(durable({ persistent: 'maybe' }, false)).toBe(false);
  expect(roundTrip(new Message({ header: { persistent: 'false' }, body: 'x' })).getHeader('persistent')).toBeUndefined();
});

test('amqp mapping - values that do not fit their AMQP field stay application properties', () => {
  const amqp = messageToAmqp(
    new Message({
      header: { priority: 'high', expiration: '-1', 'x-amqp-group-sequence': '99999999999', 'x-amqp-creation-time': 'now' },
      body: 'x',
    }),
  );
  expect(amqp.priority).toBeUndefined();
  expect(amqp.ttl).toBeUndefined();
  expect(amqp.application_properties).toEqual({
    priority: 'high',
    expiration: '-1',
    'x-amqp-group-sequence': '99999999999',
    'x-amqp-creation-time': 'now',
  });
  expect(messageToAmqp(new Message({ header: { priority: '256' }, body: 'x' })).application_properties).toEqual({
    priority: '256',
  });
});

test('amqp mapping - a text body with a binary content-type and the reverse are refused (RejectedError)', () => {
  expect(() => messageToAmqp(new Message({ header: { 'content-type': 'application/octet-stream' }, body: 'text' }))).toThrow(
    RejectedError,
  );
  expect(() => messageToAmqp(new Message({ header: { 'content-type': 'text/plain' }, body: Buffer.from('b') }))).toThrow(
    /a binary body with the text content-type/,
  );
  expect(messageToAmqp(new Message({ header: { 'content-type': 'text/csv' }, body: 'a,b' })).content_type).toBe('text/csv');
  expect(isTextContentType('text/plain')).toBe(true);
  expect(isTextContentType('application/xml; charset=UTF-8')).toBe(true);
  expect(isTextContentType('application/json')).toBe(false);
  expect(isTextContentType(undefined)).toBe(false);
});

test('amqp mapping - received bodies that are not data sections', () => {
  const str = amqpToMessage(wire({ body: 'an amqp-value string' }));
  expect([str.text, str.body, str.getHeader('x-amqp-body-type')]).toEqual([true, 'an amqp-value string', undefined]);
  const bin = amqpToMessage(wire({ body: Buffer.from([1, 0, 2]) }));
  expect([bin.text, bin.body]).toEqual([false, Buffer.from([1, 0, 2])]);
  const map = amqpToMessage(wire({ body: { n: 1, list: [true, 'x'], bytes: Buffer.from('hi') } }));
  expect(map.getHeader('x-amqp-body-type')).toBe('amqp-value');
  expect(JSON.parse(map.body as string)).toEqual({ n: 1, list: [true, 'x'], bytes: Buffer.from('hi').toString('base64') });
  const num = amqpToMessage(wire({ body: 42 }));
  expect([num.body, num.getHeader('x-amqp-body-type')]).toEqual(['42', 'amqp-value']);
  const seq = amqpToMessage(wire({ body: rheaMessage.sequence_section([1, 'two']) }));
  expect([seq.body, seq.getHeader('x-amqp-body-type')]).toEqual(['[[1,"two"]]', 'amqp-sequence']);
  const multi = amqpToMessage(wire({ body: rheaMessage.data_sections([Buffer.from('ab'), Buffer.from('cd')]) }));
  expect(multi.body).toEqual(Buffer.from('abcd'));
  // No body section at all (rhea itself always writes one: an absent body goes out as an amqp-value null).
  const none = amqpToMessage({ subject: 's' } as RheaMessage);
  expect([none.body, none.header]).toEqual([Buffer.alloc(0), { subject: 's' }]);
  const nul = amqpToMessage(wire({ body: undefined, subject: 's' }));
  expect([nul.body, nul.header]).toEqual(['null', { subject: 's', 'x-amqp-body-type': 'amqp-value' }]);
});

test('amqp mapping - received ids, application property types and redeliveries as header text', () => {
  const uuid = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
  const m = amqpToMessage({
    body: rheaMessage.data_section(Buffer.from('x')),
    message_id: 12345,
    correlation_id: uuid,
    delivery_count: 2,
    durable: true,
    application_properties: {
      n: 1.5,
      yes: true,
      when: new Date(0),
      raw: Buffer.from([1, 2]),
      nothing: null,
      'message-id': 'shadowed',
    },
  } as unknown as RheaMessage);
  expect(m.header).toEqual({
    n: '1.5',
    yes: 'true',
    when: '1970-01-01T00:00:00.000Z',
    raw: 'AQI=',
    'message-id': '12345',
    'correlation-id': '01234567-89ab-cdef-0123-456789abcdef',
    persistent: 'true',
    'x-amqp-delivery-count': '2',
  });
  // Headers that describe a delivery are not sent on to the next broker.
  const next = messageToAmqp(m.with({ header: { ...m.header, 'x-amqp-body-type': 'amqp-value' } }));
  expect(next.application_properties).toEqual({ n: '1.5', yes: 'true', when: '1970-01-01T00:00:00.000Z', raw: 'AQI=' });
  expect(next.delivery_count).toBeUndefined();
});
