// The types of requirements.js (plain JavaScript, read before the build by scripts/prereqs.js).

export interface Requirement {
  what: string;
  check: () => boolean;
  debs: string[];
}

/** The private brokers' requirements. */
export const brokers: Requirement[];
/** Everything `npm test` needs (python3-dirq, a C compiler, the brokers'). */
export const all: Requirement[];
/** The unmet requirements of `list`, and the Debian packages that meet them. */
export function unmet(list: Requirement[]): { missing: Requirement[]; debs: string[] };
/** The interpreter that sees Debian's python3-dirq. */
export const PYTHON: string;
export const RABBITMQ_SERVER: string;
export const ACTIVEMQ_JAR: string;
/** Debian's Chromium (the notify page test's browser). */
export const CHROMIUM: string;
