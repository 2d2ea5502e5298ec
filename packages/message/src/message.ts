import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { type Compression, compress, DECOMPRESSION_ORDER, decompress, isCompression } from './codecs';
import { MessageError } from './errors';
import { type Json, type JsonObject, parseJson, pyJsonString } from './json';

export interface MessageInit {
  /** String pairs; a Map or an array of pairs keeps any insertion order (an object puts integer-like keys first). */
  header?: Record<string, string> | Map<string, string> | Iterable<readonly [string, string]>;
  /** A string is a text body, bytes a binary one. Default: empty binary. */
  body?: Buffer | Uint8Array | string;
  /** Overrides what the body type implies: text with bytes decodes them as UTF-8, binary with a string encodes it. */
  text?: boolean;
}

export interface SerializeOptions {
  compression?: Compression;
}

const TOKENS = new Set(['base64', 'utf8', 'lz4', 'snappy', 'zlib']);
const utf8Strict = new TextDecoder('utf-8', { fatal: true });
/** python-messaging base64s a binary body whose UTF-8 text has any character in U+0000-U+001F or U+007F-U+00FF. */
function needsBase64(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x1f || (c >= 0x7f && c <= 0xff)) return true;
  }
  return false;
}

function decodeUtf8(bytes: Buffer, what: string): string {
  try {
    return utf8Strict.decode(bytes);
  } catch (err) {
    throw new MessageError('ERR_MESSAGE_UTF8', `invalid UTF-8 in ${what}`, { cause: err });
  }
}

function encodeUtf8(s: string, what: string): Buffer {
  if (!s.isWellFormed()) throw new MessageError('ERR_MESSAGE_UTF8', `${what} has a lone surrogate: not encodable as UTF-8`);
  return Buffer.from(s, 'utf8');
}

/** Python's base64.b64decode (non-strict): characters outside the alphabet are skipped; padding must add up. */
function decodeBase64(s: string): Buffer {
  // The usual case, canonical base64, skips the clean-up pass.
  // Canonical base64 is what encodes back to itself (Node's decoder would also take the URL-safe alphabet and skip
  // what it does not know, so its output alone proves nothing).
  if (s.length % 4 === 0) {
    const b = Buffer.from(s, 'base64');
    if (b.toString('base64') === s) return b;
  }
  const kept = s.replace(/[^A-Za-z0-9+/=]/g, '');
  const pad = kept.indexOf('=');
  const data = pad < 0 ? kept : kept.slice(0, pad);
  const tail = pad < 0 ? '' : kept.slice(pad);
  const rest = data.length % 4;
  if (rest === 1 || /[^=]/.test(tail) || (rest !== 0 && tail.length < 4 - rest)) {
    throw new MessageError('ERR_MESSAGE_BASE64', 'invalid base64 body');
  }
  return Buffer.from(data, 'base64');
}

function codePointLength(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n;
}

function codePointCompare(a: string, b: string): number {
  // Python sorts str by code point; JS `<` compares UTF-16 units, which differs above U+FFFF.
  const x = Array.from(a, (c) => c.codePointAt(0) as number);
  const y = Array.from(b, (c) => c.codePointAt(0) as number);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = (x[i] as number) - (y[i] as number);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function md5hex(data: Buffer | string): string {
  return createHash('md5').update(data).digest('hex');
}

function truthy(v: Json | undefined): boolean {
  // Python's bool() of a JSON value.
  if (v === undefined || v === null || v === false || v === 0 || v === '' || Number.isNaN(v)) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof Map) return v.size > 0;
  return true;
}

/**
 * A message: a header of string pairs and a text or binary body, with python-messaging 1.2's
 * serialization (byte for byte), md5() and size(). Immutable: derive new messages with `with()`.
 */
export class Message {
  readonly body: Buffer | string;
  readonly text: boolean;
  private readonly pairs: Map<string, string>;

