import { MsgbricksError } from '@msgbricks/errors';

/** Where a configuration value came from: a file and a 1-based line. */
export interface SourceLocation {
  readonly file: string;
  readonly line: number;
}

/**
 * One configuration problem. `where` is `FILE:LINE`, `FILE`, or `command line`;
 * `key` is the option (or syntax element) concerned, when there is one.
 */
export interface ConfigProblem {
  readonly where: string;
  readonly key?: string;
  readonly message: string;
}

/** `FILE:LINE: key: problem`, `command line: --key: problem`, or without the key part. */
export function formatProblem(p: ConfigProblem): string {
  if (p.key === undefined) return `${p.where}: ${p.message}`;
  const key = p.where === 'command line' ? `--${p.key}` : p.key;
  return `${p.where}: ${key}: ${p.message}`;
}

/** `FILE:LINE` of a source location. */
export function formatLocation(loc: SourceLocation): string {
  return `${loc.file}:${loc.line}`;
}

/**
 * A configuration file that cannot be parsed, or options that do not validate.
 * The message holds every problem, one per line, each formatted by `formatProblem`;
 * `problems` keeps them as data.
 */
export class ConfigError extends MsgbricksError {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[], options?: { cause?: unknown }) {
    super('ERR_CONFIG', problems.map(formatProblem).join('\n'), options);
    this.problems = problems;
  }
}
