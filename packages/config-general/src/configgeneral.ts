/**
 * A parser for the Perl Config::General syntax as stompclt uses it (`ParseConfig` with
 * `-CComments => 0, -IncludeRelative => 1, -IncludeAgain => 1` and the other defaults:
 * `-AllowMultiOptions`, `-SplitPolicy => 'guess'`), plus Apache-style `include path`.
 *
 *     # a comment; \# is a literal #
 *     key value                  key = value        key "  quoted, spaces kept  "
 *     long value \               (a trailing backslash joins the next line, its indentation removed)
 *       continued
 *     <block>  ...  </block>     <block name> ... </block>   <empty/>
 *     code <<EOF                 (heredoc: lines kept verbatim up to a line holding only EOF;
 *     ...                         when EOF is indented, that indentation is removed from every line)
 *     EOF
 *     <<include other.conf>>     include other.conf   (relative to the including file)
 *
 * Every value remembers the file and line it comes from. Repeated keys and blocks are kept in
 * order, as arrays. Syntax errors throw a ConfigError whose message is `FILE:LINE: problem`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errnoOf } from '@msgbricks/errors';
import { ConfigError, formatLocation, type SourceLocation } from './errors';

/** A `key value` line or a heredoc; `value` is '' for a key given alone. */
export interface ConfigScalar {
  readonly kind: 'scalar';
  readonly value: string;
  readonly source: SourceLocation;
}

/**
 * A `<name>` block (or the file itself). A named block `<name value>` is, as in Config::General,
 * a block `name` holding one block `value`.
 */
export interface ConfigBlock {
  readonly kind: 'block';
  /** Each key with its values in file order (several when the key or block is repeated). */
  readonly entries: Map<string, ConfigNode[]>;
  readonly source: SourceLocation;
}

export type ConfigNode = ConfigScalar | ConfigBlock;

export interface ConfigGeneralOptions {
  /** Reads a file (for tests and virtual file systems); defaults to `fs.readFileSync(path, 'utf8')`. */
  readFile?: (file: string) => string;
}

interface Frame {
  readonly name: string;
  readonly block: ConfigBlock;
  readonly source: SourceLocation;
}

interface Heredoc {
  readonly key: string;
  readonly terminator: string;
  readonly source: SourceLocation;
  readonly lines: string[];
}

const COMMENT_RE = /(?<!\\)#.*$/;
const CONTINUATION_RE = /(?<!\\)\\\s*$/;
// Config::General's two heredoc forms under -SplitPolicy guess: `key = <<EOF` and `key <<EOF`.
const HEREDOC_EQ_RE = /^\s*([^=]+?)\s*=\s*<<\s*(.+?)\s*$/;
const HEREDOC_WS_RE = /^\s*(\S+?)\s+<<\s*(.+?)\s*$/;
const INCLUDE_RE = /^<<include\s+(.+?)>>$/i;
const APACHE_INCLUDE_RE = /^include\s+(.+?)$/i;
const EMPTY_BLOCK_RE = /^<([^/].*?)\/>$/;
const CLOSE_RE = /^<\/(.*?)>$/;
const OPEN_RE = /^<([^/]?.*?)>$/;
// -SplitPolicy guess: the key ends at the first `=` (with the blanks around it) or the first blank.
const SPLIT_RE = /\s*=\s*|\s+/;

function syntaxError(source: SourceLocation | string, message: string): ConfigError {
  return new ConfigError([{ where: typeof source === 'string' ? source : formatLocation(source), message }]);
}

function newBlock(source: SourceLocation): ConfigBlock {
  return { kind: 'block', entries: new Map(), source };
}

function add(block: ConfigBlock, key: string, node: ConfigNode): void {
  const list = block.entries.get(key);
  if (list === undefined) block.entries.set(key, [node]);
  else list.push(node);
}

function unquote(s: string): string {
  return s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s;
}

