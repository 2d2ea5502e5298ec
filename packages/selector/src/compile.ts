// Turns a selector's tree into closures, once: matching a message runs them, with no tree walk and no parsing of the
// selector. Every expression's kind (string, int, ...) is known here, because over STOMP every property is a string
// and the JMS headers have fixed types: the conversions ActiveMQ chooses at run time by the values' classes are
// chosen once, here. docs/selector.md shows, by experiment against ActiveMQ 5.17, each rule followed below.
import type { Node } from './ast';
import { SelectorError } from './errors';
import {
  compareDouble,
  doubleToString,
  INT_MAX,
  INT_MIN,
  LONG_MAX,
  parseBoolean,
  parseDouble,
  parseInt32,
  parseInt64,
} from './java';

/** 'activemq-stomp': ActiveMQ 5.17 over STOMP (string properties compared with numbers and booleans are converted); 'jms': no conversion. */
export type SelectorMode = 'activemq-stomp' | 'jms';

/** A message's header as a STOMP frame or a Message carries it. */
export type Headers = Readonly<Record<string, string | undefined>>;

/** A JMS destination (JMSDestination, JMSReplyTo): equal only to another destination. */
class Destination {
  constructor(readonly name: string) {}
  toString(): string {
    const m = /^\/(queue|topic|temp-queue|temp-topic)\/(.*)$/s.exec(this.name);
    return m === null ? `queue://${this.name}` : `${m[1]}://${m[2]}`;
  }
}

type Value = string | number | bigint | boolean | Destination | null;
// 'decimal': an integer literal beyond 64 bits, which ActiveMQ keeps as a BigDecimal, equal to no property.
type Kind = 'string' | 'bool' | 'int' | 'long' | 'double' | 'decimal' | 'dest' | 'null' | 'never';
type Eval = (h: Headers) => Value;
type BoolEval = (h: Headers) => boolean | null;

interface Expr {
  kind: Kind;
  ev: Eval;
  /** ActiveMQ's BooleanExpression: comparisons, logic and the boolean constants. */
  isBool: boolean;
  /** An identifier: usable as a boolean (true only for a true boolean value). */
  isProperty: boolean;
  /** A literal, with its value. */
  constant?: { value: Value };
}

/** Thrown inside the closures where ActiveMQ throws while evaluating (the message then does not match). */
export const EVALUATION_FAILED: unique symbol = Symbol('selector evaluation failed');

function fail(): never {
  throw EVALUATION_FAILED;
}

const str = (v: string | undefined): string | null => (typeof v === 'string' ? v : null);

/**
 * STOMP headers that ActiveMQ takes out of the header into the message's own fields: as properties they are absent
 * (their values are read through the JMS names below). Names with '-' (message-id, content-type...) cannot be
 * identifiers anyway.
 */
const NOT_PROPERTIES = new Set([
  'destination',
  'subscription',
  'timestamp',
  'expires',
  'priority',
  'persistent',
  'type',
  'redelivered',
  'ack',
  'receipt',
  'transaction',
  'transformation',
]);

const DEFAULT_PRIORITY = 4;

