// Properties over random selectors (helpers/generate.ts) and random headers.
import { parseSelector } from '@msgbricks/selector';
import fc from 'fast-check';
import { headersArbitrary, selectorArbitrary } from './helpers/generate';

test('property - jms and activemq-stomp agree on headers that are not numeric-looking', () => {
  // Without TRUE/FALSE: over STOMP, ActiveMQ reads any string compared with a boolean through Boolean.valueOf.
  fc.assert(
    fc.property(
      selectorArbitrary({ booleans: false }),
      fc.array(headersArbitrary(false), { minLength: 1, maxLength: 8 }),
      (text, messages) => {
        const stomp = parseSelector(text);
        const jms = parseSelector(text, { mode: 'jms' });
        for (const h of messages) expect(jms.evaluate(h)).toBe(stomp.evaluate(h));
      },
    ),
    { numRuns: 400 },
  );
});

test('property - the modes differ on numeric-looking strings (the property above is not vacuous)', () => {
  expect(parseSelector('a = 5').matches({ a: '05' })).toBe(true);
  expect(parseSelector('a = 5', { mode: 'jms' }).matches({ a: '05' })).toBe(false);
});

test('property - printing a selector and parsing it again gives the same results', () => {
  fc.assert(
    fc.property(selectorArbitrary(), fc.array(headersArbitrary(true), { minLength: 1, maxLength: 8 }), (text, messages) => {
      const parsed = parseSelector(text);
      const printed = String(parsed);
      const again = parseSelector(printed);
      expect(String(again)).toBe(printed);
      for (const h of messages) expect(again.evaluate(h)).toBe(parsed.evaluate(h));
    }),
    { numRuns: 400 },
  );
});

test('property - matches is evaluate(...) === true', () => {
  fc.assert(
    fc.property(selectorArbitrary(), headersArbitrary(true), (text, h) => {
      const s = parseSelector(text);
      expect(s.matches(h)).toBe(s.evaluate(h) === true);
    }),
    { numRuns: 300 },
  );
});
