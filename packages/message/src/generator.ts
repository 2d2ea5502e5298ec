import { createHash, randomBytes } from 'node:crypto';
import { MessageError } from './errors';
import { Message } from './message';

/**
 * A test-data message generator covering both python-messaging 1.2's `messaging.generator.Generator` and Perl's
 * `Messaging::Message::Generator`, with one camelCase options object.
 *
 * | GeneratorOptions     | python (`Generator(**kw)`)  | Perl (`->new(...)`)      | default here                   |
 * |----------------------|-----------------------------|--------------------------|--------------------------------|
 * | `bodyContent`        | `body_content`              | -                        | `'index'` (unless bodyEntropy) |
 * | `bodyEntropy`        | -                           | `body-entropy`           | none (python mode)             |
 * | `bodySize`           | `body_size`                 | `body-length`            | none (python: the index)       |
 * | `text`               | (implied by body_content)   | `text`                   | implied / false with entropy   |
 * | `headerCount`        | `header_count`              | `header-count`           | 0                              |
 * | `headerNamePrefix`   | `header_name_prefix`        | `header-name-prefix`     | `'rnd-'`                       |
 * | `headerNameSize`     | `header_name_size`          | `header-name-length`     | -16                            |
 * | `headerNameEntropy`  | (base64url)                 | `header-name-entropy`    | 2 (base64url, as python)       |
 * | `headerValuePrefix`  | -                           | `header-value-prefix`    | `''`                           |
 * | `headerValueSize`    | `header_value_size`         | `header-value-length`    | -32                            |
 * | `headerValueEntropy` | (hex, rndstr in practice)   | `header-value-entropy`   | 1 (hex, as python)             |
 * | `seed`               | -                           | -                        | random                         |
 *
 * The defaults are python's; Perl's are all 0 or `''`, so a Perl set-up should spell them out.
 * `Generator.fromKeywords()` accepts the python and Perl spellings and maps them to these names.
 */

/** The python-messaging `body_content` values. */
export type BodyContent = 'index' | 'text' | 'binary' | 'base64';

/**
 * An integer (a size or a count):
 * - `n` (number or string) ≥ 0: exactly n;
 * - `-n` (number or string): python's randomisation, Irwin-Hall `int(Σ12 U(0,1) · n/6 + 0.5)`, 0..2n around n;
 * - `'X-Y'`: Perl's discrete uniform distribution between X and Y, bounds included;
 * - `'X^Y'`: Perl's pseudo-normal distribution, `X + int(Σ12 U(0,1) · (Y-X+1)/12)`, X..Y.
 */
export type IntSpec = number | string;

/**
 * Perl's entropy classes: 0 one repeated character (A-Z), 1 lowercase hex, 2 base64url, 3 printable ASCII,
 * 4 random bytes for a binary body and Unicode text otherwise, `'unicode'` Unicode text (UTF-8 for a binary body).
 * Integer specs (`'1-4'`, `'0^3'`) pick a class per string, as in Perl.
 */
export type EntropySpec = 0 | 1 | 2 | 3 | 4 | 'unicode' | string;

/** Perl's `text`: 0 never, 1 always, `'0-1'` one or the other at random (per message). */
export type TextSpec = boolean | 0 | 1 | '0' | '1' | '0-1';

export interface GeneratorOptions {
  /** python `body_content`: index (`"%d" % i`, ignores the size), text (hex text), binary (hex bytes), base64 (text). */
  bodyContent?: BodyContent;
  /** Perl `body-entropy`: switches to Perl's body generation (exclusive with `bodyContent`). */
  bodyEntropy?: EntropySpec;
  /** python `body_size` / Perl `body-length`, in characters (text) or bytes (binary). */
  bodySize?: IntSpec;
  /** Perl `text`; also overrides the type python's `body_content` implies. */
  text?: TextSpec;
  /** python `header_count` / Perl `header-count`. Equal names collapse into one header, as in both originals. */
  headerCount?: IntSpec;
  headerNamePrefix?: string;
  /** python `header_name_size` / Perl `header-name-length` (prefix not included). */
  headerNameSize?: IntSpec;
  headerNameEntropy?: EntropySpec;
  headerValuePrefix?: string;
  /** python `header_value_size` / Perl `header-value-length` (prefix not included). */
  headerValueSize?: IntSpec;
  headerValueEntropy?: EntropySpec;
  /** Seed of the generator's PRNG (xoshiro128**): the same seed and options give the same messages. */
  seed?: number | string;
}

