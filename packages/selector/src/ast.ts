/** The tree src/grammar.peggy builds: positions (`at`) are offsets into the selector text. */
export type Node =
  | { type: 'or' | 'and'; left: Node; right: Node; at: number }
  | { type: 'not' | 'neg' | 'plus' | 'paren'; expr: Node; at: number }
  | { type: 'cmp'; op: '=' | '<>' | '<' | '>' | '<=' | '>='; left: Node; right: Node; at: number }
  | { type: 'isnull'; not: boolean; expr: Node; at: number }
  | {
      type: 'like';
      not: boolean;
      expr: Node;
      pattern: string;
      escape: string | undefined;
      escapeAt: number | undefined;
      at: number;
    }
  | { type: 'between'; not: boolean; expr: Node; low: Node; high: Node; at: number }
  | { type: 'in'; not: boolean; expr: Node; list: string[]; at: number }
  | { type: 'arith'; op: '+' | '-' | '*' | '/' | '%'; left: Node; right: Node; at: number }
  | { type: 'lit'; kind: 'string'; value: string; at: number }
  | { type: 'lit'; kind: 'bool'; value: boolean; at: number }
  | { type: 'lit'; kind: 'null'; value: null; at: number }
  | { type: 'num'; form: 'float' | 'hex' | 'decimal' | 'octal'; text: string; at: number }
  | { type: 'id'; name: string; at: number }
  | { type: 'unsupported'; what: string; at: number };
