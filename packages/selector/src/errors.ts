import { MsgbricksError } from '@msgbricks/errors';

/** What `code` a SelectorError carries. */
export type SelectorErrorCode =
  /** Not a selector by the grammar: a missing operand, an unknown operator, an unterminated string... */
  | 'ERR_SELECTOR_SYNTAX'
  /** Grammatical but refused by ActiveMQ's checks: `x = NULL`, `x < 'a'`, `NOT 5`, a two-character ESCAPE... */
  | 'ERR_SELECTOR_INVALID'
  /** Accepted by ActiveMQ but not here: XPATH and XQUERY, which look into XML bodies. */
  | 'ERR_SELECTOR_UNSUPPORTED';

/**
 * A selector ActiveMQ would refuse. `offset` (0-based), `line` and `column` (1-based) locate the problem in `selector`;
 * `expected` says what could have been there (for syntax errors), empty otherwise.
 */
export class SelectorError extends MsgbricksError {
  declare readonly code: SelectorErrorCode;
  readonly selector: string;
  readonly offset: number;
  readonly line: number;
  readonly column: number;
  readonly expected: readonly string[];

  constructor(
    code: SelectorErrorCode,
    problem: string,
    where: { selector: string; offset: number; expected?: readonly string[]; cause?: unknown },
  ) {
    const before = where.selector.slice(0, where.offset);
    const line = before.split(/\r\n|\r|\n/).length;
    const column = where.offset - Math.max(before.lastIndexOf('\n'), before.lastIndexOf('\r'));
    super(code, `invalid selector at column ${column}${line > 1 ? ` of line ${line}` : ''}: ${problem}`, { cause: where.cause });
    this.selector = where.selector;
    this.offset = where.offset;
    this.line = line;
    this.column = column;
    this.expected = where.expected ?? [];
  }
}
