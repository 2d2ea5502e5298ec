import * as fs from 'node:fs';
import * as os from 'node:os';
import { errnoOf } from '@msgbricks/errors';
import { type PublisherAuth, REPOSITORY_RE } from '@msgbricks/notify';
import { ConfigError, type ConfigProblem } from '@msgbricks/transfer-cli';
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { LEVELS, type Level } from './logger';

/** The gateway's configuration, normalised (docs/notify.md, "Configuration"). */
export interface GatewayConfig {
  host: string;
  port: number;
  logLevel: Level;
  node: string;
  cache: string;
  broker: { uri: string; user?: string; pass?: string; vhost: string; exchange: string; repositories: string[] };
  tls?: { cert: string; key: string };
  publish: Record<string, PublisherAuth>;
  /** Signature checks of publishes, per repository or `*`: master key files or directories, and locations. */
  verify: Record<string, { keys: string[]; locations: string[] }>;
  subscribeTokens?: string[];
  rateLimit: { rate: number; burst: number };
  maxBodyBytes: number;
  maxSubscribers: number;
  maxBufferedBytes: number;
  stallTimeoutSeconds: number;
  heartbeatSeconds: number;
  /** Worker processes sharing the port (1: one process, no cluster). */
  workers: number;
}

/**
 * cvmfs-notify's environment overrides (its Erlang code dropped the AMQP ones): here they work. The broker is reached
 * over STOMP, so CVMFS_NOTIFY_AMQP_URL names its host and CVMFS_NOTIFY_AMQP_PORT its STOMP port.
 */
export const ENVIRONMENT = [
  'CVMFS_NOTIFY_PORT',
  'CVMFS_NOTIFY_LOG_LEVEL',
  'CVMFS_NOTIFY_AMQP_URL',
  'CVMFS_NOTIFY_AMQP_PORT',
  'CVMFS_NOTIFY_AMQP_USERNAME',
  'CVMFS_NOTIFY_AMQP_PASSWORD',
  'CVMFS_NOTIFY_AMQP_VHOST',
  'CVMFS_NOTIFY_AMQP_EXCHANGE',
] as const;

type Value = { value: unknown; where: string };

/**
 * Where JSON text goes wrong, if it does: V8's JSON.parse messages no longer say where, and a configuration error
 * names its line.
 */
export function jsonErrorAt(text: string): { at: number; what: string } | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\r\n'.includes(text[i] as string)) i++;
  };
  const fail = (what: string): never => {
    throw { at: i, what };
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      ws();
      if (text[i] === close) return void i++;
      for (;;) {
        if (c === '{') {
          ws();
          if (text[i] !== '"') fail('a key (a string) is expected');
          value();
          ws();
          if (text[i] !== ':') fail('":" is expected');
          i++;
        }
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === close) return void i++;
        else fail(`"," or "${close}" is expected`);
      }
    }
    if (c === '"') {
      // Control characters are not allowed raw in a JSON string (JSON allows DEL and C1 ones, no configuration has them).
      const m = /^"(?:[^"\\\p{Cc}]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/u.exec(text.slice(i));
      if (m === null) fail('an invalid string');
      i += (m as RegExpExecArray)[0].length;
      return;
    }
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i));
    if (m === null) fail('a value is expected');
    i += (m as RegExpExecArray)[0].length;
  };
  try {
    value();
    ws();
    if (i < text.length) fail('nothing may follow the value');
    return undefined;
  } catch (err) {
    return err as { at: number; what: string };
  }
}

