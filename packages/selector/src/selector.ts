import type { Node } from './ast';
import { compile, EVALUATION_FAILED, type Headers, type SelectorMode } from './compile';
import { SelectorError } from './errors';
import { SyntaxError as PeggySyntaxError, parse } from './grammar';
import { printNode } from './print';

export interface ParseOptions {
  /** 'activemq-stomp' (default): as ActiveMQ 5.17 over STOMP; 'jms': JMS 2.0's rules, no conversion of strings. */
  mode?: SelectorMode;
}

/** A parsed selector, compiled once: `matches` runs closures, no parsing. */
export interface Selector {
  /** The selector as given. */
  readonly text: string;
  readonly mode: SelectorMode;
  /** True when the selector is TRUE for a message with this header (unknown and errors do not match, as in ActiveMQ). */
  matches(headers: Headers): boolean;
  /** The three-valued result: true, false, or null for unknown (a missing header); null also where ActiveMQ fails. */
  evaluate(headers: Headers): boolean | null;
  /** The selector fully parenthesised, in canonical form: parsing it gives the same selector. */
  toString(): string;
}

/** How many parsed selectors parseSelector keeps (least recently used go first). */
export const SELECTOR_CACHE_SIZE = 256;

const cache = new Map<string, Selector>();

/** Forgets every cached selector. */
export function clearSelectorCache(): void {
  cache.clear();
}

function describe(e: { type: string; text?: string; description?: string }): string {
  return e.type === 'literal' ? JSON.stringify(e.text) : e.type === 'end' ? 'end of selector' : (e.description ?? e.type);
}

function tree(text: string): Node {
  try {
    return parse(text);
  } catch (err) {
    if (!(err instanceof PeggySyntaxError)) throw err;
    const expected = [...new Set((err.expected ?? []).map(describe))].sort();
    const found = err.found === null ? 'the end' : JSON.stringify(err.found);
    const wanted =
      expected.length === 0 ? 'something else' : expected.length === 1 ? expected[0] : `one of ${expected.join(', ')}`;
    throw new SelectorError('ERR_SELECTOR_SYNTAX', `expected ${wanted} but found ${found}`, {
      selector: text,
      offset: err.location.start.offset,
      expected,
      cause: err,
    });
  }
}

/**
 * Parses and compiles a JMS message selector; throws a SelectorError (code, position, what was expected) for a
 * selector ActiveMQ would refuse. The last SELECTOR_CACHE_SIZE selectors are kept: parsing one again is a lookup.
 */
export function parseSelector(text: string, options: ParseOptions = {}): Selector {
  const mode = options.mode ?? 'activemq-stomp';
  if (mode !== 'activemq-stomp' && mode !== 'jms') throw new TypeError(`unknown selector mode: ${String(mode)}`);
  const key = `${mode}\0${text}`;
  const hit = cache.get(key);
  if (hit !== undefined) {
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const root = tree(text);
  const { evaluate } = compile(root, text, mode);
  let canonical: string | undefined;
  const selector: Selector = {
    text,
    mode,
    matches(headers) {
      try {
        return evaluate(headers) === true;
      } catch (err) {
        if (err === EVALUATION_FAILED) return false;
        throw err;
      }
    },
    evaluate(headers) {
      try {
        return evaluate(headers);
      } catch (err) {
        if (err === EVALUATION_FAILED) return null;
        throw err;
      }
    },
    toString: () => {
      canonical ??= printNode(root);
      return canonical;
    },
  };
  cache.set(key, selector);
  if (cache.size > SELECTOR_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  return selector;
}
