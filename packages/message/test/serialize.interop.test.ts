import { spawnSync } from 'node:child_process';
import { Message } from '../src/message';

// Serialization against Python itself: python-messaging is not packaged for Debian, so its jsonify is
// transcribed below (section 5.2 of the format reference) and run with CPython's own json.dumps, zlib and
// base64, the parts whose exact output matters. Our bytes must equal Python's, and each side must read the
// other's output back to the same message.
const PM = `
import base64, hashlib, json, sys, zlib

def maybe_b64(data, tokens):
    try:
        s = data.decode('utf-8')
    except UnicodeDecodeError:
        s = None
    if s is None or any(0 <= ord(c) <= 0x1f or 0x7f <= ord(c) <= 0xff for c in s):
        tokens.append('base64')
        return base64.b64encode(data).decode('ascii')
    return s

def jsonify(header, body, text, compression):
    obj = {}
    if header:
        obj['header'] = header
    if len(body) == 0:
        return obj
    tokens = []
    if text:
        obj['body'] = body
        if compression:
            enc = body.encode('utf-8')
            if len(enc) >= 255:
                comp = zlib.compress(enc)
                if len(comp) / len(enc) < 0.9:
                    tokens += ['utf8', 'zlib']
                    obj['body'] = maybe_b64(comp, tokens)
        obj['text'] = True
    else:
        data = body
        if compression and len(data) >= 255:
            comp = zlib.compress(data)
            if len(comp) / len(data) < 0.9:
                tokens.append('zlib')
                data = comp
        obj['body'] = maybe_b64(data, tokens)
    if tokens:
        obj['encoding'] = '+'.join(tokens)
    return obj

def md5(header, body, text):
    h = hashlib.md5(''.join('%s:%s\\n' % (k, header[k]) for k in sorted(header)).encode('utf-8')).hexdigest()
    b = hashlib.md5(body.encode('utf-8') if text else body).hexdigest()
    return hashlib.md5((('1' if text else '0') + h + b).encode('utf-8')).hexdigest()

out = []
for case in json.load(sys.stdin):
    header = dict(case['header'])
    body = case['body'] if case['text'] else base64.b64decode(case['b64'])
    out.append({'json': json.dumps(jsonify(header, body, case['text'], case['zlib'])), 'md5': md5(header, body, case['text'])})
json.dump(out, sys.stdout)
`;

interface Case {
  name: string;
  header: [string, string][];
  body: string | Buffer;
}

const random1k = Buffer.from(Array.from({ length: 1024 }, (_, i) => (i * 7919 + ((i * i) % 97)) % 256));
const CASES: Case[] = [
  { name: 'empty', header: [], body: Buffer.alloc(0) },
  { name: 'empty text', header: [['a', 'b']], body: '' },
  {
    name: 'text ascii',
    header: [
      ['subject', 'test'],
      ['a', 'b'],
    ],
    body: 'hello',
  },
  { name: 'text non-ascii', header: [['ké', 'vé\u2028']], body: 'Déjà Vu sigma=σ — smiley=☺' },
  { name: 'text astral', header: [['e', '\u{1F600}']], body: 'grin \u{1F600} and \u{10FFFF}' },
  { name: 'text controls', header: [['\t', '\n']], body: 'a\tb\nc\rd\x00e\x7ff"g\\h/' },
  { name: 'binary printable', header: [], body: Buffer.from('plain printable text') },
  { name: 'binary tab', header: [], body: Buffer.from('tab\there') },
  { name: 'binary nul', header: [], body: Buffer.from([0, 1, 2, 0]) },
  { name: 'binary valid non-ascii utf8', header: [], body: Buffer.from('€ ☺ \u0100', 'utf8') },
  { name: 'binary latin range utf8', header: [], body: Buffer.from('é', 'utf8') },
  { name: 'binary 254', header: [], body: Buffer.alloc(254, 0x61) },
  { name: 'binary 255', header: [], body: Buffer.alloc(255, 0x61) },
  { name: 'binary 300', header: [], body: Buffer.alloc(300, 0x62) },
  { name: 'text 254', header: [], body: 'a'.repeat(254) },
  { name: 'text 255', header: [], body: 'a'.repeat(255) },
  { name: 'text 300 non-ascii', header: [], body: 'é'.repeat(300) },
  { name: 'binary random 1 KiB', header: [], body: random1k },
  {
    name: 'header order',
    header: [
      ['z', '1'],
      ['10', '2'],
      ['a', '3'],
    ],
    body: 'x',
  },
];

describe('message serialization against Python', () => {
  test('message interop - serialize equals python json.dumps of python-messaging jsonify, with and without zlib', () => {
    const input = CASES.flatMap((c) =>
      [false, true].map((zlib) => ({
        header: c.header,
        text: typeof c.body === 'string',
        body: typeof c.body === 'string' ? c.body : '',
        b64: typeof c.body === 'string' ? '' : c.body.toString('base64'),
        zlib,
      })),
    );
    const r = spawnSync('/usr/bin/python3', ['-c', PM], { input: JSON.stringify(input), encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { json: string; md5: string }[];
    expect(out).toHaveLength(input.length);
    CASES.forEach((c, i) => {
      const m = new Message({ header: c.header, body: c.body });
      for (const [j, zlib] of [false, true].entries()) {
        const python = out[2 * i + j] as { json: string; md5: string };
        const ours = m.serialize(zlib ? { compression: 'zlib' } : {}).toString('latin1');
        expect([c.name, zlib, ours]).toEqual([c.name, zlib, python.json]);
        expect([c.name, m.md5()]).toEqual([c.name, python.md5]);
        const back = Message.deserialize(python.json);
        if (m.body.length > 0) expect([c.name, back.equals(m)]).toEqual([c.name, true]);
      }
    });
  });

  test('message interop - a lone surrogate in a header is preserved in the JSON form, as python-messaging keeps it', () => {
    // Decision (docs/message.md): the spool form keeps it (\ud800, as Python json.dumps writes it, and json.loads
    // reads it back); what must be UTF-8 (md5, a STOMP or AMQP frame) refuses it with ERR_MESSAGE_UTF8 instead of
    // replacing it with U+FFFD.
    const m = new Message({ header: { lone: 'a\ud800b', low: '\udc00' }, body: 'x' });
    const ours = m.serialize().toString('latin1');
    const py = `
import json, sys
inp = json.load(sys.stdin)
ours = inp['ours']
back = json.loads(ours)
print(json.dumps({'dumps': json.dumps({'header': inp['header'], 'body': 'x', 'text': True}), 'same': back['header'] == inp['header']}))
`;
    const r = spawnSync('/usr/bin/python3', ['-c', py], { input: JSON.stringify({ ours, header: m.header }), encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { dumps: string; same: boolean };
    expect(ours).toBe('{"header": {"lone": "a\\ud800b", "low": "\\udc00"}, "body": "x", "text": true}');
    expect(out).toEqual({ dumps: ours, same: true });
    expect(Message.deserialize(ours).header).toEqual({ lone: 'a\ud800b', low: '\udc00' });
    expect(() => m.md5()).toThrow(
      expect.objectContaining({ code: 'ERR_MESSAGE_UTF8', message: expect.stringMatching(/lone surrogate/) }),
    );
    expect(m.utf8Problem()).toBe('header "lone" has a lone surrogate: not encodable as UTF-8');
    expect(new Message({ body: 'ok' }).utf8Problem()).toBeUndefined();
    expect(new Message({ body: 'bad \udfff' }).utf8Problem()).toBe('text body has a lone surrogate: not encodable as UTF-8');
  });
});
