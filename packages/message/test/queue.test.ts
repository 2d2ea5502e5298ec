// Message queues (spec §5.3): python-messaging's DQS, DQN and NULL wrappers, and the queue spec parser.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidOptionError, NotLockedError, Queue, QueueError, QueueSimple } from '@msgbricks/dirq';
import { MessageError } from '../src/errors';
import { Message } from '../src/message';
import { DQN, DQS, MessageQueueNull, newMessageQueue, parseQueueSpec } from '../src/queue';
import { complianceFiles, layout, removeDir, tempDir } from './helpers/queue';

let dir: string;

beforeEach(() => {
  dir = tempDir();
});

afterEach(() => {
  removeDir(dir);
});

const DQN_SCHEMA = { header: 'table', binary: 'binary?', text: 'string?' };

function elementFiles(q: DQN, name: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const f of fs.readdirSync(q.getPath(name)).sort()) {
    const p = path.join(q.getPath(name), f);
    if (fs.statSync(p).isFile()) out[f] = fs.readFileSync(p);
  }
  return out;
}

describe('message queue - compliance files', () => {
  const files = complianceFiles();

  test('message queue - the 37 compliance files are there', () => {
    expect(files).toHaveLength(37);
  });

  for (const compression of [undefined, 'zlib'] as const) {
    test(`message queue - every compliance message through DQS (compression ${compression ?? 'none'})`, async () => {
      const q = new DQS(path.join(dir, 'dqs'), compression === undefined ? {} : { compression });
      for (const { file, md5, bytes } of files) {
        const msg = Message.deserialize(bytes);
        expect([file, msg.md5()]).toEqual([file, md5]);
        const name = await q.addMessage(msg);
        // The element file is exactly the serialized bytes, nothing else.
        expect(
          fs.readFileSync(path.join(q.path, name)).equals(msg.serialize(compression === undefined ? {} : { compression })),
        ).toBe(true);
        expect(await q.lock(name)).toBe(true);
        const got = await q.getMessage(name);
        expect([file, got.md5()]).toEqual([file, md5]);
        expect(got.equals(msg)).toBe(true);
        await q.unlock(name);
        const again = await q.dequeueMessage(name);
        expect([file, again.md5()]).toEqual([file, md5]);
        expect(fs.existsSync(path.join(q.path, name))).toBe(false);
        expect(fs.existsSync(`${path.join(q.path, name)}.lck`)).toBe(false);
      }
      expect(await q.count()).toBe(0);
    });
  }

  test('message queue - every compliance message through DQN', async () => {
    const q = new DQN(path.join(dir, 'dqn'));
    for (const { file, md5, bytes } of files) {
      const msg = Message.deserialize(bytes);
      const name = await q.addMessage(msg);
      expect(await q.lock(name)).toBe(true);
      const got = await q.getMessage(name);
      expect([file, got.md5()]).toEqual([file, md5]);
      expect(got.equals(msg)).toBe(true);
      await q.unlock(name);
      const again = await q.dequeueMessage(name);
      expect([file, again.md5()]).toEqual([file, md5]);
      expect(fs.existsSync(q.getPath(name))).toBe(false);
    }
    expect(await q.count()).toBe(0);
    expect(layout(q.path).filter((p) => !/^(temporary|obsolete|[0-9a-f]{8})\/$/.test(p))).toEqual([]);
  });
});

