// Message queues against the real python-dirq (Debian's python3-dirq), spec §8 case 20. python-messaging is not
// installed: its DQN wrapper is emulated with plain dirq Queue(path, schema=DQN_SCHEMA), which is all it is
// (add_message writes header + text or binary; get_message reads text, else binary, else b'').
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Message } from '../src/message';
import { DQN, DQS } from '../src/queue';
import { complianceFiles, fromWire, py, removeDir, requirePythonDirq, tempDir, toWire, type WireMessage } from './helpers/queue';

jest.setTimeout(60_000);

let dir: string;

beforeAll(() => {
  requirePythonDirq();
});

beforeEach(() => {
  dir = tempDir('message-queue-interop-');
});

afterEach(() => {
  removeDir(dir);
});

const MESSAGES: Message[] = [
  new Message({ header: { subject: 'test', a: 'b' }, body: 'hello' }),
  new Message({
    header: { '\u00e9t\u00e9': '\u03c3 \u263a \u{1f600}' },
    body: '[D\u00e9j\u00e0 Vu] sigma=\u03c3 \u2014 \u{1f600}',
  }),
  new Message({ header: { tab: 'a\tb', lf: 'c\nd', bs: 'e\\f', esc: '\\t\\n\\\\', cr: 'g\rh', '': 'empty key' }, body: 'x' }),
  new Message({ header: { 'k\te\ny\\': 'v', empty: '' }, body: Buffer.from([0, 1, 0xff, 0xfe, 0x0a, 0x09, 0x5c]) }),
  new Message({ body: Buffer.from('\u20ac valid UTF-8, binary', 'utf8') }),
  new Message({ header: { kind: 'empty text' }, body: '' }),
  new Message({ header: { kind: 'empty binary' }, body: Buffer.alloc(0) }),
  new Message(),
  new Message({ body: 'line 1\nline 2\r\n\ttabbed \\ end\n' }),
  new Message({ header: { big: 'y'.repeat(5000) }, body: Buffer.alloc(100_000, 0xab) }),
];

const PY_READ_DQN = `
q = Queue(args['path'], schema=DQN_SCHEMA)
result = []
for name in args['names']:
    if not q.lock(name):
        raise Exception('cannot lock ' + name)
    d = q.get(name)
    if 'text' in d:
        result.append({'header': d['header'], 'text': True, 'body': d['text'], 'files': sorted(d.keys())})
    elif 'binary' in d:
        result.append({'header': d['header'], 'text': False, 'body': b64(d['binary']), 'files': sorted(d.keys())})
    else:
        result.append({'header': d['header'], 'text': False, 'body': '', 'files': sorted(d.keys())})
    q.remove(name)
result = {'messages': result, 'count': q.count()}
`;

const PY_WRITE_DQN = `
q = Queue(args['path'], schema=DQN_SCHEMA)
result = []
for m in args['messages']:
    data = {'header': m['header']}
    if m['text']:
        data['text'] = m['body']
    else:
        data['binary'] = unb64(m['body'])
    result.append(q.add(data))
`;

describe('message queue - interop with python-dirq', () => {
  test('message queue - DQN written by us is read by python-dirq: same header, body and text flag', async () => {
    const q = new DQN(dir);
    const names: string[] = [];
    for (const m of MESSAGES) names.push(await q.addMessage(m));
    const out = py<{ messages: (WireMessage & { files: string[] })[]; count: number }>(PY_READ_DQN, { path: dir, names });
    expect(out.count).toBe(0);
    MESSAGES.forEach((m, i) => {
      const got = out.messages[i] as WireMessage & { files: string[] };
      expect({ i, header: got.header, text: got.text, body: got.body }).toEqual({ i, ...toWire(m) });
      // The empty text body keeps its text flag: python-dirq sees a `text` field.
      expect(got.files).toEqual(m.text ? ['header', 'text'] : ['binary', 'header']);
      expect(fromWire(got).md5()).toBe(m.md5());
    });
  });

  test('message queue - DQN written by python-dirq is read by our getMessage: same header, body and text flag', async () => {
    const names = py<string[]>(PY_WRITE_DQN, { path: dir, messages: MESSAGES.map(toWire) });
    expect(names).toHaveLength(MESSAGES.length);
    const q = new DQN(dir);
    for (const [i, name] of names.entries()) {
      const m = MESSAGES[i] as Message;
      const elt = q.getPath(name);
      // python-dirq's files: a text message has a `text` file (even empty), a binary one a `binary` file.
      expect({ i, files: fs.readdirSync(elt).sort() }).toEqual({ i, files: m.text ? ['header', 'text'] : ['binary', 'header'] });
      const got = await q.dequeueMessage(name);
      expect({ i, ...toWire(got) }).toEqual({ i, ...toWire(m) });
      expect(got.equals(m)).toBe(true);
      expect(got.md5()).toBe(m.md5());
    }
    expect(await q.count()).toBe(0);
  });

  test('message queue - DQN element python-dirq wrote with only a header reads as an empty binary body', async () => {
    const [name] = py<string[]>(`result = [Queue(args, schema=DQN_SCHEMA).add({'header': {'a': 'b'}})]`, dir);
    const q = new DQN(dir);
    const got = await q.dequeueMessage(name as string);
    expect(toWire(got)).toEqual({ header: { a: 'b' }, text: false, body: '' });
  });

  test('message queue - DQN header table bytes are identical to python-dirq _hash2string', async () => {
    const q = new DQN(path.join(dir, 'ts'));
    const header = (MESSAGES[2] as Message).header;
    const name = await q.addMessage(MESSAGES[2] as Message);
    const [pyName] = py<string[]>(
      `result = [Queue(args['path'], schema=DQN_SCHEMA).add({'header': args['header'], 'text': 'x'})]`,
      {
        path: path.join(dir, 'py'),
        header,
      },
    );
    const ours = fs.readFileSync(path.join(q.getPath(name), 'header'));
    const theirs = fs.readFileSync(path.join(dir, 'py', pyName as string, 'header'));
    expect(ours.toString('latin1')).toBe(theirs.toString('latin1'));
  });

  test('message queue - DQS (zlib) written by us is read by python-dirq QueueSimple byte for byte', async () => {
    const q = new DQS(dir, { compression: 'zlib' });
    const files = complianceFiles();
    const names: string[] = [];
    const expected: string[] = [];
    for (const { bytes } of files) {
      const m = Message.deserialize(bytes);
      names.push(await q.addMessage(m));
      expected.push(m.serialize({ compression: 'zlib' }).toString('base64'));
    }
    const got = py<string[]>(
      `
q = QueueSimple(args['path'])
result = []
for name in args['names']:
    assert q.lock(name)
    result.append(b64(q.get(name)))
    q.remove(name)
`,
      { path: dir, names },
    );
    expect(got).toEqual(expected);
  });

  test('message queue - DQS element written by python-dirq QueueSimple is read by our getMessage (compliance md5s)', async () => {
    const files = complianceFiles();
    const names = py<string[]>(
      `
q = QueueSimple(args['path'])
result = [q.add(unb64(b)) for b in args['bodies']]
`,
      { path: dir, bodies: files.map((f) => f.bytes.toString('base64')) },
    );
    const q = new DQS(dir);
    for (const [i, name] of names.entries()) {
      const { file, md5 } = files[i] as { file: string; md5: string };
      expect([file, (await q.dequeueMessage(name)).md5()]).toEqual([file, md5]);
    }
    expect(await q.count()).toBe(0);
  });
});
