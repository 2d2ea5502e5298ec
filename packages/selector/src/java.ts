// Java's conversions, as ActiveMQ's selector code uses them on string properties: Integer.valueOf, Long.valueOf,
// Double.valueOf, Boolean.valueOf, Double.compare and Double.toString. Each parse returns null where Java throws
// NumberFormatException (ActiveMQ then takes the comparison as false).

const INT_MIN = -2147483648;
const INT_MAX = 2147483647;
const LONG_MIN = -(2n ** 63n);
const LONG_MAX = 2n ** 63n - 1n;
const ASCII_INTEGER = /^[+-]?[0-9]+$/;
const DIGIT = /\p{Nd}/u;

/** Character.digit(c, 10) for any Unicode decimal digit (Java accepts `٥` as 5), -1 otherwise. */
function digitValue(cp: number): number {
  if (cp >= 48 && cp <= 57) return cp - 48;
  if (!DIGIT.test(String.fromCodePoint(cp))) return -1;
  // Unicode decimal digits come in runs of ten from zero; some runs follow each other (mathematical digits).
  let run = 0;
  while (DIGIT.test(String.fromCodePoint(cp - run - 1))) run++;
  return run % 10;
}

/** The ASCII form of an integer in Java's syntax (sign, then digits of any script), or null. */
function asciiInteger(s: string): string | null {
  if (ASCII_INTEGER.test(s)) return s;
  let out = '';
  let i = 0;
  if (s[0] === '+' || s[0] === '-') {
    out = s[0];
    i = 1;
  }
  if (i >= s.length) return null;
  for (const ch of s.slice(i)) {
    const d = digitValue(ch.codePointAt(0) as number);
    if (d < 0) return null;
    out += String(d);
  }
  return out;
}

/** Integer.valueOf(s). */
export function parseInt32(s: string): number | null {
  // The common case without allocation: an optional sign and up to 9 ASCII digits.
  const len = s.length;
  let i = 0;
  const c0 = s.charCodeAt(0);
  if (c0 === 45 || c0 === 43) i = 1;
  if (len > i && len - i <= 9) {
    let v = 0;
    for (; i < len; i++) {
      const d = s.charCodeAt(i) - 48;
      if (d < 0 || d > 9) return parseInt32Slow(s);
      v = v * 10 + d;
    }
    // 0 - v: "-0" is the integer 0, not a negative zero.
    return c0 === 45 ? 0 - v : v;
  }
  return parseInt32Slow(s);
}

function parseInt32Slow(s: string): number | null {
  const a = asciiInteger(s);
  if (a === null) return null;
  // Past 15 digits the value is out of range whatever they are (and parseInt would round).
  if (a.replace(/^[+-]?0*/, '').length > 15) return null;
  const n = Number.parseInt(a, 10);
  return n >= INT_MIN && n <= INT_MAX ? n : null;
}

/** Long.valueOf(s). */
export function parseInt64(s: string): bigint | null {
  const a = asciiInteger(s);
  if (a === null) return null;
  const n = BigInt(a[0] === '+' ? a.slice(1) : a);
  return n >= LONG_MIN && n <= LONG_MAX ? n : null;
}

const DECIMAL_DOUBLE = /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?$/;
const SPECIAL_DOUBLE = /^([+-]?)(NaN|Infinity)$/;
const HEX_DOUBLE = /^([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?[pP]([+-]?[0-9]+)[fFdD]?$/;
// String.trim(): every code unit up to U+0020.
// biome-ignore lint/suspicious/noControlCharactersInRegex: Java's trim() removes exactly these
const JAVA_BLANKS = /^[\x00-\x20]+|[\x00-\x20]+$/g;

/** Double.valueOf(s): blanks around are ignored, a float suffix (f, d) is allowed, and so are NaN and Infinity. */
export function parseDouble(s: string): number | null {
  const t = s.replace(JAVA_BLANKS, '');
  if (DECIMAL_DOUBLE.test(t)) return Number(/[fFdD]$/.test(t) ? t.slice(0, -1) : t);
  const special = SPECIAL_DOUBLE.exec(t);
  if (special !== null) return special[2] === 'NaN' ? Number.NaN : special[1] === '-' ? -Infinity : Infinity;
  const hex = HEX_DOUBLE.exec(t);
  if (hex !== null) {
    const [, sign, whole = '', fraction = '', exponent = '0'] = hex;
    if (whole === '' && fraction === '') return null;
    const mantissa = Number(BigInt(`0x${whole}${fraction}` === '0x' ? '0' : `0x${whole}${fraction}`));
    const value = mantissa * 2 ** (Number(exponent) - 4 * fraction.length);
    return sign === '-' ? -value : value;
  }
  return null;
}

/** Boolean.valueOf(s): true for "true" in any case, false for anything else. */
export function parseBoolean(s: string): boolean {
  return s.length === 4 && s.toLowerCase() === 'true';
}

/** Double.compare: -0.0 below 0.0, NaN equal to itself and above everything. */
export function compareDouble(a: number, b: number): number {
  if (a < b) return -1;
  if (a > b) return 1;
  if (a === b) {
    if (a !== 0) return 0;
    const na = Object.is(a, -0);
    return na === Object.is(b, -0) ? 0 : na ? -1 : 1;
  }
  const nanA = Number.isNaN(a);
  return nanA === Number.isNaN(b) ? 0 : nanA ? 1 : -1;
}

/** Double.toString (shortest digits; Java before 19 differs in the last digit for a few values). */
export function doubleToString(d: number): string {
  if (Number.isNaN(d)) return 'NaN';
  if (d === Infinity) return 'Infinity';
  if (d === -Infinity) return '-Infinity';
  if (d === 0) return Object.is(d, -0) ? '-0.0' : '0.0';
  const abs = Math.abs(d);
  if (abs >= 1e-3 && abs < 1e7) {
    const s = String(d);
    return s.includes('.') ? s : `${s}.0`;
  }
  const [mantissa = '', exponent = ''] = d.toExponential().split('e');
  return `${mantissa.includes('.') ? mantissa : `${mantissa}.0`}E${exponent.replace('+', '')}`;
}

export { INT_MAX, INT_MIN, LONG_MAX, LONG_MIN };
