import type { Node } from './ast';

const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** A selector's tree as text, every operand parenthesised: parsing it again gives the same selector. */
export function printNode(n: Node): string {
  switch (n.type) {
    case 'or':
    case 'and':
      return `(${printNode(n.left)}) ${n.type.toUpperCase()} (${printNode(n.right)})`;
    case 'not':
      return `NOT (${printNode(n.expr)})`;
    case 'neg':
      return `-(${printNode(n.expr)})`;
    case 'plus':
      return `+(${printNode(n.expr)})`;
    case 'paren':
      // Every operand is parenthesised already: printing is idempotent.
      return printNode(n.expr);
    case 'cmp':
    case 'arith':
      return `(${printNode(n.left)}) ${n.op} (${printNode(n.right)})`;
    case 'isnull':
      return `(${printNode(n.expr)}) IS ${n.not ? 'NOT ' : ''}NULL`;
    case 'like':
      return `(${printNode(n.expr)}) ${n.not ? 'NOT ' : ''}LIKE ${quote(n.pattern)}${n.escape === undefined ? '' : ` ESCAPE ${quote(n.escape)}`}`;
    case 'between':
      return `(${printNode(n.expr)}) ${n.not ? 'NOT ' : ''}BETWEEN (${printNode(n.low)}) AND (${printNode(n.high)})`;
    case 'in':
      return `(${printNode(n.expr)}) ${n.not ? 'NOT ' : ''}IN (${n.list.map(quote).join(', ')})`;
    case 'lit':
      return n.kind === 'string' ? quote(n.value) : n.kind === 'null' ? 'NULL' : n.value ? 'TRUE' : 'FALSE';
    case 'num':
      return n.text;
    case 'id':
      return n.name;
    case 'unsupported':
      return n.what;
  }
}
