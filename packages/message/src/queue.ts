import {
  DataError,
  InvalidOptionError,
  Queue,
  QueueError,
  QueueNull,
  type QueueOptions,
  QueueSimple,
  type QueueSimpleOptions,
} from '@msgbricks/dirq';
import { availableCodecs, type Compression, isCompression } from './codecs';
import { MessageError } from './errors';
import { Message } from './message';

/** QueueSimple's options, plus the compression `addMessage` asks `serialize` for. */
export type DQSOptions = QueueSimpleOptions & { compression?: Compression };

/** Queue's options without `schema`: a DQN's schema is always python-messaging's. */
export type DQNOptions = Omit<QueueOptions, 'schema'>;

/** python-messaging's DQN schema: `header` table, then the body as `text` (string) or `binary`. */
const DQN_SCHEMA: Readonly<Record<string, string>> = Object.freeze({ header: 'table', binary: 'binary?', text: 'string?' });

function checkCompression(compression: unknown): Compression | undefined {
  if (compression === undefined) return undefined;
  if (!isCompression(compression)) {
    throw new InvalidOptionError(`invalid compression: ${JSON.stringify(compression)} (zlib, lz4 or snappy)`);
  }
  if (!availableCodecs().includes(compression)) {
    throw new MessageError('ERR_MESSAGE_CODEC_UNAVAILABLE', `${compression} support is not installed`);
  }
  return compression;
}

/** A MessageError naming the element, keeping the original failure as `cause` and its code when it had one. */
function corrupt(path: string, err: unknown, fallbackCode: string): MessageError {
  const code = err instanceof MessageError ? err.code : fallbackCode;
  const reason = err instanceof Error ? err.message : String(err);
  return new MessageError(code, `corrupt message in element ${path}: ${reason}`, { cause: err });
}

/**
 * python-messaging's DQS: a QueueSimple whose elements are serialized messages
 * (the element file holds exactly `msg.serialize({compression})`).
 */
export class DQS extends QueueSimple {
  readonly compression: Compression | undefined;

  constructor(path: string, options: DQSOptions = {}) {
    const { compression, ...rest } = options;
    // Checked before the queue directory is created, as the other options are.
    const c = checkCompression(compression);
    super(path, rest);
    this.compression = c;
  }

  /** Adds a message; resolves to the element name. */
  async addMessage(msg: Message): Promise<string> {
    return this.add(msg.serialize(this.compression === undefined ? {} : { compression: this.compression }));
  }

  /**
   * Reads a locked element as a message. An element that is not a valid
   * serialized message rejects with a MessageError naming the element (the
   * deserializer's code, its error as `cause`); the element is left as it is.
   */
  async getMessage(name: string): Promise<Message> {
    return this.parseMessage(name, await this.get(name));
  }

  /** The message in element `name`'s bytes (as read by get() or lockGetMany()); a MessageError as getMessage's if invalid. */
  parseMessage(name: string, bytes: Buffer): Message {
    try {
      return Message.deserialize(bytes);
    } catch (err) {
      throw corrupt(`${this.path}/${name}`, err, 'ERR_MESSAGE_INVALID');
    }
  }

  /**
   * Locks (non-permissive: throws if the element is locked or gone), reads and
   * removes an element. If it cannot be read, it stays locked by the caller.
   */
  async dequeueMessage(name: string): Promise<Message> {
    await this.lock(name, false);
    const msg = await this.getMessage(name);
    await this.remove(name);
    return msg;
  }
}

/**
 * python-messaging's DQN: a Queue with the fixed schema `{header: 'table',
 * binary: 'binary?', text: 'string?'}`; the body goes to `text` for a text
 * message (even an empty one), to `binary` otherwise.
 */
export class DQN extends Queue {
  constructor(path: string, options: DQNOptions = {}) {
    if (options !== null && typeof options === 'object' && 'schema' in options) {
      throw new InvalidOptionError('unexpected option: schema (a DQN queue always has the python-messaging schema)');
    }
    super(path, { ...options, schema: { ...DQN_SCHEMA } });
  }

  /** Adds a message; resolves to the element name. */
  async addMessage(msg: Message): Promise<string> {
    const header = msg.header;
    if (msg.text) return this.add({ header, text: msg.body as string });
    return this.add({ header, binary: msg.body as Buffer });
  }