describe('message queue - DQS', () => {
  test('message queue - DQS element bytes are python-messaging serialize(), no newline', async () => {
    const q = new DQS(dir);
    const name = await q.addMessage(new Message({ header: { subject: 'test', a: 'b' }, body: 'hello' }));
    expect(fs.readFileSync(path.join(dir, name), 'latin1')).toBe(
      '{"header": {"subject": "test", "a": "b"}, "body": "hello", "text": true}',
    );
    expect(layout(dir)).toEqual([`${name.split('/')[0]}/`, name]);
  });

  test('message queue - DQS compression is applied (zlib)', async () => {
    const q = new DQS(dir, { compression: 'zlib', granularity: 1 });
    expect(q.compression).toBe('zlib');
    expect(q.granularity).toBe(1);
    const big = await q.addMessage(new Message({ body: 'a'.repeat(300) }));
    expect(fs.readFileSync(path.join(dir, big), 'latin1')).toBe(
      '{"body": "eJxLTBwFxAIA2KhxrQ==", "text": true, "encoding": "utf8+zlib+base64"}',
    );
    // Under 255 bytes: not compressed, as python-messaging.
    const small = await q.addMessage(new Message({ body: Buffer.alloc(254, 'a') }));
    expect(fs.readFileSync(path.join(dir, small), 'latin1')).toBe(`{"body": "${'a'.repeat(254)}"}`);
    await q.lock(big);
    expect((await q.getMessage(big)).body).toBe('a'.repeat(300));
  });

  test('message queue - DQS lz4 and snappy round trip', async () => {
    for (const compression of ['lz4', 'snappy'] as const) {
      const q = new DQS(path.join(dir, compression), { compression });
      const msg = new Message({ header: { k: 'v' }, body: Buffer.from('xyz'.repeat(200)) });
      const name = await q.addMessage(msg);
      expect(fs.readFileSync(path.join(q.path, name), 'latin1')).toContain(`"encoding": "${compression}+base64"`);
      expect((await q.dequeueMessage(name)).equals(msg)).toBe(true);
    }
  });

  test('message queue - DQS empty text body loses its text flag (as in python-messaging JSON)', async () => {
    const q = new DQS(dir);
    const name = await q.addMessage(new Message({ body: '' }));
    expect(fs.readFileSync(path.join(dir, name), 'latin1')).toBe('{}');
    const got = await q.dequeueMessage(name);
    expect(got.text).toBe(false);
    expect(got.md5()).toBe('1d9d0faf7130b6c7ff996a8d94f424a0');
  });

  test('message queue - DQS getMessage needs the lock', async () => {
    const q = new DQS(dir);
    const name = await q.addMessage(new Message({ body: 'x' }));
    await expect(q.getMessage(name)).rejects.toBeInstanceOf(NotLockedError);
  });

  test('message queue - DQS dequeueMessage refuses an element locked elsewhere or gone, and leaves it', async () => {
    const q = new DQS(dir);
    const name = await q.addMessage(new Message({ body: 'x' }));
    await q.lock(name);
    await expect(q.dequeueMessage(name)).rejects.toBeInstanceOf(QueueError);
    expect(fs.existsSync(path.join(dir, name))).toBe(true);
    await q.remove(name);
    await expect(q.dequeueMessage(name)).rejects.toBeInstanceOf(QueueError);
  });

  test('message queue - DQS corrupt element: MessageError naming the element, cause and code kept, left locked', async () => {
    const q = new DQS(dir);
    const name = await q.add('not json');
    await q.lock(name);
    const err = (await q.getMessage(name).catch((e: unknown) => e)) as MessageError;
    expect(err).toBeInstanceOf(MessageError);
    expect(err.code).toBe('ERR_MESSAGE_JSON');
    expect(err.message).toContain(path.join(dir, name));
    expect(err.cause).toBeInstanceOf(MessageError);
    expect((err.cause as MessageError).code).toBe('ERR_MESSAGE_JSON');
    await q.unlock(name);

    const err2 = (await q.dequeueMessage(name).catch((e: unknown) => e)) as MessageError;
    expect(err2).toBeInstanceOf(MessageError);
    expect(err2.message).toContain(name);
    // Still there, and still locked by us: the caller can move it to a dead-letter spool, then remove it.
    expect(fs.readFileSync(q.getPath(name), 'utf8')).toBe('not json');
    await q.remove(name);
    expect(layout(dir)).toEqual([`${name.split('/')[0]}/`]);
  });

  test('message queue - DQS corrupt element codes: UTF-8, encoding, base64, not an object', async () => {
    const q = new DQS(dir);
    const cases: [Buffer | string, string][] = [
      [Buffer.from([0x7b, 0xff, 0x7d]), 'ERR_MESSAGE_UTF8'],
      ['{"body": "x", "encoding": "rot13"}', 'ERR_MESSAGE_ENCODING'],
      ['{"body": "QQ", "encoding": "base64"}', 'ERR_MESSAGE_BASE64'],
      ['[1, 2]', 'ERR_MESSAGE_INVALID'],
    ];
    for (const [data, code] of cases) {
      const name = await q.add(data);
      await q.lock(name);
      const err = (await q.getMessage(name).catch((e: unknown) => e)) as MessageError;
      expect([code, err instanceof MessageError, err.message.includes(name)]).toEqual([code, true, true]);
      expect(err.code).toBe(code);
    }
  });

  test('message queue - DQS options: bad compression refused before anything is created; QueueSimple options checked', () => {
    const p = path.join(dir, 'q');
    expect(() => new DQS(p, { compression: 'gzip' as never })).toThrow(InvalidOptionError);
    expect(fs.existsSync(p)).toBe(false);
    expect(() => new DQS(p, { maxelts: 3 } as never)).toThrow(InvalidOptionError);
    expect(fs.existsSync(p)).toBe(false);
    const q = new DQS(p, { umask: 0o027, rndhex: 3 });
    expect(q).toBeInstanceOf(QueueSimple);
    expect(q.compression).toBeUndefined();
    expect(q.rndhex).toBe(3);
    expect(fs.statSync(p).mode & 0o777).toBe(0o750);
  });

  test('message queue - DQS reads what plain QueueSimple wrote and the reverse', async () => {
    const q = new DQS(dir);
    const plain = new QueueSimple(dir);
    const msg = new Message({ header: { a: '\u00e9' }, body: Buffer.from([0, 1, 2]) });
    const name = await plain.add(msg.serialize());
    expect((await q.dequeueMessage(name)).equals(msg)).toBe(true);
    const name2 = await q.addMessage(msg);
    await plain.lock(name2);
    expect((await plain.get(name2)).equals(msg.serialize())).toBe(true);
  });
});

