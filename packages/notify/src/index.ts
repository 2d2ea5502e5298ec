export type { AuthResult, PublisherAuth, PublishPolicy } from './auth';
export { Authorizer, RateLimiter } from './auth';
export type { NotifyBackend, StompBackendOptions } from './broker';
export { ALL_KEY, DEFAULT_EXCHANGE, StompBackend } from './broker';
export type { CachedNotification, PutOutcome } from './cache';
export { LastValueCache } from './cache';
export { type CvmfsClientConfig, expandServerUrl, readCvmfsClientConfig, readMasterKeys } from './cvmfs-config';
export {
  BrokerUnavailableError,
  CacheError,
  CvmfsConfigError,
  InvalidMessageError,
  ManifestError,
  NotifyError,
  PublicKeyError,
  RepositoryFetchError,
} from './errors';
export { feedFrame, sseFrame, summaryOf } from './frames';
export type { GatewayEvent, GatewayOptions, GatewayStats, VerifySpec } from './gateway';
export { Gateway, metricsText } from './gateway';
export type { HubOptions, HubStats, Sink } from './hub';
export { EVERY_REPOSITORY, Hub } from './hub';
export type { Manifest } from './manifest';
export { formatManifest, manifestHashMatches, parseManifest } from './manifest';
export type { Notification } from './message';
export { parseNotification, parseSubscription, REPOSITORY_RE } from './message';
export type { Channel, RelayEvent, RelayOptions } from './relay';
export { Relay, RelayBackend, sumStats } from './relay';
export { certificatePath, SignatureError, verifyManifestSignature, verifyWhitelist, type Whitelist } from './signature';
export type { SseEvent } from './sse';
export { SseParser } from './sse';
export { ManifestVerifier, type ManifestVerifierOptions } from './verifier';
