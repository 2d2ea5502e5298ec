/**
 * Header fields as environment variables for --exec: `MSG_HEADER_` + the name with ASCII letters upper-cased, digits
 * kept, and every other character (`-`, `.`, `:`, `_`, a space, anything not ASCII) made `_`. `content-type` is
 * MSG_HEADER_CONTENT_TYPE, `x.priority` MSG_HEADER_X_PRIORITY, `été` MSG_HEADER__T_. Two names that map to one
 * variable: the first in header order wins (the JSON file named by MSG_JSON has every field as it is). A value
 * with a NUL character cannot be in an environment: it is left out (again, the JSON file has it).
 */
export const HEADER_PREFIX = 'MSG_HEADER_';

/** The environment variable of header field `name`. */
export function envName(name: string): string {
  return HEADER_PREFIX + name.replace(/[^A-Za-z0-9]/g, '_').toUpperCase();
}

/** The variables of a header: [variable, value] in header order, each variable once. */
export function headerEnv(header: Iterable<readonly [string, string]>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of header) {
    const name = envName(k);
    if (Object.hasOwn(env, name) || v.includes('\0')) continue;
    env[name] = v;
  }
  return env;
}
