import { DataError } from './errors';

const ESCAPE: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n' };
const UNESCAPE: Record<string, string> = { '\\\\': '\\', '\\t': '\t', '\\n': '\n' };
const LINE_RE = /^([^\t\n]*)\t([^\t\n]*)$/;

function escapeField(s: string): string {
  return s.replace(/[\\\t\n]/g, (c) => ESCAPE[c] as string);
}

function unescapeField(s: string): string {
  // Left to right, so "\\\\t" is a backslash followed by "t"; unknown escapes stay as they are.
  return s.replace(/\\[\\tn]/g, (c) => UNESCAPE[c] as string);
}

function codePointCompare(a: string, b: string): number {
  // Python sorts str by code point; JS `<` compares UTF-16 units, which differs above U+FFFF.
  const ai = a[Symbol.iterator]();
  const bi = b[Symbol.iterator]();
  for (;;) {
    const x = ai.next();
    const y = bi.next();
    if (x.done) return y.done ? 0 : -1;
    if (y.done) return 1;
    const d = (x.value.codePointAt(0) as number) - (y.value.codePointAt(0) as number);
    if (d !== 0) return d;
  }
}

/** Serialises a table as python-dirq's `_hash2string`: sorted keys, `key TAB value LF`, escaped `\ TAB LF`. */
export function tableToString(table: Record<string, string>): string {
  const keys = Object.keys(table).sort(codePointCompare);
  let out = '';
  for (const k of keys) {
    const v = table[k];
    if (typeof v !== 'string') throw new DataError(`invalid table value for key ${JSON.stringify(k)}: not a string`);
    out += `${escapeField(k)}\t${escapeField(v)}\n`;
  }
  return out;
}

/** Parses python-dirq's table format; a malformed line is a DataError. */
export function stringToTable(text: string): Record<string, string> {
  const table: Record<string, string> = Object.create(null);
  const body = text.replace(/^\n+|\n+$/g, '');
  if (body === '') return { ...table };
  for (const line of body.split('\n')) {
    const m = LINE_RE.exec(line);
    if (m === null) throw new DataError(`unexpected hash line: ${JSON.stringify(line)}`);
    table[unescapeField(m[1] as string)] = unescapeField(m[2] as string);
  }
  return { ...table };
}