/** The JMS header names and what ActiveMQ derives them from, in a STOMP message's header. */
const JMS_HEADERS: Record<string, { kind: Kind; ev: Eval }> = {
  JMSMessageID: { kind: 'string', ev: (h) => str(h['message-id']) },
  JMSCorrelationID: { kind: 'string', ev: (h) => str(h['correlation-id']) },
  JMSType: { kind: 'string', ev: (h) => str(h.JMSType) ?? str(h.type) },
  JMSPriority: {
    kind: 'int',
    ev: (h) => {
      const p = h.priority;
      return (typeof p === 'string' ? parseInt32(p) : null) ?? DEFAULT_PRIORITY;
    },
  },
  JMSDeliveryMode: { kind: 'string', ev: (h) => (h.persistent === 'true' ? 'PERSISTENT' : 'NON_PERSISTENT') },
  // The broker stamps a message without `timestamp` as it arrives: here, as it is filtered.
  JMSTimestamp: {
    kind: 'long',
    ev: (h) => {
      const t = h.timestamp;
      return (typeof t === 'string' ? parseInt64(t) : null) ?? BigInt(Date.now());
    },
  },
  JMSExpiration: {
    kind: 'long',
    ev: (h) => {
      const e = h.expires;
      return (typeof e === 'string' ? parseInt64(e) : null) ?? 0n;
    },
  },
  JMSRedelivered: { kind: 'bool', ev: (h) => h.redelivered === 'true' },
  JMSDestination: { kind: 'dest', ev: (h) => new Destination(h.destination ?? '') },
  JMSReplyTo: {
    kind: 'dest',
    ev: (h) => {
      const r = h['reply-to'];
      return typeof r === 'string' ? new Destination(r) : null;
    },
  },
  JMSXDeliveryCount: { kind: 'int', ev: () => 1 },
  JMSXGroupID: { kind: 'string', ev: (h) => str(h.JMSXGroupID) },
  JMSXGroupSeq: {
    kind: 'int',
    ev: (h) => {
      const s = h.JMSXGroupSeq;
      return (typeof s === 'string' ? parseInt32(s) : null) ?? 0;
    },
  },
  JMSXUserID: { kind: 'string', ev: () => null },
  JMSXProducerTXID: { kind: 'string', ev: () => null },
};

const NUMERIC = new Set<Kind>(['int', 'long', 'double']);
const isNumeric = (k: Kind) => NUMERIC.has(k);

/** The kind both sides are promoted to (Java's binary numeric promotion). */
function promoted(a: Kind, b: Kind): 'int' | 'long' | 'double' {
  if (a === 'double' || b === 'double') return 'double';
  if (a === 'long' || b === 'long') return 'long';
  return 'int';
}

/** A numeric value of kind `from` as kind `to`. */
function widen(from: Kind, to: 'int' | 'long' | 'double'): (v: Value) => number | bigint {
  if (to === 'double') return from === 'long' ? (v) => Number(v as bigint) : (v) => v as number;
  if (to === 'long') return from === 'int' ? (v) => BigInt(v as number) : (v) => v as bigint;
  return (v) => v as number;
}

/** How a string is read as a number of the other side's kind. */
function parserFor(kind: 'int' | 'long' | 'double'): (s: string) => number | bigint | null {
  return kind === 'int' ? parseInt32 : kind === 'long' ? parseInt64 : parseDouble;
}

const cmpPlain = (a: number | bigint | string, b: number | bigint | string): number => (a < b ? -1 : a > b ? 1 : 0);
const cmpBool = (a: boolean, b: boolean): number => (a === b ? 0 : a ? 1 : -1);

/**
 * ActiveMQ's ComparisonExpression.compare for values of kinds `l` and `r`: a negative, zero or positive number, or
 * NaN where ActiveMQ answers false whatever the operator (values of unrelated types, a string that is no number).
 */
