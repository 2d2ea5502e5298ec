export type {
  ConfType,
  EntrySpec,
  GlobalOverrides,
  GlobalSpec,
  Intensity,
  LoadConfigOptions,
  LsbServiceSpec,
  Output,
  ProcessServiceSpec,
  Readiness,
  ServiceSpec,
  Strategy,
  SupervisionConfig,
  SupervisorSpec,
} from './config';
export { DEFAULTS, entries, loadConfig, STRATEGIES, splitCommand } from './config';
export { ControlError, StartError } from './errors';
export { Backoff, IntensityTracker, STABLE_MS } from './intensity';
export type { RotatingLogOptions } from './logs';
export { LogError, RotatingLog } from './logs';
export { alive } from './proc';
export type { SingleResult } from './single';
export { single } from './single';
export { readStore, type StoreData, StoreError, writeStore } from './store';
export type {
  LeftChild,
  Log,
  LogLevel,
  NodeStatus,
  OutputSink,
  ReloadChange,
  State,
  SupervisionEvents,
  SupervisionOptions,
} from './tree';
export { checkLines, Supervision } from './tree';