describe('message queue - DQN', () => {
  test('message queue - DQN files: header table bytes (sorted, escaped), text file for a text body', async () => {
    const q = new DQN(dir);
    const name = await q.addMessage(new Message({ header: { b: 'x\ty', a: '1\\2\n3', '': '' }, body: 'h\u00e9llo \u{1f600}' }));
    const files = elementFiles(q, name);
    expect(Object.keys(files)).toEqual(['header', 'text']);
    expect(files.header?.toString('latin1')).toBe('\t\na\t1\\\\2\\n3\nb\tx\\ty\n');
    expect(files.text?.equals(Buffer.from('h\u00e9llo \u{1f600}', 'utf8'))).toBe(true);
  });

  test('message queue - DQN binary file for a binary body, bytes verbatim', async () => {
    const q = new DQN(dir);
    const body = Buffer.from([0, 0xff, 0x0a, 0xe2, 0x82, 0xac]);
    const name = await q.addMessage(new Message({ header: { k: 'v' }, body }));
    const files = elementFiles(q, name);
    expect(Object.keys(files)).toEqual(['binary', 'header']);
    expect(files.binary?.equals(body)).toBe(true);
    expect(files.header?.toString('latin1')).toBe('k\tv\n');
    await q.lock(name);
    const got = await q.getMessage(name);
    expect(got.text).toBe(false);
    expect((got.body as Buffer).equals(body)).toBe(true);
    expect(got.header).toEqual({ k: 'v' });
  });

  test('message queue - DQN empty text body keeps its text flag (an empty text file); empty binary an empty binary file', async () => {
    const q = new DQN(dir);
    const t = await q.addMessage(new Message({ body: '' }));
    expect(elementFiles(q, t)).toEqual({ header: Buffer.alloc(0), text: Buffer.alloc(0) });
    const got = await q.dequeueMessage(t);
    expect([got.text, got.body]).toEqual([true, '']);
    expect(got.md5()).toBe(new Message({ body: '' }).md5());

    const b = await q.addMessage(new Message());
    expect(elementFiles(q, b)).toEqual({ header: Buffer.alloc(0), binary: Buffer.alloc(0) });
    const got2 = await q.dequeueMessage(b);
    expect(got2.text).toBe(false);
    expect(got2.md5()).toBe('1d9d0faf7130b6c7ff996a8d94f424a0');
  });

  test('message queue - DQN element with neither text nor binary reads as an empty binary body; text wins over binary', async () => {
    const q = new DQN(dir);
    const plain = new Queue(dir, { schema: DQN_SCHEMA });
    const none = await plain.add({ header: { a: 'b' } });
    await q.lock(none);
    const m = await q.getMessage(none);
    expect([m.text, Buffer.isBuffer(m.body) && m.body.length, m.header]).toEqual([false, 0, { a: 'b' }]);
    const both = await plain.add({ header: {}, text: 'T', binary: Buffer.from('B') });
    await q.lock(both);
    const m2 = await q.getMessage(both);
    expect([m2.text, m2.body]).toEqual([true, 'T']);
  });

  test('message queue - DQN header edge cases survive: TAB, LF, backslash, CR, empty key, non-ASCII, __proto__', async () => {
    const q = new DQN(dir);
    const header = {
      '': 'empty key',
      'a\tb': 'c\nd',
      'e\\f': '\\t\\n',
      cr: 'x\ry',
      '\u00e9\u{1f600}': '\u03c3',
      __proto__x: '1',
    };
    const msg = new Message({ header: [...Object.entries(header), ['__proto__', 'p']] });
    const name = await q.addMessage(msg);
    const got = await q.dequeueMessage(name);
    expect(got.equals(msg)).toBe(true);
    expect(got.headerEntries().find(([k]) => k === '__proto__')).toEqual(['__proto__', 'p']);
  });

  test('message queue - DQN getMessage needs the lock; dequeueMessage refuses a locked element', async () => {
    const q = new DQN(dir);
    const name = await q.addMessage(new Message({ body: 'x' }));
    await expect(q.getMessage(name)).rejects.toBeInstanceOf(NotLockedError);
    await q.lock(name);
    await expect(q.dequeueMessage(name)).rejects.toBeInstanceOf(QueueError);
    expect(fs.existsSync(q.getPath(name))).toBe(true);
  });

  test('message queue - DQN corrupt element: MessageError naming the element, cause kept', async () => {
    const q = new DQN(dir);
    const name = await q.addMessage(new Message({ header: { a: 'b' }, body: 'x' }));
    fs.writeFileSync(path.join(q.getPath(name), 'header'), 'no tab here\n');
    await q.lock(name);
    const err = (await q.getMessage(name).catch((e: unknown) => e)) as MessageError;
    expect(err).toBeInstanceOf(MessageError);
    expect(err.code).toBe('ERR_MESSAGE_INVALID');
    expect(err.message).toContain(q.getPath(name));
    expect((err.cause as QueueError).code).toBe('ERR_DIRQ_DATA');

    fs.writeFileSync(path.join(q.getPath(name), 'header'), '');
    fs.writeFileSync(path.join(q.getPath(name), 'text'), Buffer.from([0xff]));
    await expect(q.getMessage(name)).rejects.toThrow(/corrupt message in element .*invalid UTF-8/);
    fs.rmSync(path.join(q.getPath(name), 'header'));
    await expect(q.getMessage(name)).rejects.toThrow(/corrupt message in element .*missing data file/);
  });

  test('message queue - DQN schema is fixed: a schema option is refused before anything is created', () => {
    const p = path.join(dir, 'q');
    expect(() => new DQN(p, { schema: { a: 'string' } } as never)).toThrow(/schema/);
    expect(fs.existsSync(p)).toBe(false);
    const q = new DQN(p, { maxelts: 2 });
    expect(q).toBeInstanceOf(Queue);
    expect(q.schema).toEqual(DQN_SCHEMA);
    expect(q.maxelts).toBe(2);
    expect(layout(p)).toEqual(['obsolete/', 'temporary/']);
  });
});

