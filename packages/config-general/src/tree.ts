/**
 * A configuration file of any of the formats msgbricks commands read, as one tree: Config::General
 * (configgeneral.ts), JSON or YAML, chosen by the file's extension. Every node keeps `FILE:LINE`.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { type ConfigBlock, parseConfigGeneralFile, readConfigFile } from './configgeneral';
import { ConfigError, formatLocation } from './errors';

/** A configuration tree independent of the file format; a repeated key appears once per value, in order. */
export type Tree =
  | { kind: 'scalar'; value: unknown; where: string }
  | { kind: 'block'; entries: [string, Tree][]; where: string };

/** The Config::General tree as a Tree. */
export function fromConfigGeneral(block: ConfigBlock): Tree {
  const entries: [string, Tree][] = [];
  for (const [key, nodes] of block.entries) {
    for (const n of nodes) {
      entries.push([
        key,
        n.kind === 'scalar' ? { kind: 'scalar', value: n.value, where: formatLocation(n.source) } : fromConfigGeneral(n),
      ]);
    }
  }
  return { kind: 'block', entries, where: formatLocation(block.source) };
}

function fromYaml(node: YamlNode | null | undefined, where: string, file: string, lc: LineCounter): Tree {
  const at = (n: { range?: unknown } | null | undefined, fallback: string): string => {
    const range = n?.range;
    return Array.isArray(range) && typeof range[0] === 'number' ? `${file}:${lc.linePos(range[0]).line}` : fallback;
  };
  if (isMap(node)) {
    const entries: [string, Tree][] = [];
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const kwhere = at(pair.key as { range?: unknown }, where);
      const value = pair.value as YamlNode | null;
      if (isSeq(value)) {
        for (const item of value.items) entries.push([key, fromYaml(item as YamlNode, at(item as YamlNode, kwhere), file, lc)]);
      } else {
        entries.push([key, fromYaml(value, kwhere, file, lc)]);
      }
    }
    return { kind: 'block', entries, where };
  }
  if (isScalar(node)) return { kind: 'scalar', value: node.value, where };
  return { kind: 'scalar', value: node === null || node === undefined ? null : node.toJSON(), where };
}

/** Parses JSON (`json`) or YAML text into a Tree; a sequence becomes the key repeated. */
export function parseYamlLike(file: string, text: string, json: boolean): Tree {
  if (json) {
    try {
      JSON.parse(text);
    } catch (err) {
      throw new ConfigError([{ where: file, message: `invalid JSON: ${(err as Error).message}` }], { cause: err });
    }
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        where: `${file}:${lc.linePos(e.pos[0]).line}`,
        message: `invalid ${json ? 'JSON' : 'YAML'}: ${(e.message.split('\n')[0] as string).replace(/ at line \d+, column \d+:?$/, '')}`,
      })),
    );
  }
  const contents = doc.contents as YamlNode | null;
  if (contents === null || (isScalar(contents) && contents.value === null)) return { kind: 'block', entries: [], where: file };
  if (!isMap(contents)) throw new ConfigError([{ where: file, message: 'the top level must be a mapping of options' }]);
  return fromYaml(contents, `${file}:1`, file, lc);
}

/** Reads a file into a Tree: `.json`, `.yaml`/`.yml` by extension, Config::General otherwise. */
export function readTree(file: string, readFile: (file: string) => string): Tree {
  if (/\.(json|ya?ml)$/i.test(file)) return parseYamlLike(file, readConfigFile(file, readFile), /\.json$/i.test(file));
  return fromConfigGeneral(parseConfigGeneralFile(file, { readFile }));
}