function comparator(l: Kind, r: Kind, mode: SelectorMode): (a: Value, b: Value) => number {
  const convert = mode === 'activemq-stomp';
  if (isNumeric(l) && isNumeric(r)) {
    const to = promoted(l, r);
    const wl = widen(l, to);
    const wr = widen(r, to);
    if (to === 'double') return (a, b) => compareDouble(wl(a) as number, wr(b) as number);
    if (to === 'long' && (l !== 'long' || r !== 'long')) return (a, b) => cmpPlain(wl(a), wr(b));
    return (a, b) => cmpPlain(a as number | bigint, b as number | bigint);
  }
  if (l === r) {
    if (l === 'string') return (a, b) => cmpPlain(a as string, b as string);
    if (l === 'bool') return (a, b) => cmpBool(a as boolean, b as boolean);
    if (l === 'dest') return (a, b) => cmpPlain(String(a), String(b));
    if (l === 'decimal') return (a, b) => cmpPlain(a as bigint, b as bigint);
    return () => Number.NaN;
  }
  if (convert && l === 'string' && isNumeric(r)) {
    const parse = parserFor(r as 'int' | 'long' | 'double');
    const num = comparator(r, r, mode);
    return (a, b) => {
      const n = parse(a as string);
      return n === null ? Number.NaN : num(n, b);
    };
  }
  if (convert && isNumeric(l) && r === 'string') {
    const parse = parserFor(l as 'int' | 'long' | 'double');
    const num = comparator(l, l, mode);
    return (a, b) => {
      const n = parse(b as string);
      return n === null ? Number.NaN : num(a, n);
    };
  }
  if (convert && l === 'string' && r === 'bool') return (a, b) => cmpBool(parseBoolean(a as string), b as boolean);
  // ActiveMQ 5.17 casts the boolean to a String here: a ClassCastException, the message matches nowhere.
  if (convert && l === 'bool' && r === 'string') return fail;
  return () => Number.NaN;
}

/** A Java value as `String.valueOf` writes it (string concatenation with +). */
function javaString(kind: Kind): (v: Value) => string {
  if (kind === 'double') return (v) => doubleToString(v as number);
  return (v) => String(v);
}

export interface Compiled {
  evaluate: BoolEval;
}

