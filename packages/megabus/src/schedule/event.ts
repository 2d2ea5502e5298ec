/** What identifies an event and when it happens, read from the message that announces it. */
import { MsgbricksError } from '@msgbricks/errors';
import type { Message } from '@msgbricks/message';

/**
 * Errors of timed schedules. Codes: ERR_SCHEDULE_OPTION (a bad Scheduler option, every problem named),
 * ERR_SCHEDULE_EVENT (a message without a usable key or time), ERR_SCHEDULE_TIMEOUT (a step ran past its time-out;
 * the AbortSignal's reason), ERR_SCHEDULE_CANCELLED (the event was cancelled while the step ran; the signal's
 * reason), ERR_SCHEDULE_STOPPED (the Scheduler stopped while the step ran), ERR_SCHEDULE_LATE (a failing step
 * given up because the next step fell due), ERR_SCHEDULE_CLOSED (submit after stop).
 */
export class ScheduleError extends MsgbricksError {}

/**
 * The value of `field` in a message: a header name, or `body.PATH` for a field of a JSON body (`body.event.id`).
 * Strings are taken as they are, numbers and booleans as their JSON text; anything else (absent, null, an object, a
 * body that is not JSON) is undefined.
 */
export function fieldValue(message: Message, field: string): string | undefined {
  if (!field.startsWith('body.')) return message.getHeader(field);
  let value: unknown;
  try {
    value = JSON.parse(typeof message.body === 'string' ? message.body : message.body.toString('utf8'));
  } catch {
    return undefined;
  }
  for (const part of field.slice(5).split('.')) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

const EPOCH = /^\d+(\.\d+)?$/;
// Date, optionally a time (seconds and fractions optional), optionally a zone; `T` or one blank in between.
const ISO = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;

/**
 * An event time as messages carry it: epoch seconds (fractions allowed) or ISO 8601 (`2026-03-01T06:00:00Z`,
 * `2026-03-01 07:00+01:00`; without a zone, UTC). Milliseconds since the epoch, or undefined if unreadable.
 */
export function parseEventTime(text: string): number | undefined {
  const t = text.trim();
  if (EPOCH.test(t)) return Math.round(Number(t) * 1000);
  const m = ISO.exec(t);
  if (m === null) return undefined;
  let zone = m[3] ?? 'Z';
  if (/^[+-]\d{2}$/.test(zone)) zone += ':00';
  else if (/^[+-]\d{4}$/.test(zone)) zone = `${zone.slice(0, 3)}:${zone.slice(3)}`;
  const ms = Date.parse(`${m[1]}T${m[2] ?? '00:00'}${zone.toUpperCase()}`);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Where a schedule finds an event's key and time in a message. */
export interface EventFields {
  /** The field naming the event (a header, or body.PATH). */
  readonly key: string;
  /** The field carrying the event time; undefined: the time the message arrived. */
  readonly time?: string;
}

/**
 * The key and time of the event a message announces; throws ScheduleError (ERR_SCHEDULE_EVENT) when the key is
 * missing or the time unreadable (a message megabusclt cannot schedule: the caller dead-letters it).
 */
export function eventOf(message: Message, fields: EventFields, arrival: number): { key: string; time: number } {
  const key = fieldValue(message, fields.key);
  if (key === undefined || key === '') throw new ScheduleError('ERR_SCHEDULE_EVENT', `no event key: ${fields.key} is missing`);
  if (fields.time === undefined) return { key, time: arrival };
  const text = fieldValue(message, fields.time);
  if (text === undefined) throw new ScheduleError('ERR_SCHEDULE_EVENT', `event ${key}: no event time: ${fields.time} is missing`);
  const time = parseEventTime(text);
  if (time === undefined)
    throw new ScheduleError(
      'ERR_SCHEDULE_EVENT',
      `event ${key}: ${fields.time}: ${JSON.stringify(text)} is neither epoch seconds nor ISO 8601`,
    );
  return { key, time };
}
