/**
 * From the alias to the brokers: a Resolver turns a name into addresses (every A and AAAA record by default), and
 * resolveBrokers turns the configuration into the list of brokers to use, each identified by `host:port`.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { BrokersConfig } from './config/types';
import { ResolveError } from './errors';

/** One address a name resolves to; `port` only when the resolver knows better than the configuration. */
export interface ResolvedAddress {
  readonly address: string;
  readonly port?: number;
}

/** Resolves a name to every address it has; injectable, so that tests need no DNS server and no hosts file. */
export type Resolver = (name: string) => Promise<readonly ResolvedAddress[]>;

/**
 * The system's resolver (getaddrinfo, so /etc/hosts as well as DNS): every IPv4 and IPv6 address of the name, in
 * the order given (no meaningful order for an alias).
 */
export const dnsResolver: Resolver = async (name) => {
  const found = await lookup(name, { all: true, family: 0, order: 'verbatim' });
  return found.map((a) => ({ address: a.address }));
};

/** A resolver answering from a table (tests, or brokers listed by another system); an unknown name resolves to nothing. */
export function staticResolver(table: Readonly<Record<string, readonly (string | ResolvedAddress)[]>>): Resolver {
  return async (name) => (table[name] ?? []).map((a) => (typeof a === 'string' ? parseAddress(a) : a));
}

/** `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address. */
export function parseAddress(text: string): ResolvedAddress {
  const t = text.trim();
  if (isIP(t) === 6) return { address: t };
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:[\]\s]+))(?::(\d+))?$/i.exec(t);
  if (m === null) throw new ResolveError(t, `invalid broker address ${JSON.stringify(text)}: expected host[:port]`);
  const port = m[3] === undefined ? undefined : Number(m[3]);
  if (port !== undefined && (port < 1 || port > 65535)) throw new ResolveError(t, `invalid port in ${JSON.stringify(text)}`);
  return { address: (m[1] ?? m[2]) as string, port };
}

/** One broker: where to connect, and its identity (`host:port`, `[v6]:port`). */
export interface Endpoint {
  readonly id: string;
  readonly host: string;
  readonly port: number;
}

export function endpoint(host: string, port: number): Endpoint {
  return { id: isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`, host, port };
}

/**
 * The brokers to use now: the static list, the alias itself (one broker, when use_multiple_brokers is off), or
 * every address of the alias. ResolveError when the alias resolves to nothing or not at all.
 */
export async function resolveBrokers(config: BrokersConfig, resolver: Resolver): Promise<Endpoint[]> {
  const out = new Map<string, Endpoint>();
  const add = (host: string, port: number | undefined) => {
    const e = endpoint(host, port ?? config.port);
    out.set(e.id, e);
  };
  if (config.servers !== undefined) {
    for (const s of config.servers) add(s.host, s.port);
    return [...out.values()];
  }
  const alias = config.alias as string;
  if (!config.multiple) {
    add(alias, undefined);
    return [...out.values()];
  }
  let addresses: readonly ResolvedAddress[];
  try {
    addresses = await resolver(alias);
  } catch (err) {
    throw new ResolveError(alias, `cannot resolve ${alias}: ${(err as Error).message}`, { cause: err });
  }
  for (const a of addresses) add(a.address, a.port);
  if (out.size === 0) throw new ResolveError(alias, `${alias} resolves to no address`);
  return [...out.values()];
}
