/**
 * Broker credentials, as Authen::Credential (the Perl module stompclt takes them from): the string form
 * `plain name=guest pass=guest`, `x509 cert=FILE key=FILE [pass=...] [ca=DIR] [ca_file=FILE]` or `none`, values
 * percent-encoded as UTF-8 (percent.ts), and the same rules for every protocol and for the option check.
 */
import { CredentialError } from './errors';
import { decodePercent } from './percent';

/** An Authen::Credential: `none`, `plain` (name, pass) or `x509` (cert, key, optional pass, ca, ca_file). */
export interface Credential {
  readonly scheme: 'none' | 'plain' | 'x509';
  readonly [field: string]: string;
}

/** The fields of each scheme, as Authen::Credential checks them. */
const FIELDS: Readonly<Record<Credential['scheme'], { required: readonly string[]; optional: readonly string[] }>> = {
  none: { required: [], optional: [] },
  plain: { required: ['name', 'pass'], optional: [] },
  x509: { required: ['cert', 'key'], optional: ['pass', 'ca', 'ca_file'] },
};

/** Percent-encodes what the string form cannot hold as is: `%` and white space. */
function encodeValue(value: string): string {
  return value.replace(/[%\s]/g, (ch) => encodeURIComponent(ch));
}

/**
 * Checks a credential given as fields (`{scheme, name, pass}`, values already decoded): a known scheme, its
 * required fields present and not empty, no other field.
 */
export function checkCredential(fields: Readonly<Record<string, string>>): Credential {
  const scheme = fields.scheme ?? '';
  const rules = Object.hasOwn(FIELDS, scheme) ? FIELDS[scheme as Credential['scheme']] : undefined;
  if (rules === undefined) throw new CredentialError(`unknown credential scheme ${JSON.stringify(scheme)} (none, plain or x509)`);
  const missing = rules.required.filter((f) => fields[f] === undefined || fields[f] === '');
  if (missing.length > 0) throw new CredentialError(`${scheme} credential without ${missing.join(', ')}`);
  const extra = Object.keys(fields).filter((f) => f !== 'scheme' && !rules.required.includes(f) && !rules.optional.includes(f));
  if (extra.length > 0) throw new CredentialError(`unexpected field(s) in ${scheme} credential: ${extra.join(', ')}`);
  return { ...fields, scheme } as Credential;
}

/** Parses and checks Authen::Credential's string form: `scheme k=v ...`, each value percent-decoded (UTF-8). */
export function parseCredential(text: string): Credential {
  const [scheme = '', ...words] = text.trim().split(/\s+/);
  const fields: Record<string, string> = { scheme };
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq <= 0) throw new CredentialError(`invalid credential field ${JSON.stringify(word)}: expected name=value`);
    const key = word.slice(0, eq);
    if (Object.hasOwn(fields, key)) throw new CredentialError(`credential field ${key} given more than once`);
    // N.B. the value is never quoted in a message: it may be a password.
    fields[key] = decodePercent(word.slice(eq + 1), (why) => new CredentialError(`credential field ${key}: ${why}`));
  }
  return checkCredential(fields);
}

/** A credential given as a string or as fields, parsed and checked. */
export function credentialOf(c: Credential | string): Credential {
  return typeof c === 'string' ? parseCredential(c) : checkCredential(c);
}

/** Authen::Credential's string form: `scheme k=v ...`, `%` and white space percent-encoded. */
export function formatCredential(c: Readonly<Record<string, string>>): string {
  const fields = Object.entries(c).filter(([k]) => k !== 'scheme');
  return [c.scheme ?? '', ...fields.map(([k, v]) => `${k}=${encodeValue(v)}`)].join(' ');
}

/** What a list of credentials asks of a connection: a login (`plain`), a client certificate (`x509`), or neither. */
export interface CredentialSet {
  readonly list: readonly Credential[];
  /** The `plain` credential's name and password (the last one given). */
  readonly login: { readonly name: string; readonly pass: string } | undefined;
  /** The `x509` credential (the last one given): TLS with a client certificate. */
  readonly x509: Credential | undefined;
}

/** Parses and checks the credentials of a connection. */
export function credentialSet(auth: readonly (Credential | string)[] | undefined): CredentialSet {
  const list = (auth ?? []).map(credentialOf);
  let login: CredentialSet['login'];
  let x509: Credential | undefined;
  for (const c of list) {
    if (c.scheme === 'plain') login = { name: c.name as string, pass: c.pass as string };
    else if (c.scheme === 'x509') x509 = c;
  }
  return { list, login, x509 };
}
