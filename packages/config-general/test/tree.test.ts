import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, readTree, type Tree } from '@msgbricks/config-general';
import { useTempDir } from '@msgbricks/test-support';

const dir = useTempDir('config-general-');
const read = (f: string) => fs.readFileSync(f, 'utf8');

function write(name: string, text: string): string {
  const file = path.join(dir.path, name);
  fs.writeFileSync(file, text);
  return file;
}

function shape(t: Tree): unknown {
  return t.kind === 'scalar' ? [t.value, t.where.replace(/^.*\//, '')] : t.entries.map(([k, v]) => [k, shape(v)]);
}

describe('config-general tree', () => {
  test('tree - the three formats give the same tree, each node with its file and line', () => {
    const cg = write('a.conf', '<entry>\n  name x\n  <children>\n    n 1\n    n 2\n  </children>\n</entry>\n');
    const yaml = write('a.yaml', 'entry:\n  name: x\n  children:\n    n: [1, 2]\n');
    const json = write('a.json', '{"entry": {"name": "x",\n "children": {"n": [1, 2]}}}\n');
    // The expected tree, given each format's values and lines.
    const expected = (f: string, one: unknown, two: unknown, name: number, n1: number, n2: number) => [
      [
        'entry',
        [
          ['name', ['x', `${f}:${name}`]],
          [
            'children',
            [
              ['n', [one, `${f}:${n1}`]],
              ['n', [two, `${f}:${n2}`]],
            ],
          ],
        ],
      ],
    ];
    expect(shape(readTree(cg, read))).toEqual(expected('a.conf', '1', '2', 2, 4, 5));
    expect(shape(readTree(yaml, read))).toEqual(expected('a.yaml', 1, 2, 2, 4, 4));
    expect(shape(readTree(json, read))).toEqual(expected('a.json', 1, 2, 1, 2, 2));
  });

  test('tree - a syntax error names the file and line', () => {
    const bad = write('bad.yaml', 'a: 1\nb: [\n');
    expect(() => readTree(bad, read)).toThrow(ConfigError);
    expect(() => readTree(bad, read)).toThrow(/bad\.yaml:\d+: invalid YAML/);
    const open = write('open.conf', 'x 1\n<entry>\n');
    expect(() => readTree(open, read)).toThrow(/open\.conf:2: unclosed block <entry>/);
  });
});
