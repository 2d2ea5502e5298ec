import { clearSelectorCache, parseSelector, SELECTOR_CACHE_SIZE, SelectorError } from '@msgbricks/selector';

function refusal(text: string): SelectorError {
  try {
    parseSelector(text);
  } catch (err) {
    if (err instanceof SelectorError) return err;
    throw err;
  }
  throw new Error(`accepted: ${text}`);
}

test('selector - matches a STOMP header', () => {
  const s = parseSelector("state = 'production' AND (prio > 3 OR hostgroup LIKE 'castor/%')");
  expect(s.text).toBe("state = 'production' AND (prio > 3 OR hostgroup LIKE 'castor/%')");
  expect(s.mode).toBe('activemq-stomp');
  expect(s.matches({ state: 'production', prio: '5' })).toBe(true);
  expect(s.matches({ state: 'production', prio: '2', hostgroup: 'castor/disk' })).toBe(true);
  expect(s.matches({ state: 'production', prio: '2', hostgroup: 'eos' })).toBe(false);
  expect(s.matches({ state: 'devel', prio: '9' })).toBe(false);
  expect(s.matches({})).toBe(false);
});

test('selector - three-valued result: a missing header is unknown, ActiveMQ failures are unknown too', () => {
  expect(parseSelector("x = 'a'").evaluate({})).toBeNull();
  expect(parseSelector("'a' = x").evaluate({})).toBe(false);
  expect(parseSelector("NOT x = 'a'").evaluate({ x: 'b' })).toBeNull();
  expect(parseSelector("NOT x = 'a'").matches({ x: 'b' })).toBe(false);
  expect(parseSelector('x * 2 = 10').evaluate({ x: '5' })).toBeNull();
});

test('selector - header names that are Object.prototype members are only headers', () => {
  expect(parseSelector('toString IS NULL').matches({})).toBe(true);
  expect(parseSelector("constructor = 'x'").matches({ constructor: 'x' })).toBe(true);
});

test('selector - jms mode does not convert strings', () => {
  expect(parseSelector('x = 5').matches({ x: '5' })).toBe(true);
  expect(parseSelector('x = 5', { mode: 'jms' }).matches({ x: '5' })).toBe(false);
  expect(parseSelector('x = TRUE', { mode: 'jms' }).matches({ x: 'true' })).toBe(false);
  // (NOT x) = 'a': a boolean against a string, false in JMS, a ClassCastException in ActiveMQ over STOMP
  expect(parseSelector("NOT x = 'a'", { mode: 'jms' }).evaluate({ x: 'b' })).toBe(false);
  expect(() => parseSelector('x = 1', { mode: 'sql' as never })).toThrow(TypeError);
});

test('selector - a syntax error has a stable code, its position and what was expected', () => {
  const e = refusal("state = 'production' AND");
  expect(e).toBeInstanceOf(SelectorError);
  expect(e.name).toBe('SelectorError');
  expect(e.code).toBe('ERR_SELECTOR_SYNTAX');
  expect(e.offset).toBe(24);
  expect(e.column).toBe(25);
  expect(e.line).toBe(1);
  expect(e.expected).toEqual(expect.arrayContaining(['identifier', '"("', 'string literal']));
  expect(e.message).toMatch(/^invalid selector at column 25: expected one of .*identifier.* but found the end$/);
  const multi = refusal('a = 1\nAND b == 2');
  expect([multi.line, multi.column]).toEqual([2, 8]);
});

test('selector - what ActiveMQ refuses after parsing is ERR_SELECTOR_INVALID, at the operand', () => {
  const e = refusal('x = NULL');
  expect(e.code).toBe('ERR_SELECTOR_INVALID');
  expect(e.column).toBe(5);
  expect(refusal("x < 'b'").code).toBe('ERR_SELECTOR_INVALID');
  expect(refusal('NOT 5').message).toContain('"5" is not a boolean expression');
  expect(refusal("x LIKE 'a' ESCAPE 'ab'").code).toBe('ERR_SELECTOR_INVALID');
  expect(refusal('x = 0x10000000000000000').code).toBe('ERR_SELECTOR_INVALID');
});

test('selector - XPATH and XQUERY are ERR_SELECTOR_UNSUPPORTED', () => {
  const e = refusal("XPATH '//a'");
  expect(e.code).toBe('ERR_SELECTOR_UNSUPPORTED');
  expect(e.offset).toBe(0);
});

test('selector - parsed selectors are cached, least recently used first out', () => {
  clearSelectorCache();
  const first = parseSelector('a = 1');
  expect(parseSelector('a = 1')).toBe(first);
  expect(parseSelector('a = 1', { mode: 'jms' })).not.toBe(first);
  for (let i = 0; i < SELECTOR_CACHE_SIZE; i++) parseSelector(`b = ${i}`);
  expect(parseSelector('a = 1')).not.toBe(first);
  const again = parseSelector('a = 1');
  parseSelector('b = 999');
  expect(parseSelector('a = 1')).toBe(again);
});

test('selector - toString is canonical and parses to the same selector', () => {
  const s = parseSelector("NOT a = 5 AND b LIKE 'x!%' ESCAPE '!' OR c NOT IN ('it''s')");
  expect(String(s)).toBe("(((NOT (a)) = (5)) AND ((b) LIKE 'x!%' ESCAPE '!')) OR ((c) NOT IN ('it''s'))");
  expect(String(parseSelector(String(s)))).toBe(String(s));
});