/** Refuses sizes that would not fit in memory anyway; a typo like `1e12` gets a clear message instead of a crash. */
const MAX_SIZE = 1 << 30;
const MAX_COUNT = 1_000_000;

const OPTION_NAMES: readonly (keyof GeneratorOptions)[] = [
  'bodyContent',
  'bodyEntropy',
  'bodySize',
  'text',
  'headerCount',
  'headerNamePrefix',
  'headerNameSize',
  'headerNameEntropy',
  'headerValuePrefix',
  'headerValueSize',
  'headerValueEntropy',
  'seed',
];

/** python (snake_case) and Perl (kebab-case) option names, and kebab-case forms of the camelCase ones. */
const ALIASES: Readonly<Record<string, keyof GeneratorOptions>> = {
  body_content: 'bodyContent',
  body_size: 'bodySize',
  header_count: 'headerCount',
  header_name_prefix: 'headerNamePrefix',
  header_name_size: 'headerNameSize',
  header_value_size: 'headerValueSize',
  'body-content': 'bodyContent',
  'body-size': 'bodySize',
  'body-length': 'bodySize',
  'body-entropy': 'bodyEntropy',
  'header-count': 'headerCount',
  'header-name-prefix': 'headerNamePrefix',
  'header-name-size': 'headerNameSize',
  'header-name-length': 'headerNameSize',
  'header-name-entropy': 'headerNameEntropy',
  'header-value-prefix': 'headerValuePrefix',
  'header-value-size': 'headerValueSize',
  'header-value-length': 'headerValueSize',
  'header-value-entropy': 'headerValueEntropy',
};

type Dist =
  | { kind: 'exact'; n: number }
  | { kind: 'irwin-hall'; n: number }
  | { kind: 'uniform'; min: number; max: number }
  | { kind: 'normal'; min: number; max: number };

type CharClass = 'same' | 'hex' | 'base64url' | 'base64' | 'printable' | 'random' | 'unicode';

type EntropyDist = { kind: 'fixed'; cls: 'unicode' } | { kind: 'int'; dist: Dist };

interface Plan {
  mode: 'python' | 'perl';
  content: BodyContent;
  body?: Dist;
  bodyEntropy?: EntropyDist;
  text?: Dist;
  headerCount: Dist;
  namePrefix: string;
  nameSize: Dist;
  nameEntropy: EntropyDist;
  valuePrefix: string;
  valueSize: Dist;
  valueEntropy: EntropyDist;
}

/**
 * Unicode sample for the `unicode` class (Perl embeds Markus Kuhn's UTF-8 demo; this is a shorter text of our own
 * with the same kinds of scripts, plus characters beyond the BMP so that surrogate pairs get exercised).
 */
const UNICODE_SAMPLE = Array.from(
  [
    'Déjà vu, naïve façade, smörgåsbord, Ærøskøbing, Łódź, Dvořák, Ελληνικά: Σὲ γνωρίζω ἀπὸ τὴν κόψη, ',
    'русский: съешь же ещё этих мягких французских булок, да выпей чаю, ქართული ენა, Հայերեն, ',
    'עברית, العربية, हिन्दी भाषा, বাংলা, ภาษาไทย เป็นภาษาราชการ, ግዕዝ ፊደል, ᚠᛇᚻ᛫ᛒᛦᚦ, ⠓⠑⠇⠇⠕, ',
    '日本語の文章、中文字符、한국어 문장, ∮ E⋅da = Q, n → ∞, ∑ f(i) = ∏ g(i), ∀x∈ℝ: ⌈x⌉ = −⌊−x⌋, ',
    '╔══╦══╗ ║▓▒░║ ╚══╩══╝ € £ ¥ ₹ © ® ™ … “quotes” ‘single’ — – • ☺ ☃ ♥ ✓ ',
    '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐛𝐨𝐥𝐝 😀 🚀 🎉 👍🏽 𓂀 𐍈 ',
  ].join(''),
);

