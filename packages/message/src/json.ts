import { MessageError } from './errors';

/** A parsed JSON value. Objects are Maps: JSON.parse would move integer-like keys ("42") to the front. */
export type Json = string | number | boolean | null | Json[] | JsonObject;
export type JsonObject = Map<string, Json>;

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
/** Characters a JSON string can hold as they are: anything but the quote, the backslash and control characters. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what it excludes
const PLAIN_RUN = /[^"\\\u0000-\u001f]*/y;

/**
 * Parses JSON as Python's json.loads does: key order kept (a repeated key keeps its first place and
 * takes its last value), NaN/Infinity/-Infinity accepted, control characters in strings refused.
 */
export function parseJson(text: string): Json {
  let i = 0;
  const fail = (what: string): never => {
    throw new MessageError('ERR_MESSAGE_JSON', `invalid JSON: ${what} at offset ${i}`);
  };
  const ws = () => {
    while (i < text.length && WS.has(text.charCodeAt(i))) i++;
  };
  const literal = (word: string, value: Json): Json => {
    if (text.startsWith(word, i)) {
      i += word.length;
      return value;
    }
    return fail('unexpected token');
  };
  const str = (): string => {
    i++; // opening quote
    let out = '';
    let start = i;
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(start, i);
        i++;
        return out;
      }
      if (c < 0x20) fail('control character in string');
      if (c !== 0x5c) {
        // A run of plain characters (a whole base64 body, usually) in one native scan.
        PLAIN_RUN.lastIndex = i + 1;
        PLAIN_RUN.test(text);
        i = PLAIN_RUN.lastIndex;
        continue;
      }
      out += text.slice(start, i);
      const e = text[i + 1];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          const hex = text.slice(i + 2, i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape');
          out += String.fromCharCode(Number.parseInt(hex, 16));
          i += 4;
          break;
        }
        default:
          fail('bad escape');
      }
      i += 2;
      start = i;
    }
  };
  const num = (): number => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (m === null) return fail('bad number');
    i += m[0].length;
    return Number(m[0]);
  };
  const value = (depth: number): Json => {
    if (depth > 512) fail('nesting too deep');
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: JsonObject = new Map();
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a key');
        const k = str();
        ws();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        obj.set(k, value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const arr: Json[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return str();
    if (c === 't') return literal('true', true);
    if (c === 'f') return literal('false', false);
    if (c === 'n') return literal('null', null);
    if (c === 'N') return literal('NaN', Number.NaN);
    if (c === 'I') return literal('Infinity', Number.POSITIVE_INFINITY);
    if (c === '-' && text.startsWith('-Infinity', i)) return literal('-Infinity', Number.NEGATIVE_INFINITY);
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return num();
    return fail(c === undefined ? 'unexpected end' : 'unexpected token');
  };
  const v = value(0);
  ws();
  if (i !== text.length) fail('extra data');
  return v;
}

const NAMED: Record<number, string> = { 34: '\\"', 92: '\\\\', 10: '\\n', 13: '\\r', 9: '\\t', 8: '\\b', 12: '\\f' };
// Everything but ' '..'~' (less '"' and '\\') is escaped, as Python's ensure_ascii encoder does.
const NEEDS_ESCAPE = /[^ !#-[\]-~]/g;

function escapeUnit(ch: string): string {
  const c = ch.charCodeAt(0);
  return NAMED[c] ?? `\\u${c.toString(16).padStart(4, '0')}`;
}

/** A JSON string exactly as Python's json.dumps (ensure_ascii) writes it: `\uXXXX` in lowercase, surrogate pairs above U+FFFF. */
export function pyJsonString(s: string): string {
  return `"${s.replace(NEEDS_ESCAPE, escapeUnit)}"`;
}
