import { stringToTable, tableToString } from '@msgbricks/dirq';
import fc from 'fast-check';

describe('dirq table', () => {
  test('dirq table - escapes backslash, TAB and LF, sorts keys, ends lines with LF', () => {
    expect(tableToString({ b: 'x\ty', a: '1\\2\n3', '': '' })).toBe('\t\na\t1\\\\2\\n3\nb\tx\\ty\n');
    expect(tableToString({})).toBe('');
    expect(tableToString({ 'hi\\t\th\nere': 'v' })).toBe('hi\\\\t\\th\\nere\tv\n');
    expect(tableToString({ '\n': '\t', '\t': '\\', '\\': '\n' })).toBe('\\t\t\\\\\n\\n\t\\t\n\\\\\t\\n\n');
  });

  test('dirq table - keys sort by code point, as Python does (astral after BMP private use)', () => {
    expect(tableToString({ '\uffff': 'a', '\u{1f600}': 'b', z: 'c' })).toBe('z\tc\n\uffff\ta\n\u{1f600}\tb\n');
  });

  test('dirq table - parsing keeps CR and unknown escapes, last duplicate wins, blank file is empty', () => {
    expect(stringToTable('a\tb\r\nc\t\\x\\\\n\n')).toEqual({ a: 'b\r', c: '\\x\\n' });
    expect(stringToTable('k\t1\nk\t2\n')).toEqual({ k: '2' });
    expect(stringToTable('')).toEqual({});
    expect(stringToTable('\n\n')).toEqual({});
    expect(() => stringToTable('a\tb\tc\n')).toThrow(/unexpected hash line/);
    expect(() => stringToTable('nokey\n')).toThrow(/unexpected hash line/);
  });

  test('dirq table - round trip over arbitrary tables', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' })), (t) => {
        expect(stringToTable(tableToString(t))).toEqual(t);
      }),
      { numRuns: 500 },
    );
  });
});