  /**
   * Reads a locked element as a message: `text` if present, else `binary`,
   * else an empty binary body. Malformed files (bad header table, invalid
   * UTF-8, no header file) reject with a MessageError naming the element.
   */
  async getMessage(name: string): Promise<Message> {
    let data: Awaited<ReturnType<Queue['get']>>;
    try {
      data = await this.get(name);
    } catch (err) {
      if (err instanceof DataError) throw corrupt(`${this.path}/${name}`, err, 'ERR_MESSAGE_INVALID');
      throw err;
    }
    const header = Object.entries(data.header as Record<string, string>);
    if (typeof data.text === 'string') return new Message({ header, body: data.text, text: true });
    if (Buffer.isBuffer(data.binary)) return new Message({ header, body: data.binary, text: false });
    return new Message({ header, body: Buffer.alloc(0), text: false });
  }

  /**
   * Locks (non-permissive: throws if the element is locked or gone), reads and
   * removes an element. If it cannot be read, it stays locked by the caller.
   */
  async dequeueMessage(name: string): Promise<Message> {
    await this.lock(name, false);
    const msg = await this.getMessage(name);
    await this.remove(name);
    return msg;
  }
}

function unsupported(method: string): never {
  throw new QueueError('ERR_DIRQ_UNSUPPORTED', `unsupported method: ${method}()`);
}

/** python-messaging's NULL queue: added messages disappear. */
export class MessageQueueNull extends QueueNull {
  async addMessage(_msg: Message): Promise<string> {
    return '';
  }
  async getMessage(_name: string): Promise<Message> {
    return unsupported('getMessage');
  }
  async dequeueMessage(_name: string): Promise<Message> {
    return unsupported('dequeueMessage');
  }
}

export type MessageQueue = DQS | DQN | MessageQueueNull;

/** What parseQueueSpec returns: the queue type, and for DQS/DQN its path and constructor options. */
type QueueSpec =
  | { type: 'DQS'; path: string; options: DQSOptions }
  | { type: 'DQN'; path: string; options: DQNOptions }
  | { type: 'NULL' };

type QueueType = QueueSpec['type'];

interface KeyRule {
  /** The queue types the key applies to (NULL accepts, checks and ignores every key). */
  types: readonly QueueType[];
  /** The option value, or a string saying what is wrong with `v`. */
  parse(v: unknown): { value: unknown } | { problem: string };
}

const DEC_RE = /^[0-9]+$/;

function integer(min: number, max: number, what: string): KeyRule['parse'] {
  return (v) => {
    const n = typeof v === 'string' && DEC_RE.test(v.trim()) ? Number(v.trim()) : typeof v === 'number' ? v : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) return { problem: `${what}` };
    return { value: n };
  };
}

const RULES: Record<string, KeyRule> = {
  path: {
    types: ['DQS', 'DQN', 'NULL'],
    parse: (v) => (typeof v === 'string' && v !== '' ? { value: v } : { problem: 'a non-empty path' }),
  },
  granularity: { types: ['DQS'], parse: integer(0, Number.MAX_SAFE_INTEGER, 'an integer >= 0 (seconds)') },
  maxelts: { types: ['DQN'], parse: integer(1, Number.MAX_SAFE_INTEGER, 'an integer >= 1') },
  rndhex: { types: ['DQS', 'DQN'], parse: integer(0, 15, 'an integer from 0 to 15') },
  umask: {
    types: ['DQS', 'DQN'],
    parse: (v) => {
      const m = typeof v === 'string' ? /^(?:0o)?([0-7]{1,4})$/i.exec(v.trim()) : null;
      const n = m !== null ? Number.parseInt(m[1] as string, 8) : typeof v === 'number' ? v : Number.NaN;
      if (!Number.isInteger(n) || n < 0 || n > 0o777) return { problem: 'an octal mode from 000 to 777' };
      return { value: n };
    },
  },
  fsync: {
    types: ['DQS', 'DQN'],
    parse: (v) => {
      if (typeof v === 'boolean') return { value: v };
      const s = typeof v === 'string' ? v.trim().toLowerCase() : typeof v === 'number' ? String(v) : '';
      if (s === 'true' || s === '1') return { value: true };
      if (s === 'false' || s === '0') return { value: false };
      return { problem: 'true, false, 1 or 0' };
    },
  },
  io: {
    types: ['DQS', 'DQN'],
    parse: (v) => (v === 'sync' || v === 'async' ? { value: v } : { problem: 'sync or async' }),
  },
  compression: {
    types: ['DQS'],
    parse: (v) => {
      if (!isCompression(v)) return { problem: 'zlib, lz4 or snappy' };
      if (!availableCodecs().includes(v)) return { problem: `${v}, whose support is not installed here` };
      return { value: v };
    },
  },
};