/** Config::General's value clean-up: surrounding double quotes go, `\$ \\ \" \#` lose their backslash. */
function cleanValue(s: string): string {
  return unquote(s).replace(/\\([$\\"#])/g, '$1');
}

class Parser {
  private readonly stack: Frame[];
  /** Resolved paths of the files being read, outermost first: a file met again inside itself is a loop. */
  private readonly chain: string[] = [];

  constructor(
    readonly root: ConfigBlock,
    private readonly readFile: (file: string) => string,
  ) {
    this.stack = [{ name: '', block: root, source: root.source }];
  }

  parse(file: string, text: string): void {
    this.chain.push(path.resolve(file));
    const depth = this.stack.length;
    const lines = text.split(/\r?\n/);
    let heredoc: Heredoc | undefined;
    let long: { text: string; source: SourceLocation } | undefined;
    for (let i = 0; i < lines.length; i++) {
      const raw = lines[i] as string;
      const here: SourceLocation = { file, line: i + 1 };
      if (heredoc !== undefined) {
        const end = /^(\s*)(.*?)\s*$/.exec(raw) as RegExpExecArray;
        if (end[2] === heredoc.terminator) {
          this.endHeredoc(heredoc, end[1] as string);
          heredoc = undefined;
        } else {
          heredoc.lines.push(raw);
        }
        continue;
      }
      const line = raw.replace(COMMENT_RE, '');
      if (CONTINUATION_RE.test(line)) {
        const piece = line.replace(/\\\s*$/, '').replace(/^\s+/, '');
        if (long === undefined) long = { text: piece, source: here };
        else long.text += piece;
        continue;
      }
      if (long !== undefined) {
        const joined = long.text + line.replace(/^\s+/, '');
        const source = long.source;
        long = undefined;
        this.statement(joined, source);
        continue;
      }
      const h = HEREDOC_EQ_RE.exec(line) ?? HEREDOC_WS_RE.exec(line);
      if (h !== null && !INCLUDE_RE.test(line.trim())) {
        heredoc = { key: h[1] as string, terminator: h[2] as string, source: here, lines: [] };
        continue;
      }
      this.statement(line, here);
    }
    if (heredoc !== undefined) {
      throw syntaxError(
        heredoc.source,
        `unterminated heredoc: no line "${heredoc.terminator}" after "${heredoc.key} <<${heredoc.terminator}"`,
      );
    }
    if (long !== undefined) throw syntaxError(long.source, 'line continuation (trailing backslash) at end of file');
    if (this.stack.length > depth) {
      const open = this.stack[this.stack.length - 1] as Frame;
      throw syntaxError(open.source, `unclosed block <${open.name}>: no </${open.name}> before the end of ${file}`);
    }
    this.chain.pop();
  }

  private get top(): Frame {
    return this.stack[this.stack.length - 1] as Frame;
  }

  private endHeredoc(h: Heredoc, indent: string): void {
    // N.B. as in Config::General: the terminator's indentation is removed from each line that has it,
    // and the value is trimmed as a whole (leading blanks of the first line, trailing newlines).
    const body = indent === '' ? h.lines : h.lines.map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l));
    const value = body.join('\n').replace(/^\s+/, '').replace(/\s+$/, '');
    add(this.top.block, h.key, { kind: 'scalar', value, source: h.source });
  }

  private statement(line: string, source: SourceLocation): void {
    const t = line.trim();
    if (t === '') return;
    const inc = INCLUDE_RE.exec(t) ?? APACHE_INCLUDE_RE.exec(t);
    if (inc !== null) {
      this.include(unquote((inc[1] as string).trim()).replace(/^'(.*)'$/, '$1'), source);
      return;
    }
    const empty = EMPTY_BLOCK_RE.exec(t);
    if (empty !== null) {
      this.open((empty[1] as string).trim(), source);
      this.stack.pop();
      return;
    }
    const close = CLOSE_RE.exec(t);
    if (close !== null) {
      this.close((close[1] as string).trim(), source);
      return;
    }
    const open = OPEN_RE.exec(t);
    if (open !== null) {
      this.open((open[1] as string).trim(), source);
      return;
    }
    const sep = SPLIT_RE.exec(t);
    const key = sep === null ? t : t.slice(0, sep.index);
    const value = sep === null ? '' : t.slice(sep.index + sep[0].length);
    if (key === '') throw syntaxError(source, `missing option name before "=" in "${t}"`);
    add(this.top.block, key, { kind: 'scalar', value: cleanValue(value), source });
  }

  private open(inner: string, source: SourceLocation): void {
    if (inner === '') throw syntaxError(source, 'block without a name: <>');
    const quoted = /^"([^"]+)"$/.exec(inner);
    const named = quoted === null ? /^(\S+)\s+(.+)$/.exec(inner) : null;
    const name = quoted !== null ? (quoted[1] as string) : named !== null ? (named[1] as string) : inner;
    const block = newBlock(source);
    add(this.top.block, name, block);
    let inside = block;
    if (named !== null) {
      inside = newBlock(source);
      add(block, unquote((named[2] as string).trim()), inside);
    }
    this.stack.push({ name, block: inside, source });
  }

  private close(name: string, source: SourceLocation): void {
    const top = this.top;
    // A block must be closed in the file that opened it (the bottom frame is the file itself).
    if (this.stack.length === 1 || top.source.file !== source.file) {
      throw syntaxError(source, `</${name}> closes no open block`);
    }
    if (top.name !== name) {
      throw syntaxError(source, `</${name}> does not close <${top.name}> (opened at ${formatLocation(top.source)})`);
    }
    this.stack.pop();
  }

  private include(target: string, source: SourceLocation): void {
    const file = path.isAbsolute(target) ? target : path.join(path.dirname(source.file), target);
    const resolved = path.resolve(file);
    // Including the same file twice is fine (-IncludeAgain); including a file from inside itself is a loop.
    if (this.chain.includes(resolved)) {
      const cycle = [...this.chain.slice(this.chain.indexOf(resolved)), resolved].map((f) => path.basename(f));
      throw syntaxError(source, `include loop: ${cycle.join(' -> ')}`);
    }
    let text: string;
    try {
      text = this.readFile(file);
    } catch (err) {
      throw new ConfigError(
        [{ where: formatLocation(source), message: `cannot read included file ${file}: ${errnoOf(err) ?? String(err)}` }],
        { cause: err },
      );
    }
    this.parse(file, text);
  }
}

