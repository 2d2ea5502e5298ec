/**
 * The one percent-decoder of the broker settings: credential values, URI paths, failover options. UTF-8, strict,
 * and a bad sequence is the caller's own error (with its stable code), never a bare URIError.
 */

/**
 * Percent-decodes `text` as UTF-8 (`p%C3%A9` is `pé`); characters that are not encoded stay as they are. A `%` not
 * followed by two hex digits, or bytes that are not UTF-8, are `fail(message)`: the caller's own error.
 */
export function decodePercent(text: string, fail: (message: string) => Error): string {
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    throw fail('invalid percent-encoding (expected %XX sequences of UTF-8 bytes)');
  }
}
