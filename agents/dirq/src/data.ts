import * as fs from 'node:fs';
import { type ElementData, type FieldValue, stringToTable, tableToString } from '@msgbricks/dirq';
import { InputError } from './errors';
import type { Fields } from './open';

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The per-field options of `add` on a normal queue. */
export interface FieldOptions {
  field: string[];
  fieldFile: string[];
  table: string[];
}

/** yargs gives a string for one occurrence and an array for several. */
export function asList(v: unknown): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

export function readFileArg(option: string, path: string): Buffer {
  try {
    return fs.readFileSync(path);
  } catch (err) {
    throw new InputError(`cannot read ${option} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, err);
  }
}

function decodeUtf8(what: string, bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch (err) {
    throw new InputError(`${what}: not valid UTF-8`, err);
  }
}

function splitPair(option: string, arg: string): [string, string] {
  const i = arg.indexOf('=');
  if (i <= 0) throw new InputError(`invalid ${option} ${JSON.stringify(arg)} (expected NAME=VALUE)`);
  return [arg.slice(0, i), arg.slice(i + 1)];
}

function fieldType(fields: Fields, option: string, name: string): string {
  const f = fields.find((x) => x.name === name);
  if (f === undefined) throw new InputError(`${option}: no field ${JSON.stringify(name)} in the schema`);
  return f.type;
}

/** Builds an element from `--field`, `--field-file` and `--table`; a field may be given once. */
export function elementFromOptions(fields: Fields, o: FieldOptions): ElementData {
  const data: ElementData = {};
  const tables = new Map<string, Record<string, string>>();
  const given = (option: string, name: string) => {
    if (Object.hasOwn(data, name) || (option !== '--table' && tables.has(name))) {
      throw new InputError(`${option}: field ${JSON.stringify(name)} given twice`);
    }
  };
  for (const arg of o.field) {
    const [name, value] = splitPair('--field', arg);
    const type = fieldType(fields, '--field', name);
    given('--field', name);
    if (type === 'table') throw new InputError(`--field: ${name} is a table field (use --table ${name}=KEY=VALUE)`);
    data[name] = type === 'binary' ? Buffer.from(value, 'utf8') : value;
  }
  for (const arg of o.fieldFile) {
    const [name, path] = splitPair('--field-file', arg);
    const type = fieldType(fields, '--field-file', name);
    given('--field-file', name);
    const bytes = readFileArg('--field-file', path);
    if (type === 'binary') data[name] = bytes;
    else if (type === 'string') data[name] = decodeUtf8(`--field-file ${path}`, bytes);
    // A table file is in the on-disk format, which is what `get --field` prints.
    else data[name] = parseTable(`--field-file ${path}`, decodeUtf8(`--field-file ${path}`, bytes));
  }
  for (const arg of o.table) {
    const [name, pair] = splitPair('--table', arg);
    if (fieldType(fields, '--table', name) !== 'table') throw new InputError(`--table: ${name} is not a table field`);
    given('--table', name);
    const [key, value] = splitPair(`--table ${name}=`, pair);
    const t = tables.get(name) ?? {};
    t[key] = value;
    tables.set(name, t);
  }
  for (const [name, t] of tables) data[name] = t;
  return data;
}

function parseTable(what: string, text: string): Record<string, string> {
  try {
    return stringToTable(text);
  } catch (err) {
    throw new InputError(`${what}: ${(err as Error).message}`, err);
  }
}

/**
 * The JSON form of an element, the one `get` prints: string fields as
 * strings, tables as objects, binary fields as base64 strings (the schema
 * says which is which, so no wrapper is needed and `get | add` round-trips).
 */
export function elementFromJson(fields: Fields, text: string): ElementData {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new InputError(`invalid JSON element: ${(err as Error).message}`, err);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new InputError('invalid JSON element: not an object of field name -> value');
  }
  const data: ElementData = {};
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    const type = fieldType(fields, 'JSON element', name);
    if (type === 'binary') {
      if (typeof value !== 'string' || !BASE64_RE.test(value)) {
        throw new InputError(`JSON element: binary field ${name} needs a base64 string`);
      }
      data[name] = Buffer.from(value, 'base64');
    } else {
      // The library checks string and table values against the schema.
      data[name] = value as FieldValue;
    }
  }
  return data;
}

/** The schema checks the library makes in add(), made before the queue is opened or created. */
export function checkElement(fields: Fields, data: ElementData): void {
  for (const f of fields) {
    const v = data[f.name];
    if (v === undefined) {
      if (!f.optional) throw new InputError(`missing mandatory field: ${f.name}`);
      continue;
    }
    const ok =
      f.type === 'binary'
        ? Buffer.isBuffer(v)
        : f.type === 'string'
          ? typeof v === 'string'
          : v !== null && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
    if (!ok)
      throw new InputError(
        `field ${f.name}: a ${f.type} field needs ${f.type === 'table' ? 'an object of strings' : 'a string'}`,
      );
  }
}

export function elementToJson(data: ElementData): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(data)) out[name] = fieldToJson(value);
  return out;
}

export function fieldToJson(value: FieldValue): unknown {
  return Buffer.isBuffer(value) ? value.toString('base64') : value;
}

/** A field's bytes as stored on disk: what `get --field` prints. */
export function fieldToBytes(value: FieldValue): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  return Buffer.from(tableToString(value), 'utf8');
}

/** All of stdin; refused on a terminal, where it would wait for input nobody meant to type. */
export async function readStdin(what: string): Promise<Buffer> {
  if (process.stdin.isTTY) throw new InputError(`no data: give ${what} or pipe it on stdin`);
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
