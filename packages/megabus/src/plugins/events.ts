/** What the plugins report (megabusclt logs them and counts them; the library prints nothing). */
import type { MegabusEvent } from '../events';

export type PluginEvent =
  /** A plugin consumes its destination into its spool, and runs its actions over that spool. */
  | { readonly type: 'plugin-started'; readonly plugin: string; readonly destination: string; readonly queue: string }
  /** A message from a broker is in the plugin's spool (acknowledged to the broker once there). */
  | { readonly type: 'received'; readonly plugin: string; readonly element: string }
  /**
   * A message is done: `acted` (its actions ran), `unchanged` (on_change: its value was the last one for its key),
   * `ignored` (on_change: it has no key or no field).
   */
  | {
      readonly type: 'handled';
      readonly plugin: string;
      readonly element: string;
      readonly attempt: number;
      readonly outcome: 'acted' | 'unchanged' | 'ignored';
      readonly seconds: number;
    }
  /** An attempt failed; it is retried at `retryAt` (undefined: it goes to the dead-letter spool). */
  | {
      readonly type: 'failed';
      readonly plugin: string;
      readonly element: string;
      readonly attempt: number;
      readonly error: Error;
      readonly retryAt?: number;
    }
  /** An action asked for a later attempt that does not count (a command's 75, an HTTP 503, a refused connection). */
  | { readonly type: 'retry-later'; readonly plugin: string; readonly element: string; readonly retryAt: number }
  | {
      readonly type: 'dead-lettered';
      readonly plugin: string;
      readonly element: string;
      readonly reason: string;
      readonly error: string;
    }
  /** A `log` action's line. */
  | {
      readonly type: 'log';
      readonly plugin: string;
      readonly level: 'debug' | 'info' | 'warning' | 'error';
      readonly text: string;
      readonly fields: Readonly<Record<string, unknown>>;
    }
  /** Something that did not stop the plugin (an element that cannot be read, a purge that failed...). */
  | { readonly type: 'problem'; readonly plugin: string; readonly error: Error; readonly element?: string }
  /** An event of the plugin's Megabus Consumer (brokers resolved, connected, lost...). */
  | { readonly type: 'megabus'; readonly plugin: string; readonly event: MegabusEvent };

export type PluginEventListener = (event: PluginEvent) => void;
