import { StringDecoder } from 'node:string_decoder';

/** One Server-Sent Event, as the WHATWG EventSource algorithm dispatches it. */
export interface SseEvent {
  /** `message` unless an `event:` field said otherwise. */
  readonly event: string;
  readonly data: string;
  /** The last event id in force (it carries over to later events without an `id:`). */
  readonly id: string;
}

/**
 * An incremental text/event-stream parser (the WHATWG algorithm): chunks may split lines, CRLF pairs and UTF-8
 * sequences anywhere; CR, LF and CRLF all end lines; comments (`:`) are heartbeats; `retry:` is kept in `retry`.
 * cvmfs_swissknife's subscriber split each curl chunk on newlines and stripped `data: `, which broke on any event
 * cut across two chunks.
 */
export class SseParser {
  private readonly decoder = new StringDecoder('utf8');
  private buffer = '';
  private data: string[] = [];
  private event = '';
  private started = false;
  /** The last `id:` seen (what to send as Last-Event-ID when reconnecting). */
  lastEventId = '';
  /** The last valid `retry:` advice, in ms. */
  retry: number | undefined;
  /** Comment lines seen (heartbeats). */
  comments = 0;

  /** Feeds a chunk; returns the events it completed. */
  push(chunk: Buffer | string): SseEvent[] {
    let text = typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    this.buffer += text;
    const out: SseEvent[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      if (m === null) break;
      // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
      if (m[0] === '\r' && m.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      const e = this.line(line);
      if (e !== undefined) out.push(e);
    }
    return out;
  }

  private line(line: string): SseEvent | undefined {
    if (line === '') {
      const data = this.data;
      const event = this.event;
      this.data = [];
      this.event = '';
      if (data.length === 0) return undefined;
      return { event: event === '' ? 'message' : event, data: data.join('\n'), id: this.lastEventId };
    }
    if (line.startsWith(':')) {
      this.comments++;
      return undefined;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
    }
    return undefined;
  }
}
