/**
 * Broker URIs, whatever the protocol: each protocol declares its schemes (which mean TLS, which default port) in a
 * SchemeTable, and one parser reads `scheme://host[:port][/path]` against it, inside the list forms of
 * failover.ts (`failover:(...)`, `file:`). The option check and the modules read the same tables.
 */
import { BrokerUriError } from './errors';
import { type BrokerList, parseBrokerList } from './failover';
import { decodePercent } from './percent';

export interface SchemeSpec {
  /** The connection is TLS. */
  readonly tls: boolean;
  /** The port when the URI gives none. */
  readonly port: number;
}

/** A protocol's URI schemes (lower case) and what each means. */
export type SchemeTable = Readonly<Record<string, SchemeSpec>>;

/** One server of a broker URI. */
export interface BrokerServer {
  readonly host: string;
  readonly port: number;
  /** TLS (the scheme says so). */
  readonly ssl: boolean;
  /** The URI this server came from, for messages. */
  readonly uri: string;
}

/** How a protocol's broker URIs are written. */
export interface UriSyntax<S extends BrokerServer> {
  readonly schemes: SchemeTable;
  /** One server's URI, for messages: `stomp://host[:port]`, `amqp://host[:port][/vhost]`. */
  readonly form: string;
  /**
   * Makes the protocol's server from the common parts and the segments of the URI's path, each percent-decoded as
   * UTF-8 (`/a%2Fb/c` is `['a/b', 'c']`; none when the path is absent or `/`). Without it a path is refused.
   */
  readonly server?: (base: BrokerServer, path: readonly string[], where: string) => S;
}

const SERVER = /^([a-z][a-z0-9+.-]*):\/\/(?:([^@/?#]*)@)?(\[[0-9a-f:.]+\]|[^:/?#@\s[\]]+)(?::(\d+))?(\/[^?#]*)?([?#].*)?$/i;

/** `a, b or c`. */
function alternatives(words: readonly string[]): string {
  return words.length < 2 ? words.join('') : `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}`;
}

/** The scheme of a URI (lower case), if it has one: `failover`, `file`, `amqp`... */
export function uriScheme(uri: string): string | undefined {
  return /^([a-z][a-z0-9+.-]*):/i.exec(uri.trim())?.[1]?.toLowerCase();
}

/** The schemes of the servers a URI names: one for a plain URI, one per member of a failover list; none for `file:`. */
export function serverSchemes(uri: string): string[] {
  const u = uri.trim();
  const failover = /^failover:\(?([^)?]*)\)?/i.exec(u);
  const members = failover === null ? [u] : (failover[1] ?? '').split(',').filter((m) => m.trim() !== '');
  return members.map(uriScheme).filter((s): s is string => s !== undefined && s !== 'file');
}

function parseServer<S extends BrokerServer>(uri: string, where: string, syntax: UriSyntax<S>): S {
  const text = uri.trim();
  const m = SERVER.exec(text);
  if (m === null) throw new BrokerUriError(`invalid broker URI ${JSON.stringify(uri)}${where}: expected ${syntax.form}`);
  const scheme = (m[1] as string).toLowerCase();
  const spec = Object.hasOwn(syntax.schemes, scheme) ? syntax.schemes[scheme] : undefined;
  if (spec === undefined) {
    throw new BrokerUriError(
      `unsupported scheme ${JSON.stringify(scheme)} in broker URI ${JSON.stringify(uri)}${where}: expected ${alternatives(Object.keys(syntax.schemes))}`,
    );
  }
  if (m[2] !== undefined) {
    throw new BrokerUriError(
      `broker URI ${JSON.stringify(uri)}${where} holds credentials: give them as auth (plain name=... pass=...)`,
    );
  }
  if (m[6] !== undefined) {
    throw new BrokerUriError(
      `broker URI ${JSON.stringify(uri)}${where} has a query or fragment: only failover: URIs take options`,
    );
  }
  let host = m[3] as string;
  if (host.startsWith('[')) host = host.slice(1, -1);
  const port = m[4] === undefined ? spec.port : Number(m[4]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new BrokerUriError(`invalid port ${m[4]} in broker URI ${JSON.stringify(uri)}${where}`);
  }
  const base: BrokerServer = { host, port, ssl: spec.tls, uri: text };
  const rawPath = m[5] ?? '';
  if (syntax.server === undefined) {
    if (rawPath !== '' && rawPath !== '/') {
      throw new BrokerUriError(`broker URI ${JSON.stringify(uri)}${where} has a path: expected ${syntax.form}`);
    }
    return base as S;
  }
  const segments = rawPath.length <= 1 ? [] : rawPath.slice(1).split('/');
  const fail = (why: string) => new BrokerUriError(`the path of broker URI ${JSON.stringify(uri)}${where}: ${why}`);
  return syntax.server(
    base,
    segments.map((s) => decodePercent(s, fail)),
    where,
  );
}

/**
 * Parses a broker URI of a protocol: `scheme://host[:port][/path]` with a scheme of its table, a
 * `failover:(u1,u2,...)?options` list or a `file:PATH` (failover.ts). Credentials in the URI and a query on a
 * plain URI are refused (credentials go in `auth`). Errors are BrokerUriError.
 */
export function parseBrokerUri<S extends BrokerServer>(uri: string, syntax: UriSyntax<S>): BrokerList<S> {
  return parseBrokerList(
    uri,
    (one, where) => parseServer(one, where, syntax),
    (message) => new BrokerUriError(message),
  );
}