function defaultReadFile(file: string): string {
  return fs.readFileSync(file, 'utf8');
}

/** Parses Config::General text; `file` names it in messages and anchors relative includes. */
export function parseConfigGeneral(text: string, file: string, options: ConfigGeneralOptions = {}): ConfigBlock {
  const root = newBlock({ file, line: 1 });
  new Parser(root, options.readFile ?? defaultReadFile).parse(file, text);
  return root;
}

/** The text of a configuration file; a ConfigError naming the file and the errno when it cannot be read. */
export function readConfigFile(file: string, readFile: (file: string) => string = defaultReadFile): string {
  try {
    return readFile(file);
  } catch (err) {
    throw new ConfigError([{ where: file, message: `cannot read configuration file: ${errnoOf(err) ?? String(err)}` }], {
      cause: err,
    });
  }
}

/** Reads and parses a Config::General file (see parseConfigGeneral). */
export function parseConfigGeneralFile(file: string, options: ConfigGeneralOptions = {}): ConfigBlock {
  return parseConfigGeneral(readConfigFile(file, options.readFile), file, options);
}

/**
 * The tree as plain data, as Config::General's `getall` returns it: a value or block given once is
 * itself, given several times an array; blocks are objects and scalars strings.
 */
export function configToPlain(block: ConfigBlock): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  for (const [key, nodes] of block.entries) {
    const values = nodes.map((n) => (n.kind === 'scalar' ? n.value : configToPlain(n)));
    out[key] = values.length === 1 ? values[0] : values;
  }
  return out;
}