function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/**
 * Parses a queue description: stompclt's `"path=/var/spool/x type=DQS
 * granularity=10"` (space-separated key=value pairs) or the same keys as an
 * object (whose values may also be numbers and booleans). `type` is DQS (the
 * default), DQN or NULL, in any case; `path` is required except for NULL.
 * Every problem is reported at once, in one MessageError ERR_MESSAGE_QUEUE_SPEC.
 */
export function parseQueueSpec(spec: string | Record<string, unknown>): QueueSpec {
  const problems: string[] = [];
  const pairs: [string, unknown][] = [];
  if (typeof spec === 'string') {
    const seen = new Set<string>();
    for (const token of spec.trim().split(/\s+/)) {
      if (token === '') continue;
      const eq = token.indexOf('=');
      if (eq <= 0) {
        problems.push(`expected key=value, got ${JSON.stringify(token)}`);
        continue;
      }
      const key = token.slice(0, eq);
      if (seen.has(key)) problems.push(`duplicate key: ${key}`);
      seen.add(key);
      pairs.push([key, token.slice(eq + 1)]);
    }
  } else if (spec !== null && typeof spec === 'object' && !Array.isArray(spec)) {
    for (const [k, v] of Object.entries(spec)) if (v !== undefined) pairs.push([k, v]);
  } else {
    throw new MessageError('ERR_MESSAGE_QUEUE_SPEC', `invalid queue spec: ${show(spec)} (a string or an object)`);
  }

  let type: QueueType | undefined = 'DQS';
  const rawType = pairs.find(([k]) => k === 'type')?.[1];
  if (rawType !== undefined) {
    const t = typeof rawType === 'string' ? rawType.toUpperCase() : '';
    if (t === 'DQS' || t === 'DQN' || t === 'NULL') type = t;
    else {
      problems.push(`unknown type: ${show(rawType)} (DQS, DQN or NULL)`);
      type = undefined;
    }
  }

  const options: Record<string, unknown> = {};
  let path: string | undefined;
  for (const [key, raw] of pairs) {
    if (key === 'type') continue;
    const rule = Object.hasOwn(RULES, key) ? RULES[key] : undefined;
    if (rule === undefined) {
      problems.push(`unknown key: ${JSON.stringify(key)}`);
      continue;
    }
    const r = rule.parse(raw);
    if ('problem' in r) {
      problems.push(`invalid ${key}: ${show(raw)} (${r.problem})`);
      continue;
    }
    if (type !== undefined && !rule.types.includes(type) && type !== 'NULL') {
      problems.push(`${key} does not apply to ${type} queues`);
      continue;
    }
    if (key === 'path') path = r.value as string;
    else options[key] = r.value;
  }
  if (path === undefined && type !== 'NULL' && !pairs.some(([k]) => k === 'path')) problems.push('missing path');

  if (problems.length > 0 || type === undefined) {
    const text = typeof spec === 'string' ? JSON.stringify(spec) : 'object';
    throw new MessageError('ERR_MESSAGE_QUEUE_SPEC', `invalid queue spec ${text}: ${problems.join('; ')}`);
  }
  if (type === 'NULL') return { type };
  return { type, path: path as string, options } as QueueSpec;
}

/** Makes the queue a spec describes (see parseQueueSpec). */
export function newMessageQueue(spec: string | Record<string, unknown>): MessageQueue {
  const s = parseQueueSpec(spec);
  switch (s.type) {
    case 'DQS':
      return new DQS(s.path, s.options);
    case 'DQN':
      return new DQN(s.path, s.options);
    case 'NULL':
      return new MessageQueueNull();
  }
}
