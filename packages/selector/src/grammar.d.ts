// Types of the parser peggy generates from grammar.peggy (scripts/build-grammar.js writes grammar.js beside this).
import type { Node } from './ast';

export interface PeggyLocation {
  start: { offset: number; line: number; column: number };
}

export interface PeggyExpectation {
  type: string;
  text?: string;
  description?: string;
}

// biome-ignore lint/suspicious/noShadowRestrictedNames: the name peggy gives its error class
export declare class SyntaxError extends Error {
  location: PeggyLocation;
  expected: PeggyExpectation[] | null;
  found: string | null;
}

export declare function parse(input: string): Node;