/** Reads a file (JSON or YAML) into a key-path -> value map, each with FILE:LINE. */
function readFile(file: string): Map<string, Value> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ where: file, message: `cannot read (open: ${errnoOf(err) ?? String(err)})` }], { cause: err });
  }
  if (/\.json$/i.test(file)) {
    // JSON is YAML too, but YAML forgives what JSON does not (`"key": }` is a null there).
    const bad = jsonErrorAt(text);
    if (bad !== undefined) {
      const line = text.slice(0, bad.at).split('\n').length;
      throw new ConfigError([{ where: `${file}:${line}`, message: `syntax: ${bad.what}` }]);
    }
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({ where: `${file}:${lc.linePos(e.pos[0]).line}`, message: `syntax: ${e.message.split('\n')[0]}` })),
    );
  }
  const out = new Map<string, Value>();
  const at = (n: Node | null | undefined, fallback: string) => (n?.range ? `${file}:${lc.linePos(n.range[0]).line}` : fallback);
  // Maps whose keys are data (repositories, token names), kept whole.
  const opaque = /^(publish|verify|publish\.[^.]+\.(tokens|hmac))$/;
  const walk = (node: Node | null, path: string, where: string) => {
    if (isMap(node) && !opaque.test(path)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        walk(pair.value as Node | null, path === '' ? key : `${path}.${key}`, at(pair.key as Node, where));
      }
      return;
    }
    out.set(path, { value: node === null ? null : isScalar(node) ? node.value : node.toJSON(), where });
  };
  const root = doc.contents as Node | null;
  if (root !== null && !isMap(root)) throw new ConfigError([{ where: `${file}:1`, message: 'the top level must be a mapping' }]);
  walk(root, '', `${file}:1`);
  // Per-repository publish and verify blocks, with each repository's line.
  for (const section of ['publish', 'verify']) {
    const block = doc.get(section, true) as Node | undefined;
    if (!isMap(block)) continue;
    out.delete(section);
    for (const pair of block.items) {
      const repo = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const value = pair.value as Node | null;
      const where = at(pair.key as Node, file);
      if (!isMap(value)) out.set(`${section}/${repo}`, { value: value === null ? null : (value as Node).toJSON(), where });
      else
        for (const p of value.items) {
          const k = isScalar(p.key) ? String(p.key.value) : String(p.key);
          const v = p.value as Node | null;
          out.set(`${section}/${repo}/${k}`, {
            value: v === null ? null : isSeq(v) || isMap(v) || !isScalar(v) ? v.toJSON() : v.value,
            where: at(p.key as Node, where),
          });
        }
    }
  }
  return out;
}

const KNOWN = new Set([
  'host',
  'port',
  'log_level',
  'node',
  'cache',
  'broker.uri',
  'broker.user',
  'broker.pass',
  'broker.vhost',
  'broker.exchange',
  'broker.repositories',
  'tls.cert',
  'tls.key',
  'subscribe_tokens',
  'rate_limit.rate',
  'rate_limit.burst',
  'limits.max_body_bytes',
  'limits.max_subscribers',
  'limits.max_buffered_bytes',
  'limits.stall_timeout_seconds',
  'heartbeat_seconds',
  'workers',
]);
const PUBLISH_KEYS = new Set(['tokens', 'hmac', 'jwt', 'open']);
const VERIFY_KEYS = new Set(['keys', 'url']);

/**
 * Reads, normalises and validates the configuration: `file` (optional) then the environment; every problem is
 * reported at once, each with FILE:LINE (or `environment`) and its key.
 */