/** xoshiro128**: small, fast, good enough for test data, and reproducible from a seed. */
class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number | string | undefined) {
    const state =
      seed === undefined
        ? randomBytes(16)
        : createHash('sha256')
            .update(`msgbricks-generator:${String(seed)}`)
            .digest();
    this.a = state.readUInt32LE(0);
    this.b = state.readUInt32LE(4);
    this.c = state.readUInt32LE(8);
    this.d = state.readUInt32LE(12);
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** A uniform 32-bit unsigned integer. */
  next(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** U(0,1), like python's random.random() (32 bits of resolution is plenty here). */
  random(): number {
    return this.next() / 4294967296;
  }

  /** Uniform integer in 0..n-1. */
  below(n: number): number {
    return Math.floor(this.random() * n);
  }

  bytes(n: number): Buffer {
    const buf = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) buf.writeUInt32LE(this.next(), i);
    if (i < n) {
      let r = this.next();
      for (; i < n; i++, r >>>= 8) buf[i] = r & 0xff;
    }
    return buf;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export class Generator {
  /** The index of the next message of `bodyContent: 'index'` (starts at 0, as python-messaging's does). */
  index = 0;
  private readonly plan: Plan;
  private readonly rng: Prng;

  constructor(options: GeneratorOptions = {}) {
    this.plan = compile(options);
    this.rng = new Prng(options.seed);
  }

  /**
   * Maps python (`body_size`) and Perl (`body-length`) option names, and kebab-case forms of ours
   * (`header-value-prefix`), to GeneratorOptions. Unknown names and an option given under two names are
   * reported with the other problems, by the constructor, in one error.
   */
  static fromKeywords(keywords: Record<string, unknown>): GeneratorOptions {
    const out: Record<string, unknown> = {};
    const problems: string[] = [];
    const seen = new Map<string, string>();
    for (const [key, value] of Object.entries(keywords)) {
      if (value === undefined) continue;
      const name = ALIASES[key] ?? key;
      const previous = seen.get(name);
      if (previous !== undefined) {
        problems.push(`${name}: given twice (${previous} and ${key})`);
        continue;
      }
      seen.set(name, key);
      out[name] = value;
    }
    if (problems.length > 0) {
      // Let the constructor add whatever else is wrong, so the caller still gets every problem at once.
      try {
        compile(out as GeneratorOptions);
      } catch (err) {
        if (err instanceof GeneratorOptionsError) problems.push(...err.problems);
      }
      throw new GeneratorOptionsError(problems);
    }
    return out as GeneratorOptions;
  }

  /** The next message. */
  message(): Message {
    const p = this.plan;
    const body = p.mode === 'perl' ? this.perlBody() : this.pythonBody();
    const header: [string, string][] = [];
    const count = this.int(p.headerCount);
    for (let i = 0; i < count; i++) {
      const name = p.namePrefix + this.string(this.int(p.nameSize), this.entropy(p.nameEntropy), true);
      const value = p.valuePrefix + this.string(this.int(p.valueSize), this.entropy(p.valueEntropy), true);
      header.push([name, value]);
    }
    this.index++;
    return new Message({ header, body });
  }

  private textFlag(implied: boolean): boolean {
    return this.plan.text === undefined ? implied : this.int(this.plan.text) !== 0;
  }

  private pythonBody(): string | Buffer {
    const p = this.plan;
    const size = p.body === undefined ? undefined : this.int(p.body);
    let body: string | Buffer;
    if (size === 0) {
      body = Buffer.alloc(0); // python: body_size 0 gives b'' whatever the content
    } else if (size === undefined || p.content === 'index') {
      body = String(this.index);
    } else if (p.content === 'base64') {
      body = this.string(size, 'base64', true);
    } else {
      body = this.string(size, 'hex', p.content === 'text');
    }
    if (p.text === undefined) return body;
    const text = this.textFlag(typeof body === 'string');
    if (text) return typeof body === 'string' ? body : body.toString('latin1');
    return typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  }

  private perlBody(): string | Buffer {
    const p = this.plan;
    const text = this.textFlag(false);
    const size = p.body === undefined ? 0 : this.int(p.body);
    const cls = p.bodyEntropy === undefined ? 'same' : this.entropy(p.bodyEntropy);
    return this.string(size, cls, text);
  }

  private int(d: Dist): number {
    switch (d.kind) {
      case 'exact':
        return d.n;
      case 'irwin-hall':
        return Math.floor((this.sum12() * d.n) / 6 + 0.5);
      case 'uniform':
        return d.min + this.rng.below(d.max - d.min + 1);
      case 'normal':
        return Math.min(d.max, d.min + Math.floor((this.sum12() * (d.max - d.min + 1)) / 12));
    }
  }

  private sum12(): number {
    let s = 0;
    for (let i = 0; i < 12; i++) s += this.rng.random();
    return s;
  }

  private entropy(e: EntropyDist): CharClass {
    if (e.kind === 'fixed') return e.cls;
    const n = this.int(e.dist);
    return n <= 0 ? 'same' : n === 1 ? 'hex' : n === 2 ? 'base64url' : n === 3 ? 'printable' : 'random';
  }

  /**
   * `size` characters (text) or bytes (binary) of a class. `random` is bytes for binary and Unicode for text
   * (Perl's entropy 4). Binary `unicode` is whole UTF-8 characters, space-padded to exactly `size` bytes.
   */
  private string(size: number, cls: CharClass, text: true): string;
  private string(size: number, cls: CharClass, text: boolean): string | Buffer;
  private string(size: number, cls: CharClass, text: boolean): string | Buffer {
    if (size <= 0) return text ? '' : Buffer.alloc(0);
    if (cls === 'random' && !text) return this.rng.bytes(size);
    if (cls === 'random' || cls === 'unicode') {
      const s = this.unicode(size);
      if (text) return s;
      const buf = Buffer.alloc(size, 0x20);
      let used = 0;
      for (const ch of s) {
        const n = Buffer.byteLength(ch);
        if (used + n > size) break;
        buf.write(ch, used, 'utf8');
        used += n;
      }
      return buf;
    }
    let ascii: string;
    switch (cls) {
      case 'same':
        ascii = String.fromCharCode(65 + this.rng.below(26)).repeat(size);
        break;
      case 'hex':
        ascii = this.rng
          .bytes(Math.ceil(size / 2))
          .toString('hex')
          .slice(0, size);
        break;
      case 'base64url':
      case 'base64':
        ascii = this.rng
          .bytes(Math.ceil((size * 3) / 4) + 1)
          .toString(cls)
          .slice(0, size);
        break;
      case 'printable': {
        const buf = Buffer.allocUnsafe(size);
        for (let i = 0; i < size; i++) buf[i] = 32 + this.rng.below(95);
        ascii = buf.toString('latin1');
        break;
      }
    }
    return text ? ascii : Buffer.from(ascii, 'latin1');
  }

  /** `size` code points: runs of 1..64 consecutive characters of the sample from random places, as Perl does. */
  private unicode(size: number): string {
    const parts: string[] = [];
    let n = 0;
    while (n < size) {
      const start = this.rng.below(UNICODE_SAMPLE.length);
      const len = Math.min(1 + this.rng.below(64), size - n, UNICODE_SAMPLE.length - start);
      parts.push(UNICODE_SAMPLE.slice(start, start + len).join(''));
      n += len;
    }
    return parts.join('');
  }
}

/** The error the constructor throws: every problem found, in one message and as `problems`. */
class GeneratorOptionsError extends MessageError {
  readonly problems: readonly string[];

  constructor(problems: string[]) {
    super('ERR_MESSAGE_GENERATOR', `invalid generator options: ${problems.join('; ')}`);
    this.name = 'MessageError';
    this.problems = problems;
  }
}

function compile(options: GeneratorOptions): Plan {
  const problems: string[] = [];
  if (options === null || typeof options !== 'object') throw new GeneratorOptionsError(['options must be an object']);
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (o[key] === undefined || (OPTION_NAMES as readonly string[]).includes(key)) continue;
    const alias = ALIASES[key];
    problems.push(alias === undefined ? `${key}: unknown option` : `${key}: unknown option (did you mean ${alias}?)`);
  }

  const intSpec = (name: keyof GeneratorOptions, max: number, fallback?: IntSpec): Dist | undefined => {
    const v = o[name] ?? fallback;
    if (v === undefined) return undefined;
    const d = parseIntSpec(v);
    if (typeof d === 'string') {
      problems.push(`${name}: ${d}: ${JSON.stringify(v)}`);
      return undefined;
    }
    const hi = d.kind === 'exact' ? d.n : d.kind === 'irwin-hall' ? 2 * d.n : d.max;
    if (hi > max) {
      problems.push(`${name}: at most ${max}: ${JSON.stringify(v)}`);
      return undefined;
    }
    return d;
  };
  const entropySpec = (name: keyof GeneratorOptions, fallback: number): EntropyDist | undefined => {
    const v = o[name] ?? fallback;
    if (v === 'unicode') return { kind: 'fixed', cls: 'unicode' };
    const d = parseIntSpec(v);
    if (typeof d === 'string' || d.kind === 'irwin-hall') {
      problems.push(`${name}: expected 0..4, 'unicode' or an X-Y / X^Y range of them: ${JSON.stringify(v)}`);
      return undefined;
    }
    if ((d.kind === 'exact' ? d.n : d.max) > 4) {
      problems.push(`${name}: at most 4: ${JSON.stringify(v)}`);
      return undefined;
    }
    return { kind: 'int', dist: d };
  };
  const prefix = (name: keyof GeneratorOptions, fallback: string): string => {
    const v = o[name] ?? fallback;
    if (typeof v === 'string') return v;
    problems.push(`${name}: expected a string: ${JSON.stringify(v)}`);
    return fallback;
  };

  const content = o.bodyContent ?? 'index';
  if (!['index', 'text', 'binary', 'base64'].includes(content as string)) {
    problems.push(`bodyContent: expected index, text, binary or base64: ${JSON.stringify(content)}`);
  }
  if (o.bodyContent !== undefined && o.bodyEntropy !== undefined) {
    problems.push('bodyContent and bodyEntropy: give one or the other (python or Perl body)');
  }
  let text: Dist | undefined;
  if (o.text !== undefined) {
    const t = o.text;
    if (t === true || t === 1 || t === '1') text = { kind: 'exact', n: 1 };
    else if (t === false || t === 0 || t === '0') text = { kind: 'exact', n: 0 };
    else if (t === '0-1') text = { kind: 'uniform', min: 0, max: 1 };
    else problems.push(`text: expected true, false, 0, 1 or '0-1': ${JSON.stringify(t)}`);
  }
  const seed = o.seed;
  if (seed !== undefined && !(typeof seed === 'string' || (typeof seed === 'number' && Number.isSafeInteger(seed)))) {
    problems.push(`seed: expected an integer or a string: ${JSON.stringify(seed)}`);
  }

  const plan: Plan = {
    mode: o.bodyEntropy === undefined ? 'python' : 'perl',
    content: content as BodyContent,
    body: intSpec('bodySize', MAX_SIZE),
    bodyEntropy: o.bodyEntropy === undefined ? undefined : entropySpec('bodyEntropy', 0),
    text,
    headerCount: intSpec('headerCount', MAX_COUNT, 0) ?? { kind: 'exact', n: 0 },
    namePrefix: prefix('headerNamePrefix', 'rnd-'),
    nameSize: intSpec('headerNameSize', MAX_SIZE, -16) ?? { kind: 'exact', n: 0 },
    nameEntropy: entropySpec('headerNameEntropy', 2) ?? { kind: 'fixed', cls: 'unicode' },
    valuePrefix: prefix('headerValuePrefix', ''),
    valueSize: intSpec('headerValueSize', MAX_SIZE, -32) ?? { kind: 'exact', n: 0 },
    valueEntropy: entropySpec('headerValueEntropy', 1) ?? { kind: 'fixed', cls: 'unicode' },
  };
  if (problems.length > 0) throw new GeneratorOptionsError(problems);
  return plan;
}

/** Parses an IntSpec; returns the reason as a string when it is not one. */
function parseIntSpec(v: unknown): Dist | string {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) return 'expected an integer';
    return v < 0 ? { kind: 'irwin-hall', n: -v } : { kind: 'exact', n: v };
  }
  if (typeof v !== 'string') return 'expected an integer or an X-Y / X^Y string';
  const m = /^\s*(?:(-)?(\d+)|(\d+)([-^])(\d+))\s*$/.exec(v);
  if (m === null) return "expected N, -N, 'X-Y' or 'X^Y'";
  if (m[2] !== undefined) {
    const n = Number(m[2]);
    if (!Number.isSafeInteger(n)) return 'too large';
    return m[1] === '-' ? { kind: 'irwin-hall', n } : { kind: 'exact', n };
  }
  const min = Number(m[3]);
  const max = Number(m[5]);
  if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max)) return 'too large';
  if (min > max) return 'X must not exceed Y';
  return { kind: m[4] === '-' ? 'uniform' : 'normal', min, max };
}
