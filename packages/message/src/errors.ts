import { MsgbricksError } from '@msgbricks/errors';

/**
 * Everything that can go wrong with a message: bad JSON, bad UTF-8, an unknown encoding token,
 * bad base64, a corrupt compressed body, a codec that is not installed, a bad queue spec.
 * Codes: ERR_MESSAGE_UTF8, ERR_MESSAGE_JSON, ERR_MESSAGE_INVALID, ERR_MESSAGE_ENCODING,
 * ERR_MESSAGE_BASE64, ERR_MESSAGE_CODEC, ERR_MESSAGE_CODEC_UNAVAILABLE, and the ones of the
 * queue and generator modules.
 */
export class MessageError extends MsgbricksError {}
