import * as fs from 'node:fs';
import { join } from 'node:path';
import { type InvalidOptionError, parseSchema, Queue, QueueSimple } from '@msgbricks/dirq';
import { InputError, QueueNotFoundError, QueueTypeError } from './errors';

export type QueueType = 'simple' | 'normal';
export type Fields = ReturnType<typeof parseSchema>;

/** The queue options every subcommand accepts. */
export interface QueueArgs {
  queue: string;
  type: QueueType;
  schema?: string;
  granularity?: number;
  maxelts?: number;
  umask?: string;
  fsync?: boolean;
}

export type Opened =
  | { type: 'simple'; queue: QueueSimple }
  | { type: 'normal'; queue: Queue; fields: Fields | undefined; schema: Record<string, string> | undefined };

const SCHEMA_ENTRY_RE = /^([^:\s]+)\s*:\s*(\S+)$/;

/** `--schema`: a JSON object, or the compact `name:type,name:type?` form. */
export function parseSchemaOption(text: string): { schema: Record<string, string>; fields: Fields } {
  let schema: Record<string, string>;
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (err) {
      throw new InputError(`invalid --schema: ${(err as Error).message}`, err);
    }
    schema = parsed as Record<string, string>;
  } else {
    schema = {};
    for (const entry of trimmed.split(',')) {
      const m = SCHEMA_ENTRY_RE.exec(entry.trim());
      if (m === null) throw new InputError(`invalid --schema entry: ${JSON.stringify(entry)} (expected name:type)`);
      const [, name, type] = m as unknown as [string, string, string];
      if (Object.hasOwn(schema, name)) throw new InputError(`invalid --schema: field ${JSON.stringify(name)} given twice`);
      schema[name] = type;
    }
  }
  try {
    return { schema, fields: parseSchema(schema) };
  } catch (err) {
    throw new InputError(`invalid --schema: ${(err as InvalidOptionError).message}`, err);
  }
}

function parseUmask(text: string): number {
  if (!/^[0-7]{1,3}$/.test(text)) throw new InputError(`invalid --umask: ${JSON.stringify(text)} (octal, 000 to 777)`);
  return Number.parseInt(text, 8);
}

function checkCount(option: string, v: number | undefined, min: number): number | undefined {
  if (v !== undefined && (!Number.isInteger(v) || v < min)) {
    throw new InputError(`invalid --${option}: ${String(v)} (an integer >= ${min})`);
  }
  return v;
}

function isDir(path: string): boolean {
  try {
    return fs.statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Checks the directory against `--type` by its layout (a normal queue has
 * temporary/ and obsolete/, a simple one has neither) before the library
 * constructor, which would otherwise create what is missing.
 */
function checkLayout(path: string, type: QueueType, create: boolean): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && create) return;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new QueueNotFoundError(`no such queue: ${path}`);
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') throw new QueueNotFoundError(`not a directory: ${path}`);
    throw err;
  }
  if (!st.isDirectory()) throw new QueueNotFoundError(`not a directory: ${path}`);
  const temporary = isDir(join(path, 'temporary'));
  const obsolete = isDir(join(path, 'obsolete'));
  if (temporary !== obsolete) {
    throw new QueueTypeError(
      `not a dirq queue: ${path} has ${temporary ? 'temporary/ but no obsolete/' : 'obsolete/ but no temporary/'}`,
    );
  }
  if (type === 'simple' && temporary) {
    throw new QueueTypeError(`not a simple queue: ${path} has temporary/ and obsolete/ (use --type normal)`);
  }
  // An empty directory may become a normal queue, but only by a subcommand allowed to create one.
  if (type === 'normal' && !temporary && !(create && fs.readdirSync(path).length === 0)) {
    throw new QueueTypeError(`not a normal queue: ${path} has no temporary/ and obsolete/ (use --type simple)`);
  }
}

/**
 * Validates every option, then opens the queue. Only `create` subcommands
 * (add, watch) may create the directory; nothing is created when an option
 * is rejected.
 */
export function openQueue(args: QueueArgs, create: boolean): Opened {
  if (args.queue === '') throw new InputError('invalid queue path: empty');
  const umask = args.umask === undefined ? undefined : parseUmask(args.umask);
  const fsync = args.fsync === true;
  if (args.type === 'simple') {
    if (args.schema !== undefined) throw new QueueTypeError('--schema applies to normal queues only (--type normal)');
    if (args.maxelts !== undefined) throw new QueueTypeError('--maxelts applies to normal queues only (--type normal)');
    const granularity = checkCount('granularity', args.granularity, 0);
    checkLayout(args.queue, 'simple', create);
    const opts = { fsync, ...(umask === undefined ? {} : { umask }), ...(granularity === undefined ? {} : { granularity }) };
    return { type: 'simple', queue: new QueueSimple(args.queue, opts) };
  }
  if (args.granularity !== undefined) throw new QueueTypeError('--granularity applies to simple queues only');
  const maxelts = checkCount('maxelts', args.maxelts, 1);
  const parsed = args.schema === undefined ? undefined : parseSchemaOption(args.schema);
  checkLayout(args.queue, 'normal', create);
  const opts = {
    fsync,
    ...(umask === undefined ? {} : { umask }),
    ...(maxelts === undefined ? {} : { maxelts }),
    ...(parsed === undefined ? {} : { schema: parsed.schema }),
  };
  return { type: 'normal', queue: new Queue(args.queue, opts), fields: parsed?.fields, schema: parsed?.schema };
}
