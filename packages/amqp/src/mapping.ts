import { RejectedError } from '@msgbricks/agent';
import { Message } from '@msgbricks/message';
import { type Message as RheaMessage, message as rheaMessage } from 'rhea';

/**
 * The mapping between msgbricks messages and AMQP 1.0 messages (docs/amqp-mapping.md has the table).
 *
 * Bodies always travel as a single data section, text ones UTF-8 encoded with a text content type: RabbitMQ maps
 * a single data section to the raw AMQP 0-9-1 and STOMP body, so a message shoveled between protocols keeps
 * its bytes. Well-known headers map to the AMQP header and properties sections, every other header to an
 * application property (a string).
 */

export const TEXT_PLAIN = 'text/plain; charset=UTF-8';

/** Set on a received message whose body was not data sections: `amqp-value` or `amqp-sequence`, as JSON text. */
export const BODY_TYPE_HEADER = 'x-amqp-body-type';
/** Set on a received message that has been delivered before (AMQP header `delivery_count`); never sent on. */
export const DELIVERY_COUNT_HEADER = 'x-amqp-delivery-count';

/** Headers that address or describe the transfer, not the message: never sent as application properties. */
export const RESERVED_HEADERS: readonly string[] = ['destination', 'persistent', BODY_TYPE_HEADER, DELIVERY_COUNT_HEADER];

/** Header names of the AMQP properties section, both directions. */
const STRING_PROPERTIES = [
  ['message-id', 'message_id'],
  ['correlation-id', 'correlation_id'],
  ['reply-to', 'reply_to'],
  ['subject', 'subject'],
  ['content-type', 'content_type'],
  ['content-encoding', 'content_encoding'],
  ['to', 'to'],
  ['x-amqp-group-id', 'group_id'],
  ['x-amqp-reply-to-group-id', 'reply_to_group_id'],
] as const;
const STRING_PROPERTY: ReadonlyMap<string, (typeof STRING_PROPERTIES)[number][1]> = new Map(STRING_PROPERTIES);

const UINT_MAX = 0xffff_ffff;

/** Whether a content-type says text, as the STOMP module (Net::STOMP::Client): a bare `text/x`, or any type with a charset. */
export function isTextContentType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  return /^\s*text\/[\w.+-]+\s*$/i.test(contentType) || /;\s*charset\s*=/i.test(contentType);
}

function uintOf(value: string, max: number): number | undefined {
  if (!/^\d{1,16}$/.test(value)) return undefined;
  const n = Number(value);
  return n <= max ? n : undefined;
}

export interface MessageToAmqpOptions {
  /** `durable` for messages without a `persistent` header (default true: a transfer agent moves messages it must not lose). */
  persistent?: boolean;
}

/**
 * A message as an AMQP 1.0 message for rhea, or a RejectedError saying why it cannot be one (a text body with a
 * non-text content-type, or the reverse: the STOMP module refuses the same). The `destination` header is not
 * mapped: it chooses the link.
 */
export function messageToAmqp(message: Message, options: MessageToAmqpOptions = {}): RheaMessage {
  // rhea's UTF-8 would silently turn a lone surrogate into U+FFFD: refused instead (docs/message.md).
  const unencodable = message.utf8Problem();
  if (unencodable !== undefined) throw new RejectedError(unencodable);
  const out: RheaMessage = { body: undefined };
  const props: Record<string, string> = {};
  let durable = options.persistent ?? true;
  for (const [k, v] of message.headerEntries()) {
    const field = STRING_PROPERTY.get(k);
    if (field !== undefined) {
      out[field] = v;
      continue;
    }
    switch (k) {
      case 'destination':
      case BODY_TYPE_HEADER:
      case DELIVERY_COUNT_HEADER:
        break;
      case 'persistent':
        // Anything but true/false keeps the default, as RabbitMQ's STOMP plugin treats a non-"true" value.
        if (/^true$/i.test(v)) durable = true;
        else if (/^false$/i.test(v)) durable = false;
        break;
      case 'user-id':
        out.user_id = Buffer.from(v, 'utf8') as unknown as string;
        break;
      case 'priority': {
        const n = uintOf(v, 255);
        if (n === undefined) props[k] = v;
        else out.priority = n;
        break;
      }
      case 'expiration': {
        const n = uintOf(v, UINT_MAX);
        if (n === undefined) props[k] = v;
        else out.ttl = n;
        break;
      }
      case 'x-amqp-group-sequence': {
        const n = uintOf(v, UINT_MAX);
        if (n === undefined) props[k] = v;
        else out.group_sequence = n;
        break;
      }
      case 'x-amqp-creation-time':
      case 'x-amqp-absolute-expiry-time': {
        const n = uintOf(v, Number.MAX_SAFE_INTEGER);
        if (n === undefined) props[k] = v;
        else out[k === 'x-amqp-creation-time' ? 'creation_time' : 'absolute_expiry_time'] = new Date(n);
        break;
      }
      default:
        props[k] = v;
    }
  }
  out.durable = durable;
  if (Object.keys(props).length > 0) out.application_properties = props;
  const type = out.content_type as string | undefined;
  let bytes: Buffer;
  if (typeof message.body === 'string') {
    if (type === undefined) out.content_type = TEXT_PLAIN;
    else if (!isTextContentType(type))
      throw new RejectedError(`a text body with the non-text content-type ${JSON.stringify(type)}`);
    bytes = Buffer.from(message.body, 'utf8');
  } else {
    if (isTextContentType(type)) throw new RejectedError(`a binary body with the text content-type ${JSON.stringify(type)}`);
    bytes = message.body;
  }
  out.body = rheaMessage.data_section(bytes);
  return out;
}

