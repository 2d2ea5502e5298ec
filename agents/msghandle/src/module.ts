/**
 * --module PATH: a JavaScript module (CommonJS, or an ES module through import()) exporting the handler, as
 * `handler`, as its default export, or as the module itself. A `.ts` module is compiled on load by the `typescript`
 * package when it can be found (transpiled only: no type check), otherwise refused with a message saying so.
 */
import * as fs from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UsageError } from '@msgbricks/errors';
import type { Handler } from '@msgbricks/handler';

type TypeScript = {
  transpileModule(text: string, o: { compilerOptions: Record<string, unknown>; fileName: string }): { outputText: string };
  ModuleKind: { CommonJS: number };
  ScriptTarget: { ES2022: number };
};

function typescript(from: string): TypeScript {
  for (const base of [from, __dirname]) {
    try {
      return require(require.resolve('typescript', { paths: [base] })) as TypeScript;
    } catch {
      // try the next place
    }
  }
  throw new UsageError(
    `--module ${from}: a TypeScript module needs the typescript package (npm install typescript), or compile it to JavaScript`,
  );
}

/** Makes require() compile .ts files with TypeScript (transpile only). */
function registerTypeScript(file: string): void {
  const exts = require.extensions as Record<string, unknown>;
  if (exts['.ts'] !== undefined) return;
  const ts = typescript(file);
  exts['.ts'] = (mod: NodeJS.Module & { _compile(code: string, f: string): void }, filename: string) => {
    const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      fileName: filename,
    });
    mod._compile(out.outputText, filename);
  };
}

function handlerOf(mod: unknown): Handler | undefined {
  if (typeof mod === 'function') return mod as Handler;
  if (mod === null || typeof mod !== 'object') return undefined;
  const m = mod as { handler?: unknown; default?: unknown };
  if (typeof m.handler === 'function') return m.handler as Handler;
  if (typeof m.default === 'function') return m.default as Handler;
  if (m.default !== null && typeof m.default === 'object') return handlerOf(m.default);
  return undefined;
}

export async function loadModule(path: string): Promise<Handler> {
  const file = resolve(path);
  if (!fs.existsSync(file)) throw new UsageError(`--module ${path}: no such file`);
  let mod: unknown;
  try {
    if (file.endsWith('.ts')) registerTypeScript(file);
    mod = file.endsWith('.mjs') ? await import(pathToFileURL(file).href) : require(file);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ERR_REQUIRE_ESM') mod = await import(pathToFileURL(file).href);
    else throw new UsageError(`--module ${path}: cannot load it: ${(err as Error).message}`, { cause: err });
  }
  const handler = handlerOf(mod);
  if (handler === undefined)
    throw new UsageError(
      `--module ${path}: exports no handler function (module.exports = fn, exports.handler or export default)`,
    );
  return handler;
}
