// Config::General syntax as stompclt reads it: every feature, and every syntax error with its FILE:LINE.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, configToPlain, parseConfigGeneral, parseConfigGeneralFile } from '../src';

let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'msgbricks-config-'));
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Writes the files (relative names to contents) and returns the path of the first one. */
function files(tree: Record<string, string>): string {
  for (const [name, text] of Object.entries(tree)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return path.join(dir, Object.keys(tree)[0] as string);
}

function plain(text: string): Record<string, unknown> {
  return configToPlain(parseConfigGeneralFile(files({ 'main.conf': text })));
}

function syntaxError(tree: Record<string, string>): string {
  const file = files(tree);
  try {
    parseConfigGeneralFile(file);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('ERR_CONFIG');
    expect((err as ConfigError).name).toBe('ConfigError');
    return (err as ConfigError).message.split(dir).join('DIR');
  }
  throw new Error('no error');
}

describe('config - Config::General syntax', () => {
  test('config - key value and key = value lines', () => {
    expect(plain('a 1\nb = 2\nc=3\n  d    four five  \ne = x = y\nf\n')).toEqual({
      a: '1',
      b: '2',
      c: '3',
      d: 'four five',
      e: 'x = y',
      f: '',
    });
  });

  test('config - a k=v value after a blank keeps its = (subscribe destination=/queue/a)', () => {
    expect(plain('subscribe destination=/queue/a ack=auto\nsubscribe = destination=/queue/b\n')).toEqual({
      subscribe: ['destination=/queue/a ack=auto', 'destination=/queue/b'],
    });
  });

  test('config - # comments, whole-line and trailing, and \\# escapes', () => {
    expect(plain('# a comment\n  # indented comment\na 1 # trailing\nb pass\\#word\nc "x\\#y"\n')).toEqual({
      a: '1',
      b: 'pass#word',
      c: 'x#y',
    });
  });

  test('config - quoted values keep their blanks; \\" \\\\ \\$ lose their backslash', () => {
    expect(plain('a "  two  spaces  "\nb = "q\\"uote"\nc back\\\\slash \\$HOME\n')).toEqual({
      a: '  two  spaces  ',
      b: 'q"uote',
      c: 'back\\slash $HOME',
    });
  });

  test('config - a trailing backslash continues the line, the next line losing its indentation', () => {
    expect(plain('a one \\\n    two \\\n  three\nb 2\n')).toEqual({ a: 'one two three', b: '2' });
  });

  test('config - blocks, nested blocks, named blocks and explicit empty blocks', () => {
    expect(
      plain(
        '<outgoing>\n  <broker>\n    uri tcp://h:1\n  </broker>\n</outgoing>\n<queue "my queue">\n</queue>\n<host web1>\n  port 80\n</host>\n<empty/>\n',
      ),
    ).toEqual({
      outgoing: { broker: { uri: 'tcp://h:1' } },
      queue: { 'my queue': {} },
      host: { web1: { port: '80' } },
      empty: {},
    });
  });

  test('config - repeated keys and blocks are collected in order', () => {
    const text = [
      'incoming-broker-auth plain name=a pass=b',
      'incoming-broker-auth x509 cert=c key=k',
      '<subscribe>',
      '  destination /queue/a',
      '</subscribe>',
      '<subscribe>',
      '  destination /queue/b',
      '</subscribe>',
    ].join('\n');
    expect(plain(text)).toEqual({
      'incoming-broker-auth': ['plain name=a pass=b', 'x509 cert=c key=k'],
      subscribe: [{ destination: '/queue/a' }, { destination: '/queue/b' }],
    });
  });

  test('config - heredocs keep their lines verbatim: no comments, escapes or continuations', () => {
    const text = ['code <<EOF', '  $hdr{x} = "a#b"; # kept', '  s/\\\\n//g; \\', '', 'EOF', 'after 1'].join('\n');
    // N.B. Config::General trims the value as a whole: the first line's indentation and the trailing blank line go.
    expect(plain(text)).toEqual({ code: '$hdr{x} = "a#b"; # kept\n  s/\\\\n//g; \\', after: '1' });
  });

  test('config - heredoc with = and an indented terminator, whose indentation every line loses', () => {
    const text = ['<callback>', '  code = <<END', '    if (1) {', '      x();', '    }', '    END', '</callback>'].join('\n');
    expect(plain(text)).toEqual({ callback: { code: 'if (1) {\n  x();\n}' } });
  });

  test('config - <<include>> and include, relative to the including file, the same file twice', () => {
    const main = files({
      'main.conf': 'a 1\n<<include sub/one.conf>>\n<block>\n  include "sub/one.conf"\n</block>\n',
      'sub/one.conf': 'b 2\n<<include two.conf>>\n',
      'sub/two.conf': 'c 3\n',
    });
    const tree = parseConfigGeneralFile(main);
    expect(configToPlain(tree)).toEqual({ a: '1', b: '2', c: '3', block: { b: '2', c: '3' } });
    const c = tree.entries.get('c')?.[0];
    expect(c?.source).toEqual({ file: path.join(dir, 'sub', 'two.conf'), line: 1 });
  });

  test('config - every value remembers its file and line', () => {
    const tree = parseConfigGeneral('\n# x\na 1\n<b>\n  c \\\n    2\n  d <<X\nz\nX\n</b>\n', 'f.conf');
    const b = tree.entries.get('b')?.[0];
    expect(tree.entries.get('a')?.[0]?.source).toEqual({ file: 'f.conf', line: 3 });
    expect(b?.source).toEqual({ file: 'f.conf', line: 4 });
    if (b?.kind !== 'block') throw new Error('not a block');
    expect(b.entries.get('c')?.[0]).toEqual({ kind: 'scalar', value: '2', source: { file: 'f.conf', line: 5 } });
    expect(b.entries.get('d')?.[0]).toEqual({ kind: 'scalar', value: 'z', source: { file: 'f.conf', line: 7 } });
  });

  test('config - C-style comments are not comments (stompclt sets -CComments 0)', () => {
    expect(plain('a /* b */\n')).toEqual({ a: '/* b */' });
  });

  test('config - CRLF line ends', () => {
    expect(plain('a 1\r\n<b>\r\n c 2\r\n</b>\r\n')).toEqual({ a: '1', b: { c: '2' } });
  });
});

describe('config - syntax errors', () => {
  test('config - unclosed block', () => {
    expect(syntaxError({ 'main.conf': 'a 1\n<outgoing>\n  <broker>\n  </broker>\n' })).toBe(
      'DIR/main.conf:2: unclosed block <outgoing>: no </outgoing> before the end of DIR/main.conf',
    );
  });

  test('config - stray closing tag', () => {
    expect(syntaxError({ 'main.conf': 'a 1\n</x>\n' })).toBe('DIR/main.conf:2: </x> closes no open block');
  });

  test('config - closing tag of another block', () => {
    expect(syntaxError({ 'main.conf': '<a>\n<b>\n</a>\n' })).toBe(
      'DIR/main.conf:3: </a> does not close <b> (opened at DIR/main.conf:2)',
    );
  });

  test('config - a block must be closed in its own file', () => {
    expect(syntaxError({ 'main.conf': '<a>\ninclude x.conf\n', 'x.conf': '</a>\n' })).toBe(
      'DIR/x.conf:1: </a> closes no open block',
    );
  });

  test('config - unterminated heredoc', () => {
    expect(syntaxError({ 'main.conf': 'a 1\ncode <<EOF\nx\n' })).toBe(
      'DIR/main.conf:2: unterminated heredoc: no line "EOF" after "code <<EOF"',
    );
  });

  test('config - continuation at end of file', () => {
    expect(syntaxError({ 'main.conf': 'a 1 \\' })).toBe('DIR/main.conf:1: line continuation (trailing backslash) at end of file');
  });

  test('config - missing included file', () => {
    expect(syntaxError({ 'main.conf': 'a 1\n\n<<include nope.conf>>\n' })).toBe(
      'DIR/main.conf:3: cannot read included file DIR/nope.conf: ENOENT',
    );
  });

  test('config - include loop', () => {
    expect(syntaxError({ 'a.conf': 'include b.conf\n', 'b.conf': 'x 1\ninclude a.conf\n' })).toBe(
      'DIR/b.conf:2: include loop: a.conf -> b.conf -> a.conf',
    );
  });

  test('config - a file including itself', () => {
    expect(syntaxError({ 'a.conf': 'x 1\n<<include a.conf>>\n' })).toBe('DIR/a.conf:2: include loop: a.conf -> a.conf');
  });

  test('config - missing configuration file', () => {
    expect(() => parseConfigGeneralFile(path.join(dir, 'none.conf'))).toThrow(
      `${path.join(dir, 'none.conf')}: cannot read configuration file: ENOENT`,
    );
  });

  test('config - empty block name and missing option name', () => {
    expect(syntaxError({ 'main.conf': '<>\n' })).toBe('DIR/main.conf:1: block without a name: <>');
    expect(syntaxError({ 'x.conf': 'a 1\n= 2\n' })).toBe('DIR/x.conf:2: missing option name before "=" in "= 2"');
  });
});
