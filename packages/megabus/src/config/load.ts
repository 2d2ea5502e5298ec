/**
 * The Megabus configuration, found and read by Publisher and Consumer themselves: the file named by MEGABUS_CONFIG,
 * else ./megabus.{yaml,yml,json,conf}, else /etc/megabus/megabus.{yaml,yml,json,conf}; YAML, JSON or Apache style
 * (Config::General, as stompclt's files) through @msgbricks/config-general. Read into a tree, then normalised and
 * validated in one pass that reports every problem at once, each with its file, line and key (ConfigError).
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, type ConfigProblem, readTree, type Tree } from '@msgbricks/config-general';
import { errnoOf } from '@msgbricks/errors';
import { FILTER_KEYS, parseFilterKeys } from '../filter';
import { parseAddress } from '../resolver';
import { parsePluginKeys } from './plugins';
import type { MegabusAuth, MegabusConfig, MegabusProtocol } from './types';
import { type Kind, readBlock } from './values';

/** The environment variable naming the configuration file. */
export const CONFIG_ENV = 'MEGABUS_CONFIG';
/** The names looked for in the working directory, then in the system directory, in this order. */
export const CONFIG_NAMES: readonly string[] = ['megabus.yaml', 'megabus.yml', 'megabus.json', 'megabus.conf'];
export const SYSTEM_CONFIG_DIR = '/etc/megabus';

/** Where the x509 credential is by default (a grid host's certificate, as Puppet installs it). */
export const DEFAULT_CERT = '/etc/grid-security/hostcert.pem';
export const DEFAULT_KEY = '/etc/grid-security/hostkey.pem';

