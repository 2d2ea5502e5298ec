/**
 * Whether the terminus of a broker's attach is absent: a refusal (its detach with the reason follows). rhea
 * gives an absent terminus as a typed AMQP null (`{value: null}`), not as null.
 */
export function isNullTerminus(t: unknown): boolean {
  return t === null || t === undefined || (t as { value?: unknown }).value === null;
}