export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const values = file === undefined ? new Map<string, Value>() : readFile(file);
  const problems: ConfigProblem[] = [];
  // Publish keys are `publish/REPOSITORY/FIELD` inside (repository names have dots), shown with dots.
  const problem = (where: string, key: string, message: string) =>
    problems.push({ where, key: key.replaceAll('/', '.'), message });
  const setEnv = (key: string, name: string, value: unknown) => values.set(key, { value, where: `environment ${name}` });
  if (env.CVMFS_NOTIFY_PORT !== undefined) setEnv('port', 'CVMFS_NOTIFY_PORT', env.CVMFS_NOTIFY_PORT);
  if (env.CVMFS_NOTIFY_LOG_LEVEL !== undefined) setEnv('log_level', 'CVMFS_NOTIFY_LOG_LEVEL', env.CVMFS_NOTIFY_LOG_LEVEL);
  for (const [name, key] of [
    ['CVMFS_NOTIFY_AMQP_USERNAME', 'broker.user'],
    ['CVMFS_NOTIFY_AMQP_PASSWORD', 'broker.pass'],
    ['CVMFS_NOTIFY_AMQP_VHOST', 'broker.vhost'],
    ['CVMFS_NOTIFY_AMQP_EXCHANGE', 'broker.exchange'],
  ] as const) {
    if (env[name] !== undefined) setEnv(key, name, env[name]);
  }
  const amqpHost = env.CVMFS_NOTIFY_AMQP_URL;
  const amqpPort = env.CVMFS_NOTIFY_AMQP_PORT;
  if (amqpHost !== undefined || amqpPort !== undefined) {
    if (amqpPort !== undefined && !/^\d{1,5}$/.test(amqpPort))
      problem('environment', 'CVMFS_NOTIFY_AMQP_PORT', 'not a port number');
    const host = (amqpHost ?? 'localhost').replace(/^[a-z+]+:\/\//, '').replace(/[:/].*$/, '');
    setEnv(
      'broker.uri',
      amqpHost !== undefined ? 'CVMFS_NOTIFY_AMQP_URL' : 'CVMFS_NOTIFY_AMQP_PORT',
      `stomp://${host}:${amqpPort ?? 61613}`,
    );
  }
  for (const [key, v] of values) {
    if (key.startsWith('publish/')) {
      const [, , field] = key.split('/');
      if (field === undefined) problem(v.where, key, 'a repository entry must be a mapping (tokens, hmac, jwt, open)');
      else if (!PUBLISH_KEYS.has(field)) problem(v.where, key, 'unknown key (tokens, hmac, jwt, open)');
    } else if (key.startsWith('verify/')) {
      const [, , field] = key.split('/');
      if (field === undefined) problem(v.where, key, 'a repository entry must be a mapping (keys, url)');
      else if (!VERIFY_KEYS.has(field)) problem(v.where, key, 'unknown key (keys, url)');
    } else if (key === 'publish') problem(v.where, key, 'must map repositories (or *) to their publishers');
    else if (key === 'verify') problem(v.where, key, 'must map repositories (or *) to their keys and url');
    else if (!KNOWN.has(key)) problem(v.where, key, 'unknown key');
  }
  const str = (key: string, dflt?: string): string | undefined => {
    const v = values.get(key);
    if (v === undefined || v.value === null) return dflt;
    if (typeof v.value !== 'string' && typeof v.value !== 'number') {
      problem(v.where, key, 'must be a string');
      return dflt;
    }
    return String(v.value);
  };
  const num = (key: string, dflt: number, min: number, max: number): number => {
    const v = values.get(key);
    if (v === undefined || v.value === null) return dflt;
    const n =
      typeof v.value === 'number'
        ? v.value
        : typeof v.value === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(v.value)
          ? Number(v.value)
          : Number.NaN;
    if (!Number.isFinite(n) || n < min || n > max) {
      problem(v.where, key, `must be a number from ${min} to ${max}, not ${JSON.stringify(v.value)}`);
      return dflt;
    }
    return n;
  };
  const level = str('log_level', 'info') as string;
  if (!LEVELS.includes(level as Level))
    problem(values.get('log_level')?.where ?? 'environment', 'log_level', `must be one of ${LEVELS.join(', ')}`);
  const publish: Record<string, PublisherAuth> = {};
  for (const [key, v] of values) {
    const m = /^publish\/([^/]+)\/(tokens|hmac|jwt|open)$/.exec(key);
    if (m === null) continue;
    const [, repo, field] = m as unknown as [string, string, string];
    const entry = publish[repo] ?? {};
    publish[repo] = entry;
    if (field === 'open') {
      if (typeof v.value !== 'boolean') problem(v.where, key, 'must be true or false');
      else entry.open = v.value;
    } else if (field === 'tokens' || field === 'hmac') {
      const o = v.value;
      if (
        o === null ||
        typeof o !== 'object' ||
        Array.isArray(o) ||
        Object.values(o).some((t) => typeof t !== 'string' || t.length < 8)
      ) {
        problem(v.where, key, 'must map names to secrets (strings of 8 characters or more)');
      } else entry[field] = o as Record<string, string>;
    } else {
      const o = (v.value ?? {}) as Record<string, unknown>;
      const jwt: NonNullable<PublisherAuth['jwt']> = {};
      if (typeof o !== 'object' || Array.isArray(o))
        problem(v.where, key, 'must be a mapping (secret, public_key_file, issuer, audience)');
      else
        for (const [name, value] of Object.entries(o)) {
          if (typeof value !== 'string') problem(v.where, `${key}/${name}`, 'must be a string');
          else if (name === 'secret') jwt.secret = value;
          else if (name === 'issuer') jwt.issuer = value;
          else if (name === 'audience') jwt.audience = value;
          else if (name === 'public_key_file') {
            try {
              jwt.publicKey = fs.readFileSync(value, 'utf8');
            } catch (err) {
              problem(v.where, `${key}/${name}`, `cannot read ${value} (open: ${errnoOf(err)})`);
            }
          } else problem(v.where, `${key}/${name}`, 'unknown key (secret, public_key_file, issuer, audience)');
        }
      if (jwt.secret === undefined && jwt.publicKey === undefined) problem(v.where, key, 'needs secret or public_key_file');
      entry.jwt = jwt;
    }
  }
  const verify: Record<string, { keys: string[]; locations: string[] }> = {};
  const listOf = (v: unknown): string[] | undefined =>
    typeof v === 'string' ? [v] : Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
  for (const [key, v] of values) {
    const m = /^verify\/([^/]+)\/(keys|url)$/.exec(key);
    if (m === null) continue;
    const [, repo, field] = m as unknown as [string, string, string];
    const entry = verify[repo] ?? { keys: [], locations: [] };
    verify[repo] = entry;
    const list = listOf(v.value);
    if (list === undefined || list.length === 0) {
      problem(
        v.where,
        key,
        field === 'keys' ? 'must be a key file or directory, or a list of them' : 'must be a URL or directory, or a list',
      );
      continue;
    }
    if (field === 'keys') {
      for (const k of list) {
        try {
          fs.statSync(k);
          entry.keys.push(k);
        } catch (err) {
          problem(v.where, key, `cannot read ${k} (stat: ${errnoOf(err)})`);
        }
      }
    } else {
      // CVMFS_SERVER_URL's form too: several, separated by `;`.
      entry.locations.push(
        ...list
          .flatMap((u) => u.split(';'))
          .map((u) => u.trim())
          .filter((u) => u !== ''),
      );
    }
  }
  for (const [repo, entry] of Object.entries(verify)) {
    const where = values.get(`verify/${repo}/keys`)?.where ?? values.get(`verify/${repo}/url`)?.where ?? 'configuration';
    if (!values.has(`verify/${repo}/keys`)) problem(where, `verify/${repo}`, 'needs keys (the master public keys)');
    if (!values.has(`verify/${repo}/url`))
      problem(where, `verify/${repo}`, 'needs url (where the whitelist and certificate are)');
    if (entry.locations.length === 0) delete verify[repo];
  }
  let repositories: string[] = [];
  const br = values.get('broker.repositories');
  if (br !== undefined && br.value !== null) {
    if (!Array.isArray(br.value) || br.value.some((r) => typeof r !== 'string' || !REPOSITORY_RE.test(r)))
      problem(br.where, 'broker.repositories', 'must be a list of repository names');
    else repositories = br.value as string[];
  }
  let subscribeTokens: string[] | undefined;
  const st = values.get('subscribe_tokens');
  if (st !== undefined && st.value !== null) {
    if (!Array.isArray(st.value) || st.value.some((t) => typeof t !== 'string' || t === ''))
      problem(st.where, 'subscribe_tokens', 'must be a list of tokens');
    else subscribeTokens = st.value as string[];
  }
  const cert = str('tls.cert');
  const key = str('tls.key');
  if ((cert === undefined) !== (key === undefined))
    problem(values.get('tls.cert')?.where ?? values.get('tls.key')?.where ?? 'configuration', 'tls', 'needs both cert and key');
  const user = str('broker.user');
  const pass = str('broker.pass');
  const config: GatewayConfig = {
    host: str('host', '0.0.0.0') as string,
    port: num('port', 4929, 0, 65535),
    logLevel: level as Level,
    node: str('node', os.hostname()) as string,
    cache: str('cache', '/var/spool/msgnotify/cache') as string,
    broker: {
      uri: str('broker.uri', 'stomp://localhost:61613') as string,
      ...(user !== undefined ? { user } : {}),
      ...(pass !== undefined ? { pass } : {}),
      vhost: str('broker.vhost', '/') as string,
      exchange: str('broker.exchange', 'repository.activity') as string,
      repositories,
    },
    ...(cert !== undefined && key !== undefined ? { tls: { cert, key } } : {}),
    publish,
    verify,
    ...(subscribeTokens !== undefined ? { subscribeTokens } : {}),
    rateLimit: { rate: num('rate_limit.rate', 10, 0, 1e6), burst: num('rate_limit.burst', 20, 1, 1e6) },
    maxBodyBytes: num('limits.max_body_bytes', 1024 * 1024, 1024, 1024 ** 3),
    maxSubscribers: num('limits.max_subscribers', 100_000, 1, 10_000_000),
    maxBufferedBytes: num('limits.max_buffered_bytes', 256 * 1024, 1024, 1024 ** 3),
    stallTimeoutSeconds: num('limits.stall_timeout_seconds', 30, 0.1, 86_400),
    heartbeatSeconds: num('heartbeat_seconds', 15, 0.1, 3600),
    workers: num('workers', 1, 1, 256),
  };
  if (!Number.isInteger(config.workers))
    problem(values.get('workers')?.where ?? 'configuration', 'workers', 'must be a whole number');
  if (!/^[A-Za-z0-9._-]+$/.test(config.node))
    problem(values.get('node')?.where ?? 'configuration', 'node', 'letters, digits, ".", "_" and "-" only');
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