  constructor(init: MessageInit = {}) {
    const { header, body, text } = init;
    this.pairs = new Map();
    if (header !== undefined && header !== null) {
      const entries =
        header instanceof Map || Symbol.iterator in Object(header)
          ? (header as Iterable<readonly [string, string]>)
          : Object.entries(header as Record<string, string>);
      for (const [k, v] of entries) {
        if (typeof k !== 'string' || typeof v !== 'string') {
          throw new MessageError('ERR_MESSAGE_INVALID', `invalid header ${JSON.stringify(k)}: names and values must be strings`);
        }
        this.pairs.set(k, v);
      }
    }
    let b: Buffer | string;
    if (body === undefined || body === null) b = Buffer.alloc(0);
    else if (typeof body === 'string') b = body;
    else if (Buffer.isBuffer(body)) b = body;
    else if (body instanceof Uint8Array) b = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    else throw new MessageError('ERR_MESSAGE_INVALID', 'invalid body: not a string, Buffer or Uint8Array');
    if (text === true && typeof b !== 'string') b = decodeUtf8(b, 'text body');
    if (text === false && typeof b === 'string') b = encodeUtf8(b, 'body');
    this.body = b;
    this.text = typeof b === 'string';
  }

  /** The header as an object (a copy). */
  get header(): Record<string, string> {
    return Object.fromEntries(this.pairs);
  }

  /** The header pairs in insertion order. */
  headerEntries(): [string, string][] {
    return [...this.pairs];
  }

  getHeader(name: string): string | undefined {
    return this.pairs.get(name);
  }

  /** A new message with some parts replaced. */
  with(init: MessageInit): Message {
    return new Message({
      header: init.header ?? this.pairs,
      body: init.body ?? this.body,
      text: init.text ?? (init.body === undefined ? this.text : undefined),
    });
  }

  /** The JSON text python-messaging's stringify() writes. */
  stringify(options: SerializeOptions = {}): string {
    const compression = options.compression;
    if (compression !== undefined && !isCompression(compression)) {
      throw new MessageError('ERR_MESSAGE_ENCODING', `unsupported compression: ${String(compression)}`);
    }
    const parts: string[] = [];
    if (this.pairs.size > 0) {
      const h = [...this.pairs].map(([k, v]) => `${pyJsonString(k)}: ${pyJsonString(v)}`);
      parts.push(`"header": {${h.join(', ')}}`);
    }
    // An empty body is not written at all: so an empty text body loses its text flag, as in python-messaging.
    if (this.body.length > 0) {
      const tokens: string[] = [];
      let body: string;
      if (typeof this.body === 'string') {
        body = this.body;
        if (compression !== undefined) {
          const encoded = encodeUtf8(this.body, 'text body');
          const squeezed = this.squeeze(encoded, compression);
          if (squeezed !== undefined) {
            tokens.push('utf8', compression);
            body = this.maybeBase64(squeezed, tokens);
          }
        }
      } else {
        let bytes = this.body;
        if (compression !== undefined) {
          const squeezed = this.squeeze(bytes, compression);
          if (squeezed !== undefined) {
            tokens.push(compression);
            bytes = squeezed;
          }
        }
        body = this.maybeBase64(bytes, tokens);
      }
      parts.push(`"body": ${pyJsonString(body)}`);
      if (this.text) parts.push('"text": true');
      if (tokens.length > 0) parts.push(`"encoding": "${tokens.join('+')}"`);
    }
    return `{${parts.join(', ')}}`;
  }

  /** The bytes python-messaging's serialize() writes: pure ASCII JSON. */
  serialize(options: SerializeOptions = {}): Buffer {
    return Buffer.from(this.stringify(options), 'latin1');
  }

  /** Compressed bytes if the body is at least 255 bytes and they are under 90 % of it, as python-messaging decides. */
  private squeeze(data: Buffer, compression: Compression): Buffer | undefined {
    if (data.length < 255) return undefined;
    const c = compress(compression, data);
    return c.length / data.length < 0.9 ? c : undefined;
  }

  private maybeBase64(bytes: Buffer, tokens: string[]): string {
    // isUtf8 first: most binary bodies are not UTF-8, and a failing strict decode costs an exception each.
    let s: string | undefined;
    if (isUtf8(bytes)) {
      try {
        s = utf8Strict.decode(bytes);
      } catch {
        s = undefined;
      }
    }
    if (s === undefined || needsBase64(s)) {
      tokens.push('base64');
      return bytes.toString('base64');
    }
    return s;
  }

  /** Reads what python-messaging or Perl Messaging::Message serialized; anything else is a MessageError. */
  static deserialize(data: Buffer | Uint8Array | string): Message {
    const text =
      typeof data === 'string' ? data : decodeUtf8(Buffer.from(data.buffer, data.byteOffset, data.byteLength), 'message');
    return Message.dejsonify(parseJson(text));
  }