export interface LoadConfigOptions {
  /** The file to read (skips the search). */
  file?: string;
  /** The environment searched for MEGABUS_CONFIG (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** The working directory searched (default process.cwd()). */
  cwd?: string;
  /** The system directory searched (default /etc/megabus). */
  systemDir?: string;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The configuration file to read, by the search order above; ConfigError when there is none. */
export function findConfigFile(options: LoadConfigOptions = {}): string {
  if (options.file !== undefined) return options.file;
  const env = options.env ?? process.env;
  const named = env[CONFIG_ENV];
  if (named !== undefined && named !== '') return named;
  const dirs = [options.cwd ?? process.cwd(), options.systemDir ?? SYSTEM_CONFIG_DIR];
  for (const dir of dirs) {
    const found = CONFIG_NAMES.map((n) => join(dir, n)).filter(isFile);
    if (found.length > 1) {
      throw new ConfigError([{ where: dir, message: `more than one Megabus configuration: ${found.join(', ')}; keep one` }]);
    }
    if (found.length === 1) return found[0] as string;
  }
  throw new ConfigError([
    {
      where: 'megabus',
      message:
        `no configuration found: set ${CONFIG_ENV} to a file, or write megabus.yaml, megabus.json or megabus.conf in ` +
        `${dirs.join(' or ')}`,
    },
  ]);
}

/** Finds, reads and validates the configuration (ConfigError listing every problem). */
export function loadConfig(options: LoadConfigOptions = {}): MegabusConfig {
  const file = resolve(options.cwd ?? process.cwd(), findConfigFile(options));
  const tree = readTree(file, (f) => readFileSync(f, 'utf8'));
  return parseConfig(tree, file);
}

// ---------------------------------------------------------------------------------------------------------------
// The schema: every key, its type, and whether it may be given more than once.

const TOP: Readonly<Record<string, Kind>> = {
  server: 'string',
  servers: 'list',
  port: 'port',
  protocol: ['stomp', 'amqp'],
  use_multiple_brokers: 'bool',
  tls: 'bool',
  auth_method: ['x509', 'password'],
  user: 'string',
  password: 'string',
  cert: 'string',
  key: 'string',
  key_passphrase: 'string',
  ca: 'list',
  verify: 'bool',
  servername: 'string',
  vhost: 'string',
  destination: 'string',
  resolve_interval: 'seconds',
  connect_timeout: 'seconds',
  receipt_timeout: 'seconds',
  max_reconnect_delay: 'seconds',
};

const BLOCKS: Readonly<Record<string, Readonly<Record<string, Kind>>>> = {
  publisher: { spool: 'string', send_to_all: 'bool', reconnect_interval: 'seconds', persistent: 'bool' },
  consumer: { destination: 'string', prefetch: 'count', drain_quiet: 'seconds', spool: 'string' },
};

/** Top-level keys read apart from TOP: the blocks, and the filter keys. */
const TOP_APART: ReadonlySet<string> = new Set([...Object.keys(BLOCKS), ...Object.keys(FILTER_KEYS)]);

/**
 * Normalises and validates a configuration tree read from `file`. Unknown keys, repeated single keys, values of the
 * wrong type and inconsistent settings are all reported together.
 */
export function parseConfig(tree: Tree, file: string): MegabusConfig {
  const problems: ConfigProblem[] = [];
  const values = new Map<string, { value: unknown; where: string }>();
  const whereOf = new Map<string, string>();

  const collect = (block: Tree & { kind: 'block' }, schema: Readonly<Record<string, Kind>>, prefix: string) => {
    const read = readBlock(block, schema, prefix, problems, prefix === '' ? TOP_APART : undefined);
    for (const [key, node] of read.subs) {
      // The filter keys are read by parseFilterKeys, as in every block that takes them.
      if (Object.hasOwn(FILTER_KEYS, key)) continue;
      if (node.kind === 'block') collect(node, BLOCKS[key] as Record<string, Kind>, `${key}.`);
      else problems.push({ where: node.where, key, message: 'expected a block of settings' });
    }
    for (const [key, where] of read.given) whereOf.set(`${prefix}${key}`, where);
    for (const [key, v] of read.values) values.set(`${prefix}${key}`, v);
  };
  // megabusclt's keys (state_dir, metrics, plugins): read apart, their problems joining these.
  const { rest, ...pluginKeys } = parsePluginKeys(tree, dirname(file), problems);
  if (rest.kind === 'block') collect(rest, TOP, '');
  const filter = parseFilterKeys(tree, '', problems);

  const get = <T>(key: string): T | undefined => values.get(key)?.value as T | undefined;
  // Paths in a file are relative to its directory, as Puppet writes them next to each other.
  const base = dirname(file);
  const path = (key: string): string | undefined => {
    const p = get<string>(key);
    return p === undefined ? undefined : resolve(base, p);
  };
  const at = (key: string) => whereOf.get(key) ?? file;
  const problem = (key: string, message: string) => problems.push({ where: at(key), key, message });

  const protocol = get<MegabusProtocol>('protocol') ?? 'stomp';
  const method = get<'x509' | 'password'>('auth_method') ?? 'x509';
  const tls = get<boolean>('tls') ?? method === 'x509';

  // Brokers: an alias (or one broker's name) or a static list.
  const server = get<string>('server');
  const servers = get<string[]>('servers');
  if (server === undefined && servers === undefined && !whereOf.has('server') && !whereOf.has('servers')) {
    problems.push({ where: file, key: 'server', message: 'missing: the brokers alias (server) or a list of brokers (servers)' });
  }
  if (server !== undefined && servers !== undefined) problem('servers', 'give server (an alias) or servers (a list), not both');
  const parsedServers: { host: string; port?: number }[] = [];
  for (const s of servers ?? []) {
    try {
      const a = parseAddress(s);
      parsedServers.push(a.port === undefined ? { host: a.address } : { host: a.address, port: a.port });
    } catch (err) {
      problem('servers', (err as Error).message);
    }
  }
  if (server !== undefined && /[\s:/[\]]/.test(server))
    problem('server', `expected a host name, got ${JSON.stringify(server)} (the port is port)`);

  // Authentication and TLS.
  let auth: MegabusAuth;
  if (method === 'password') {
    const user = get<string>('user');
    const password = get<string>('password');
    if (user === undefined && !whereOf.has('user'))
      problems.push({ where: at('auth_method'), key: 'user', message: 'missing: auth_method password needs user' });
    if (password === undefined && !whereOf.has('password'))
      problems.push({ where: at('auth_method'), key: 'password', message: 'missing: auth_method password needs password' });
    for (const k of ['cert', 'key', 'key_passphrase']) if (whereOf.has(k)) problem(k, 'only used with auth_method x509');
    auth = { method, user: user ?? '', password: password ?? '' };
  } else {
    for (const k of ['user', 'password']) if (whereOf.has(k)) problem(k, 'only used with auth_method password');
    if (!tls) problem('tls', 'auth_method x509 needs TLS (a client certificate is only presented over TLS)');
    const cert = path('cert') ?? DEFAULT_CERT;
    const key = path('key') ?? DEFAULT_KEY;
    for (const [k, p] of [
      ['cert', cert],
      ['key', key],
    ] as const) {
      try {
        readFileSync(p);
      } catch (err) {
        problems.push({
          where: at(k),
          key: k,
          message: `cannot read the x509 ${k === 'cert' ? 'certificate' : 'key'}: ${errnoOf(err) ?? (err as Error).message} ${p}${whereOf.has(k) ? '' : ' (the default)'}`,
        });
      }
    }
    const passphrase = get<string>('key_passphrase');
    auth = passphrase === undefined ? { method, cert, key } : { method, cert, key, passphrase };
  }
  const cas = get<string[]>('ca')?.map((p) => resolve(base, p));
  for (const ca of cas ?? []) {
    try {
      statSync(ca);
    } catch (err) {
      problem('ca', `cannot read ${ca}: ${errnoOf(err) ?? (err as Error).message}`);
    }
  }
  if (!tls) for (const k of ['ca', 'verify', 'servername']) if (whereOf.has(k)) problem(k, 'only used with tls');

  const defaultPort = protocol === 'amqp' ? (tls ? 5671 : 5672) : tls ? 61614 : 61613;
  const seconds = (key: string, dflt: number) => get<number>(key) ?? dflt * 1000;

  if (problems.length > 0) {
    // In file order, as the reader goes through the file; problems of the file as a whole last.
    const line = (p: ConfigProblem) => Number(/:(\d+)$/.exec(p.where)?.[1] ?? Number.POSITIVE_INFINITY);
    throw new ConfigError(
      problems
        .map((p, i) => ({ p, i }))
        .sort((a, b) => line(a.p) - line(b.p) || a.i - b.i)
        .map(({ p }) => p),
    );
  }
  return {
    file,
    protocol,
    brokers: {
      alias: server,
      servers: servers === undefined ? undefined : parsedServers,
      port: get<number>('port') ?? defaultPort,
      multiple: get<boolean>('use_multiple_brokers') ?? true,
    },
    tls,
    tlsOptions: { ca: cas, verify: get<boolean>('verify') ?? true, servername: get<string>('servername') },
    auth,
    vhost: get<string>('vhost'),
    destination: get<string>('destination'),
    resolveInterval: seconds('resolve_interval', 60),
    connectTimeout: seconds('connect_timeout', 10),
    receiptTimeout: seconds('receipt_timeout', 30),
    maxReconnectDelay: seconds('max_reconnect_delay', 30),
    publisher: {
      spool: path('publisher.spool'),
      sendToAll: get<boolean>('publisher.send_to_all') ?? false,
      reconnectInterval: seconds('publisher.reconnect_interval', 600),
      persistent: get<boolean>('publisher.persistent') ?? true,
    },
    consumer: {
      destination: get<string>('consumer.destination'),
      prefetch: get<number>('consumer.prefetch') ?? 100,
      drainQuiet: seconds('consumer.drain_quiet', 30),
      spool: path('consumer.spool'),
    },
    filter,
    ...pluginKeys,
  };
}
