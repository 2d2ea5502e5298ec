/** What Publisher and Consumer share: where their configuration comes from, and the event plumbing. */
import { Message } from '@msgbricks/message';
import { type LoadConfigOptions, loadConfig } from './config/load';
import type { MegabusConfig } from './config/types';
import type { MegabusEvent, MegabusEventListener } from './events';

/** How a Publisher or a Consumer gets its configuration. */
export interface ConfigSource {
  /**
   * The configuration: already loaded, a file to read, or undefined to search for it (MEGABUS_CONFIG, then
   * ./megabus.{yaml,yml,json,conf}, then /etc/megabus/).
   */
  config?: MegabusConfig | string;
  /** The search's environment, working directory and system directory (tests). */
  search?: LoadConfigOptions;
}

export function configOf(source: ConfigSource): MegabusConfig {
  if (typeof source.config === 'object') return source.config;
  return loadConfig({ ...source.search, file: source.config ?? source.search?.file });
}

export function emitter(listener: MegabusEventListener | undefined): (event: MegabusEvent) => void {
  return (event) => {
    try {
      listener?.(event);
    } catch {
      // A listener that throws must not break delivery: events are for logs.
    }
  };
}

/** A message from what send() accepts. */
export function toMessage(message: Message | string | Buffer, header?: Readonly<Record<string, string>>): Message {
  if (message instanceof Message)
    return header === undefined ? message : message.with({ header: { ...message.header, ...header } });
  return new Message({ header: header === undefined ? undefined : { ...header }, body: message });
}