/** Compiles a parsed selector; throws SelectorError where ActiveMQ refuses the selector. */
export function compile(root: Node, text: string, mode: SelectorMode): Compiled {
  const invalid = (at: number, problem: string): never => {
    throw new SelectorError('ERR_SELECTOR_INVALID', problem, { selector: text, offset: at });
  };
  const show = (n: Node) => JSON.stringify(text.slice(n.at, Math.min(text.length, n.at + 20)).trim());

  const literal = (kind: Kind, value: Value): Expr => ({
    kind,
    ev: () => value,
    isBool: kind === 'bool' || kind === 'null',
    isProperty: false,
    constant: { value },
  });

  const number = (n: Extract<Node, { type: 'num' }>): Expr => {
    if (n.form === 'float') return literal('double', Number(n.text));
    let big: bigint;
    if (n.form === 'hex') big = BigInt(n.text.toLowerCase());
    else if (n.form === 'octal') big = n.text.length > 1 ? BigInt(`0o${n.text.slice(1)}`) : 0n;
    else big = BigInt(/[lL]$/.test(n.text) ? n.text.slice(0, -1) : n.text);
    if (big > LONG_MAX) {
      if (n.form !== 'decimal') invalid(n.at, `${n.text} is beyond the range of a 64-bit integer`);
      return literal('decimal', big);
    }
    return big >= BigInt(INT_MIN) && big <= BigInt(INT_MAX) ? literal('int', Number(big)) : literal('long', big);
  };

  /** ActiveMQ's asBooleanExpression: a boolean expression, or a property (true only when it holds a true boolean). */
  const asBool = (n: Node): BoolEval => {
    const e = expr(n);
    if (e.isBool) return e.ev as BoolEval;
    if (e.isProperty) {
      const ev = e.ev;
      return (h) => {
        const v = ev(h);
        return v === null ? null : v === true;
      };
    }
    return invalid(n.at, `${show(n)} is not a boolean expression`);
  };

  const bool = (ev: BoolEval): Expr => ({ kind: 'bool', ev, isBool: true, isProperty: false });

  /** ActiveMQ's checkLessThanOperand: no string, boolean or NULL literal, no boolean expression. */
  const orderable = (n: Node, e: Expr) => {
    if (e.isBool || (e.constant !== undefined && !isNumeric(e.kind)))
      invalid(n.at, `${show(n)} cannot be compared with < > <= >= or BETWEEN`);
  };

  const compare = (op: '=' | '<>' | '<' | '>' | '<=' | '>=', ln: Node, rn: Node, at: number): Expr => {
    const l = expr(ln);
    const r = expr(rn);
    if (op === '=' || op === '<>') {
      for (const [n, e] of [
        [ln, l],
        [rn, r],
      ] as const) {
        if (e.kind === 'null' && e.constant !== undefined)
          invalid(n.at, `${show(n)}: nothing can be compared with NULL with = or <> (use IS NULL)`);
      }
      if (l.constant !== undefined && r.constant !== undefined && l.kind === 'bool' && r.kind !== 'bool') {
        invalid(at, `${show(ln)} cannot be compared with ${show(rn)}`);
      }
    } else {
      orderable(ln, l);
      orderable(rn, r);
    }
    return bool(comparison(op, l, r));
  };

  /**
   * The usual selector compares a property with a literal: the same answers as the general case below, with the
   * literal captured and the conversion called directly (about 3 times faster per comparison).
   */
  const againstConstant = (op: '=' | '<>' | '<' | '>' | '<=' | '>=', l: Expr, r: Expr): BoolEval | undefined => {
    if (l.kind !== 'string' || r.constant === undefined || r.constant.value === null) return undefined;
    const le = l.ev;
    const k = r.constant.value;
    if (r.kind === 'string') {
      if (op === '=')
        return (h) => {
          const a = le(h);
          return a === null ? null : a === k;
        };
      if (op === '<>')
        return (h) => {
          const a = le(h);
          return a === null ? null : a !== k;
        };
      return undefined;
    }
    if (mode !== 'activemq-stomp' || r.kind !== 'int') return undefined;
    const n = k as number;
    const test =
      op === '='
        ? (x: number) => x === n
        : op === '<>'
          ? (x: number) => x !== n
          : op === '<'
            ? (x: number) => x < n
            : op === '>'
              ? (x: number) => x > n
              : op === '<='
                ? (x: number) => x <= n
                : (x: number) => x >= n;
    // A string that is no integer compares false whatever the operator: <> too (ActiveMQ's NOT of a false =).
    const ifNotNumber = op === '<>';
    return (h) => {
      const a = le(h);
      if (a === null) return null;
      const x = parseInt32(a as string);
      return x === null ? ifNotNumber : test(x);
    };
  };

  const comparison = (op: '=' | '<>' | '<' | '>' | '<=' | '>=', l: Expr, r: Expr): BoolEval => {
    const fast = againstConstant(op, l, r);
    if (fast !== undefined) return fast;
    const c = comparator(l.kind, r.kind, mode);
    const le = l.ev;
    const re = r.ev;
    switch (op) {
      // NULL is asymmetric in ActiveMQ: a missing left side is unknown, a missing right side is false, both missing
      // are equal.
      case '=':
        return (h) => {
          const a = le(h);
          const b = re(h);
          if (a === null) return b === null ? true : null;
          if (b === null) return false;
          return c(a, b) === 0;
        };
      case '<>':
        return (h) => {
          const a = le(h);
          const b = re(h);
          if (a === null) return b === null ? false : null;
          if (b === null) return true;
          return c(a, b) !== 0;
        };
      default: {
        const test =
          op === '<'
            ? (x: number) => x < 0
            : op === '>'
              ? (x: number) => x > 0
              : op === '<='
                ? (x: number) => x <= 0
                : (x: number) => x >= 0;
        return (h) => {
          const a = le(h);
          if (a === null) return null;
          const b = re(h);
          if (b === null) return null;
          return test(c(a, b));
        };
      }
    }
  };

  const not =
    (ev: BoolEval): BoolEval =>
    (h) => {
      const v = ev(h);
      return v === null ? null : !v;
    };

  const and =
    (l: BoolEval, r: BoolEval): BoolEval =>
    (h) => {
      const a = l(h);
      if (a === false) return false;
      const b = r(h);
      if (b === false) return false;
      return a === null || b === null ? null : true;
    };

  const or =
    (l: BoolEval, r: BoolEval): BoolEval =>
    (h) => {
      const a = l(h);
      if (a === true) return true;
      const b = r(h);
      if (b === true) return true;
      return a === null || b === null ? null : false;
    };

  const arithmetic = (op: '+' | '-' | '*' | '/' | '%', l: Expr, r: Expr): Expr => {
    const le = l.ev;
    const re = r.ev;
    const build = (kind: Kind, f: (a: Value, b: Value) => Value): Expr => ({
      kind,
      isBool: false,
      isProperty: false,
      ev: (h) => {
        const a = le(h);
        if (a === null) return null;
        const b = re(h);
        if (b === null) return null;
        return f(a, b);
      },
    });
    if (l.kind === 'null' || r.kind === 'null') return build('null', () => null);
    // + on a string is concatenation, whatever the right side; every other operation on a non-number throws.
    if (op === '+' && l.kind === 'string') {
      const s = javaString(r.kind);
      return build('string', (a, b) => (a as string) + s(b));
    }
    if (!isNumeric(l.kind) || !isNumeric(r.kind)) return build('never', fail);
    // Division and remainder are always in doubles (2 / 4 = 0.5; 1 % 0 is NaN).
    if (op === '/' || op === '%') {
      const wl = widen(l.kind, 'double');
      const wr = widen(r.kind, 'double');
      return build(
        'double',
        op === '/' ? (a, b) => (wl(a) as number) / (wr(b) as number) : (a, b) => (wl(a) as number) % (wr(b) as number),
      );
    }
    const to = promoted(l.kind, r.kind);
    const wl = widen(l.kind, to);
    const wr = widen(r.kind, to);
    if (to === 'double') {
      const f =
        op === '+'
          ? (a: number, b: number) => a + b
          : op === '-'
            ? (a: number, b: number) => a - b
            : (a: number, b: number) => a * b;
      return build('double', (a, b) => f(wl(a) as number, wr(b) as number));
    }
    if (to === 'long') {
      const f =
        op === '+'
          ? (a: bigint, b: bigint) => a + b
          : op === '-'
            ? (a: bigint, b: bigint) => a - b
            : (a: bigint, b: bigint) => a * b;
      return build('long', (a, b) => BigInt.asIntN(64, f(wl(a) as bigint, wr(b) as bigint)));
    }
    // 32-bit Java ints wrap: 2147483647 + 1 = -2147483648.
    const f = op === '+' ? (a: number, b: number) => (a + b) | 0 : op === '-' ? (a: number, b: number) => (a - b) | 0 : Math.imul;
    return build('int', (a, b) => f(a as number, b as number));
  };

  const likeMatcher = (pattern: string, escapeChar: string | undefined): ((s: string) => boolean) => {
    let re = '';
    let plain = '';
    let wild = false;
    let prefixOnly = true;
    for (let i = 0; i < pattern.length; i++) {
      const c = pattern[i] as string;
      if (escapeChar !== undefined && c === escapeChar && i + 1 < pattern.length) {
        const next = pattern[++i] as string;
        re += next.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
        if (wild) prefixOnly = false;
        plain += next;
      } else if (c === '%') {
        re += '[\\s\\S]*';
        if (i !== pattern.length - 1) prefixOnly = false;
        wild = true;
      } else if (c === '_') {
        re += '[\\s\\S]';
        prefixOnly = false;
        wild = true;
      } else {
        re += c.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
        if (wild) prefixOnly = false;
        plain += c;
      }
    }
    if (!wild) return (s) => s === plain;
    if (prefixOnly) return (s) => s.startsWith(plain);
    const rx = new RegExp(`^${re}$`);
    return (s) => rx.test(s);
  };

  function expr(n: Node): Expr {
    switch (n.type) {
      case 'paren':
        // A parenthesised literal or property stays one (ActiveMQ's checks see through parentheses).
        return expr(n.expr);
      case 'lit':
        return literal(n.kind, n.value);
      case 'num':
        return number(n);
      case 'id': {
        const jms = Object.hasOwn(JMS_HEADERS, n.name) ? JMS_HEADERS[n.name] : undefined;
        if (jms !== undefined) return { kind: jms.kind, ev: jms.ev, isBool: false, isProperty: true };
        if (NOT_PROPERTIES.has(n.name)) return { kind: 'string', ev: () => null, isBool: false, isProperty: true };
        const name = n.name;
        return {
          kind: 'string',
          ev: (h) => {
            const v = h[name];
            return typeof v === 'string' ? v : null;
          },
          isBool: false,
          isProperty: true,
        };
      }
      case 'unsupported':
        throw new SelectorError('ERR_SELECTOR_UNSUPPORTED', `${n.what} (a query of XML bodies) is not supported`, {
          selector: text,
          offset: n.at,
        });
      case 'plus':
        return expr(n.expr);
      case 'neg': {
        const e = expr(n.expr);
        if (e.constant !== undefined && isNumeric(e.kind)) {
          const v = e.constant.value;
          if (e.kind === 'double') return literal('double', -(v as number));
          const big = -BigInt(v as number | bigint);
          return big >= BigInt(INT_MIN) && big <= BigInt(INT_MAX)
            ? literal('int', Number(big))
            : literal('long', BigInt.asIntN(64, big));
        }
        const ev = e.ev;
        // The negation of anything but a number is NULL.
        if (!isNumeric(e.kind)) {
          return {
            kind: 'null',
            ev: (h) => {
              ev(h);
              return null;
            },
            isBool: false,
            isProperty: false,
          };
        }
        const negate =
          e.kind === 'int'
            ? (v: Value) => -(v as number) | 0
            : e.kind === 'long'
              ? (v: Value) => BigInt.asIntN(64, -(v as bigint))
              : (v: Value) => -(v as number);
        return {
          kind: e.kind,
          ev: (h) => {
            const v = ev(h);
            return v === null ? null : negate(v);
          },
          isBool: false,
          isProperty: false,
        };
      }
      case 'not':
        return bool(not(asBool(n.expr)));
      case 'and':
        return bool(and(asBool(n.left), asBool(n.right)));
      case 'or':
        return bool(or(asBool(n.left), asBool(n.right)));
      case 'cmp':
        return compare(n.op, n.left, n.right, n.at);
      case 'isnull': {
        const ev = expr(n.expr).ev;
        return bool(n.not ? (h) => ev(h) !== null : (h) => ev(h) === null);
      }
      case 'like': {
        if (n.escape !== undefined && n.escape.length !== 1) invalid(n.escapeAt ?? n.at, 'ESCAPE takes a single character');
        const ev = expr(n.expr).ev;
        const test = likeMatcher(n.pattern, n.escape);
        const like: BoolEval = (h) => {
          const v = ev(h);
          if (v === null) return null;
          return typeof v === 'string' && test(v);
        };
        return bool(n.not ? not(like) : like);
      }
      case 'in': {
        const ev = expr(n.expr).ev;
        const set = new Set(n.list);
        const isIn: BoolEval = (h) => {
          const v = ev(h);
          if (v === null) return null;
          return typeof v === 'string' && set.has(v);
        };
        return bool(n.not ? not(isIn) : isIn);
      }
      case 'between': {
        const e = expr(n.expr);
        const low = expr(n.low);
        const high = expr(n.high);
        orderable(n.expr, e);
        orderable(n.low, low);
        orderable(n.high, high);
        return bool(
          n.not
            ? or(comparison('<', e, low), comparison('>', e, high))
            : and(comparison('>=', e, low), comparison('<=', e, high)),
        );
      }
      case 'arith':
        return arithmetic(n.op, expr(n.left), expr(n.right));
    }
  }

  return { evaluate: asBool(root) };
}
