// Random selectors for the property tests and for the broker comparison (activemq.interop.test.ts).
import fc from 'fast-check';

export const PROPERTIES = ['a', 'b', 'c'] as const;

export interface SelectorShape {
  /** Leave out comparisons with TRUE and FALSE (ActiveMQ's STOMP path reads any string as a boolean then). */
  booleans?: boolean;
}

const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;

export function selectorArbitrary(shape: SelectorShape = {}): fc.Arbitrary<string> {
  const property = fc.constantFrom(...PROPERTIES);
  const word = fc.constantFrom('x', 'y', "it's", 'ab', 'a%', '', 'XY');
  const number = fc.constantFrom('1', '5', '05', '2.5', '0x10', '010', '1e1', '9007199254740993', '-3', '2147483648');
  const value = fc.oneof(
    property,
    word.map(quote),
    number,
    fc.tuple(property, fc.constantFrom('+', '-', '*', '/'), fc.oneof(number, property)).map(([l, op, r]) => `${l} ${op} ${r}`),
  );
  const leaf = fc.oneof(
    fc.tuple(property, fc.constantFrom('=', '<>'), value).map(([l, op, r]) => `${l} ${op} ${r}`),
    fc.tuple(value, fc.constantFrom('=', '<>'), property).map(([l, op, r]) => `${l} ${op} ${r}`),
    fc.tuple(property, fc.constantFrom('<', '>', '<=', '>='), number).map(([l, op, r]) => `${l} ${op} ${r}`),
    fc
      .tuple(property, fc.constantFrom('LIKE', 'NOT LIKE'), fc.constantFrom('x%', '_y', '%', 'a\\%%', "it's"))
      .map(([l, op, p]) => `${l} ${op} ${quote(p)}${p.includes('\\') ? " ESCAPE '\\'" : ''}`),
    fc
      .tuple(property, fc.constantFrom('IN', 'NOT IN'), fc.array(word, { minLength: 1, maxLength: 3 }))
      .map(([l, op, list]) => `${l} ${op} (${list.map(quote).join(', ')})`),
    fc
      .tuple(property, fc.constantFrom('BETWEEN', 'NOT BETWEEN'), number, number)
      .map(([l, op, lo, hi]) => `${l} ${op} ${lo} AND ${hi}`),
    fc.tuple(property, fc.constantFrom('IS NULL', 'IS NOT NULL')).map(([l, op]) => `${l} ${op}`),
    ...(shape.booleans === false ? [] : [fc.tuple(property, fc.constantFrom('TRUE', 'FALSE')).map(([l, b]) => `${l} = ${b}`)]),
  );
  const { tree } = fc.letrec<{ tree: string }>((tie) => ({
    tree: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf,
      fc.tuple(tie('tree'), fc.constantFrom('AND', 'OR'), tie('tree')).map(([l, op, r]) => `${l} ${op} ${r}`),
      tie('tree').map((t) => `NOT (${t})`),
      tie('tree').map((t) => `(${t})`),
    ),
  }));
  return tree;
}

/** Headers over PROPERTIES; `numeric` allows numeric-looking values. */
export function headersArbitrary(numeric: boolean): fc.Arbitrary<Record<string, string>> {
  const words = fc.constantFrom('x', 'y', 'xy', "it's", 'ab', 'a%b', '', 'XY', 'true');
  const values = numeric
    ? fc.oneof(words, fc.constantFrom('1', '5', ' 5', '05', '2.5', '10', '1e1', '-3', 'NaN', '9007199254740993'))
    : words;
  return fc.record({ a: values, b: values, c: values }, { requiredKeys: [] });
}