// rhea gives data and amqp-sequence sections as instances of its (unexported) Section class.
const Section = (rheaMessage.data_section(Buffer.alloc(0)) as object).constructor;
const DATA = 0x75;
const SEQUENCE = 0x76;

interface RheaSection {
  typecode: number;
  content: unknown;
  multiple?: boolean;
}

function isSection(body: unknown): body is RheaSection {
  return typeof body === 'object' && body !== null && body.constructor === Section;
}

function hex(b: Buffer): string {
  return b.toString('hex');
}

/** An AMQP message id (string, ulong, uuid or binary) as header text; a 16-byte binary reads as a UUID. */
function idText(id: unknown): string {
  if (typeof id === 'string') return id;
  if (Buffer.isBuffer(id)) {
    const h = hex(id);
    return id.length === 16 ? `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}` : h;
  }
  return valueText(id);
}

/** An application property value (any AMQP simple type) as header text. */
function valueText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object' && v !== null) return JSON.stringify(v, jsonReplacer);
  return String(v);
}

function jsonReplacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  // The holder's raw value: JSON.stringify has already applied Buffer's toJSON to `value`.
  const raw = this[key];
  if (Buffer.isBuffer(raw)) return raw.toString('base64');
  if (typeof raw === 'bigint') return raw.toString();
  return value;
}

function timeText(t: unknown): string {
  return t instanceof Date ? String(t.getTime()) : valueText(t);
}

/**
 * A received AMQP 1.0 message (rhea's decoded form) as a message: application properties and the well-known
 * properties as headers (the properties win over application properties of the same name), data sections as
 * the body (text when the content-type says so and the bytes are UTF-8), an amqp-value string as text, an
 * amqp-value binary as binary, anything else as JSON text with an `x-amqp-body-type` header.
 */
export function amqpToMessage(m: RheaMessage): Message {
  const header = new Map<string, string>();
  const app = m.application_properties;
  if (app !== undefined && app !== null) {
    for (const [k, v] of Object.entries(app)) if (v !== undefined && v !== null) header.set(k, valueText(v));
  }
  for (const [name, field] of STRING_PROPERTIES) {
    const v = m[field];
    if (v === undefined || v === null) continue;
    header.set(name, field === 'message_id' || field === 'correlation_id' ? idText(v) : valueText(v));
  }
  if (m.user_id !== undefined && m.user_id !== null) {
    header.set('user-id', Buffer.isBuffer(m.user_id) ? m.user_id.toString('utf8') : valueText(m.user_id));
  }
  if (typeof m.priority === 'number') header.set('priority', String(m.priority));
  if (typeof m.ttl === 'number') header.set('expiration', String(m.ttl));
  if (m.group_sequence !== undefined && m.group_sequence !== null) header.set('x-amqp-group-sequence', String(m.group_sequence));
  if (m.creation_time !== undefined && m.creation_time !== null) header.set('x-amqp-creation-time', timeText(m.creation_time));
  if (m.absolute_expiry_time !== undefined && m.absolute_expiry_time !== null) {
    header.set('x-amqp-absolute-expiry-time', timeText(m.absolute_expiry_time));
  }
  if (m.durable === true) header.set('persistent', 'true');
  else header.delete('persistent');
  if (typeof m.delivery_count === 'number' && m.delivery_count > 0) header.set(DELIVERY_COUNT_HEADER, String(m.delivery_count));
  else header.delete(DELIVERY_COUNT_HEADER);
  header.delete(BODY_TYPE_HEADER);

  const body: unknown = m.body;
  if (body === undefined) return new Message({ header, body: Buffer.alloc(0) });
  if (isSection(body) && body.typecode === DATA) {
    const parts = body.multiple ? (body.content as Buffer[]) : [body.content as Buffer];
    const bytes = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    if (isTextContentType(header.get('content-type'))) {
      try {
        return new Message({ header, body: bytes, text: true });
      } catch {
        // Not UTF-8 after all: keep the bytes.
      }
    }
    return new Message({ header, body: bytes });
  }
  if (isSection(body) && body.typecode === SEQUENCE) {
    header.set(BODY_TYPE_HEADER, 'amqp-sequence');
    return new Message({ header, body: JSON.stringify(body.multiple ? body.content : [body.content], jsonReplacer) });
  }
  if (typeof body === 'string') return new Message({ header, body });
  if (Buffer.isBuffer(body)) return new Message({ header, body });
  header.set(BODY_TYPE_HEADER, 'amqp-value');
  return new Message({ header, body: JSON.stringify(body, jsonReplacer) ?? 'null' });
}