describe('message queue - NULL', () => {
  test('message queue - NULL addMessage returns "", getMessage and dequeueMessage are unsupported', async () => {
    const q = new MessageQueueNull();
    expect(await q.addMessage(new Message({ body: 'x' }))).toBe('');
    expect(await q.count()).toBe(0);
    for (const p of [q.getMessage('00000000/00000000000000'), q.dequeueMessage('00000000/00000000000000')]) {
      await expect(p).rejects.toMatchObject({ code: 'ERR_DIRQ_UNSUPPORTED' });
    }
    await expect(q.getMessage('x')).rejects.toThrow('unsupported method: getMessage()');
    await expect(q.dequeueMessage('x')).rejects.toThrow('unsupported method: dequeueMessage()');
  });
});

describe('message queue - parseQueueSpec / newMessageQueue', () => {
  function problems(spec: string | Record<string, unknown>): string {
    try {
      parseQueueSpec(spec);
    } catch (err) {
      expect(err).toBeInstanceOf(MessageError);
      expect((err as MessageError).code).toBe('ERR_MESSAGE_QUEUE_SPEC');
      return (err as MessageError).message;
    }
    throw new Error(`accepted: ${JSON.stringify(spec)}`);
  }

  test('message queue - spec: good strings', () => {
    expect(parseQueueSpec('path=/var/spool/x')).toEqual({ type: 'DQS', path: '/var/spool/x', options: {} });
    expect(parseQueueSpec('path=/var/spool/x type=DQS')).toEqual({ type: 'DQS', path: '/var/spool/x', options: {} });
    expect(parseQueueSpec('  type=dqs \t path=/a=b  ')).toEqual({ type: 'DQS', path: '/a=b', options: {} });
    expect(parseQueueSpec('type=DQS path=/q granularity=10 umask=022 rndhex=7 compression=zlib fsync=true io=async')).toEqual({
      type: 'DQS',
      path: '/q',
      options: { granularity: 10, umask: 0o22, rndhex: 7, compression: 'zlib', fsync: true, io: 'async' },
    });
    expect(parseQueueSpec('type=Dqn path=/q maxelts=500 umask=0o077 fsync=0 rndhex=0')).toEqual({
      type: 'DQN',
      path: '/q',
      options: { maxelts: 500, umask: 0o77, fsync: false, rndhex: 0 },
    });
    expect(parseQueueSpec('type=null')).toEqual({ type: 'NULL' });
    // NULL checks and ignores the other keys, so switching a spec to NULL is one word.
    expect(parseQueueSpec('type=NULL path=/q granularity=5')).toEqual({ type: 'NULL' });
    expect(parseQueueSpec('fsync=FALSE path=/q')).toEqual({ type: 'DQS', path: '/q', options: { fsync: false } });
  });

  test('message queue - spec: good objects, with strings or native values', () => {
    expect(parseQueueSpec({ path: '/q', type: 'DQS', granularity: 0, umask: 0o22, fsync: false, compression: 'snappy' })).toEqual(
      {
        type: 'DQS',
        path: '/q',
        options: { granularity: 0, umask: 0o22, fsync: false, compression: 'snappy' },
      },
    );
    expect(parseQueueSpec({ path: '/q', type: 'dqn', maxelts: '3', umask: '002', fsync: '1', rndhex: undefined })).toEqual({
      type: 'DQN',
      path: '/q',
      options: { maxelts: 3, umask: 0o2, fsync: true },
    });
    expect(parseQueueSpec({ type: 'NULL' })).toEqual({ type: 'NULL' });
  });

  test('message queue - spec: every bad case', () => {
    expect(problems('')).toMatch(/missing path/);
    expect(problems('type=DQN')).toMatch(/missing path/);
    expect(problems('path=')).toMatch(/invalid path: "" \(a non-empty path\)/);
    expect(problems('path=/q type=DQX')).toMatch(/unknown type: "DQX" \(DQS, DQN or NULL\)/);
    expect(problems('path=/q color=red')).toMatch(/unknown key: "color"/);
    expect(problems('path=/q PATH=/r')).toMatch(/unknown key: "PATH"/);
    expect(problems('path=/q /r')).toMatch(/expected key=value, got "\/r"/);
    expect(problems('path=/q =x')).toMatch(/expected key=value, got "=x"/);
    expect(problems('path=/q path=/r')).toMatch(/duplicate key: path/);
    expect(problems('path=/q granularity=-1')).toMatch(/invalid granularity: "-1"/);
    expect(problems('path=/q granularity=1.5')).toMatch(/invalid granularity/);
    expect(problems('path=/q granularity=ten')).toMatch(/invalid granularity/);
    expect(problems('type=DQN path=/q maxelts=0')).toMatch(/invalid maxelts: "0" \(an integer >= 1\)/);
    expect(problems('path=/q umask=999')).toMatch(/invalid umask: "999" \(an octal mode from 000 to 777\)/);
    expect(problems('path=/q umask=1000')).toMatch(/invalid umask/);
    expect(problems({ path: '/q', umask: 0o1000 })).toMatch(/invalid umask: 512/);
    expect(problems('path=/q rndhex=16')).toMatch(/invalid rndhex: "16" \(an integer from 0 to 15\)/);
    expect(problems('path=/q rndhex=a')).toMatch(/invalid rndhex/);
    expect(problems('path=/q compression=gzip')).toMatch(/invalid compression: "gzip" \(zlib, lz4 or snappy\)/);
    expect(problems('path=/q fsync=yes')).toMatch(/invalid fsync: "yes" \(true, false, 1 or 0\)/);
    expect(problems({ path: '/q', fsync: 2 })).toMatch(/invalid fsync: 2/);
    expect(problems('path=/q io=fast')).toMatch(/invalid io: "fast" \(sync or async\)/);
    expect(problems('type=DQN path=/q granularity=5')).toMatch(/granularity does not apply to DQN queues/);
    expect(problems('type=DQN path=/q compression=zlib')).toMatch(/compression does not apply to DQN queues/);
    expect(problems('path=/q maxelts=5')).toMatch(/maxelts does not apply to DQS queues/);
    expect(problems('type=NULL granularity=x')).toMatch(/invalid granularity/);
    expect(problems({ path: 42 })).toMatch(/invalid path: 42/);
    expect(problems({ path: '/q', type: 1 })).toMatch(/unknown type: 1/);
    expect(() => parseQueueSpec(null as never)).toThrow(MessageError);
    expect(() => parseQueueSpec(['path=/q'] as never)).toThrow(/a string or an object/);
  });

  test('message queue - spec: all problems reported at once, in one error', () => {
    const msg = problems('type=DQN granularity=x color=red maxelts=0 umask=8 bogus');
    for (const p of [
      'invalid granularity: "x"',
      'unknown key: "color"',
      'invalid maxelts: "0"',
      'invalid umask: "8"',
      'expected key=value, got "bogus"',
      'missing path',
    ]) {
      expect(msg).toContain(p);
    }
    expect(msg.startsWith('invalid queue spec "type=DQN granularity=x color=red maxelts=0 umask=8 bogus": ')).toBe(true);
    const msg2 = problems('type=what granularity=y');
    expect(msg2).toContain('unknown type: "what"');
    expect(msg2).toContain('invalid granularity: "y"');
  });

  test('message queue - newMessageQueue makes the queue the spec describes', async () => {
    const dqs = newMessageQueue(`path=${dir}/s granularity=1 compression=zlib umask=077 rndhex=5`);
    expect(dqs).toBeInstanceOf(DQS);
    expect((dqs as DQS).granularity).toBe(1);
    expect((dqs as DQS).compression).toBe('zlib');
    expect(dqs.path).toBe(`${dir}/s`);
    expect(fs.statSync(`${dir}/s`).mode & 0o777).toBe(0o700);
    const name = await dqs.addMessage(new Message({ body: 'b'.repeat(400) }));
    expect(name.endsWith('5')).toBe(true);
    expect(fs.readFileSync(path.join(dir, 's', name), 'latin1')).toContain('utf8+zlib+base64');

    const dqn = newMessageQueue({ type: 'DQN', path: `${dir}/n`, maxelts: 1 });
    expect(dqn).toBeInstanceOf(DQN);
    await dqn.addMessage(new Message({ body: 'x' }));
    await dqn.addMessage(new Message({ body: 'y' }));
    expect(layout(`${dir}/n`).filter((p) => /^[0-9a-f]{8}\/$/.test(p))).toEqual(['00000000/', '00000001/']);

    const nul = newMessageQueue('type=NULL');
    expect(nul).toBeInstanceOf(MessageQueueNull);
    expect(await nul.addMessage(new Message())).toBe('');

    expect(() => newMessageQueue(`path=${dir}/bad granularity=x`)).toThrow(MessageError);
    expect(fs.existsSync(`${dir}/bad`)).toBe(false);
  });
});