  /** Builds a message from its JSON object form (python-messaging's dejsonify). */
  static dejsonify(obj: Json): Message {
    if (!(obj instanceof Map)) throw new MessageError('ERR_MESSAGE_INVALID', 'invalid message: not a JSON object');
    const header = obj.get('header') ?? new Map();
    if (!(header instanceof Map)) throw new MessageError('ERR_MESSAGE_INVALID', 'invalid message: header is not an object');
    const pairs: [string, string][] = [];
    for (const [k, v] of header as JsonObject) {
      if (typeof v !== 'string')
        throw new MessageError('ERR_MESSAGE_INVALID', `invalid message: header ${JSON.stringify(k)} is not a string`);
      pairs.push([k, v]);
    }
    const rawBody = obj.get('body');
    if (rawBody !== undefined && typeof rawBody !== 'string') {
      throw new MessageError('ERR_MESSAGE_INVALID', 'invalid message: body is not a string');
    }
    let body: Buffer | string = rawBody ?? Buffer.alloc(0);
    const isText = truthy(obj.get('text'));
    const encoding = obj.get('encoding');
    if (truthy(encoding)) {
      if (typeof encoding !== 'string')
        throw new MessageError('ERR_MESSAGE_ENCODING', 'invalid message: encoding is not a string');
      const tokens = new Set(encoding.split('+'));
      for (const t of tokens) {
        if (!TOKENS.has(t)) throw new MessageError('ERR_MESSAGE_ENCODING', `decoding not supported: ${JSON.stringify(t)}`);
      }
      let bytes: Buffer;
      if (tokens.has('base64')) {
        const b64 = typeof body === 'string' ? body : body.toString('latin1');
        // Python's b64decode refuses a str with non-ASCII characters before anything else.
        if (Buffer.byteLength(b64, 'utf8') !== b64.length)
          throw new MessageError('ERR_MESSAGE_BASE64', 'invalid base64 body: non-ASCII');
        bytes = decodeBase64(b64);
      } else {
        bytes = typeof body === 'string' ? encodeUtf8(body, 'body') : body;
      }
      for (const c of DECOMPRESSION_ORDER) if (tokens.has(c)) bytes = decompress(c, bytes);
      body = tokens.has('utf8') ? decodeUtf8(bytes, 'body') : bytes;
    }
    if (isText && typeof body !== 'string') body = decodeUtf8(body, 'text body');
    if (!isText && typeof body === 'string') body = encodeUtf8(body, 'body');
    return new Message({ header: pairs, body });
  }

  /**
   * Why the message cannot be written as UTF-8 (a STOMP frame, AMQP strings, md5), or undefined if it can: a lone
   * surrogate in a header name or value, or in a text body. The JSON form keeps such a string (python-messaging does);
   * an encoder must refuse it with this reason rather than let UTF-8 encoding replace it with U+FFFD.
   */
  utf8Problem(): string | undefined {
    for (const [k, v] of this.pairs) {
      if (!k.isWellFormed() || !v.isWellFormed())
        return `header ${JSON.stringify(k.toWellFormed())} has a lone surrogate: not encodable as UTF-8`;
    }
    if (typeof this.body === 'string' && !this.body.isWellFormed())
      return 'text body has a lone surrogate: not encodable as UTF-8';
    return undefined;
  }

  /** python-messaging's md5(): of the text flag, the sorted header and the body. */
  md5(): string {
    const keys = [...this.pairs.keys()].sort(codePointCompare);
    const h = md5hex(encodeUtf8(keys.map((k) => `${k}:${this.pairs.get(k)}\n`).join(''), 'header'));
    const b = md5hex(typeof this.body === 'string' ? encodeUtf8(this.body, 'body') : this.body);
    return md5hex(`${this.text ? '1' : '0'}${h}${b}`);
  }

  /** python-messaging's size(): body length (characters of text, bytes of binary) + 1, + each header's lengths + 2. */
  size(): number {
    let n = (typeof this.body === 'string' ? codePointLength(this.body) : this.body.length) + 1;
    for (const [k, v] of this.pairs) n += codePointLength(k) + codePointLength(v) + 2;
    return n;
  }

  /** Same text flag, body and header (names and values; order does not matter). */
  equals(other: Message): boolean {
    if (this.text !== other.text || this.pairs.size !== other.pairs.size) return false;
    if (
      typeof this.body === 'string' ? this.body !== other.body : !Buffer.isBuffer(other.body) || !this.body.equals(other.body)
    ) {
      return false;
    }
    for (const [k, v] of this.pairs) if (other.pairs.get(k) !== v) return false;
    return true;
  }
}
