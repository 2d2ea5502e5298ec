export { brokerUri } from './brokers';
export type { ConfigSource } from './common';
export { describeConfig } from './config/describe';
export type { LoadConfigOptions } from './config/load';
export { CONFIG_ENV, CONFIG_NAMES, findConfigFile, loadConfig, parseConfig, SYSTEM_CONFIG_DIR } from './config/load';
export { ACTION_SCHEMAS, type ActionSchema, DEFAULT_STATE_DIR, PLUGIN_NAME, parseMetricsAddress } from './config/plugins';
export type {
  BrokersConfig,
  ConsumerConfig,
  MegabusAuth,
  MegabusConfig,
  MegabusProtocol,
  MetricsAddress,
  OnChangeConfig,
  PluginConfig,
  PublisherConfig,
  ScheduleConfig,
  ScheduleStepConfig,
  TlsConfig,
} from './config/types';
export type { ConsumerBroker, ConsumerOptions, MessageContext, MessageHandler } from './consumer';
export { Consumer } from './consumer';
export { ActionError, ClosedError, NoBrokerError, ResolveError, StateError } from './errors';
export type { MegabusEvent, MegabusEventListener } from './events';
export type { Filter, FilterConfig } from './filter';
export {
  buildFilter,
  expandPattern,
  FILTER_KEYS,
  filterSelector,
  HOST_HEADER,
  HOSTGROUP_HEADER,
  LIKE_ESCAPE,
  NO_FILTER,
  parseFilterKeys,
} from './filter';
export type { ActionEnv, ActionFactory, BuiltAction } from './plugins/actions';
export { ABORT_GRACE_MS, ACTIONS, boundAction, HTTP_HEADER_JSON, HTTP_HEADER_PREFIX, httpHeaders } from './plugins/actions';
export type { PluginEvent, PluginEventListener } from './plugins/events';
export { ChangeState, ON_CHANGE_FILE } from './plugins/onchange';
export type { PluginCounters, PluginRunnerOptions } from './plugins/runtime';
export { PluginRunner, QUEUE_DIR } from './plugins/runtime';
export type { ActionConfig, ActionContext, ActionFn } from './plugins/types';
export type { PublisherOptions } from './publisher';
export { Publisher } from './publisher';
export type { Endpoint, ResolvedAddress, Resolver } from './resolver';
export { dnsResolver, parseAddress, resolveBrokers, staticResolver } from './resolver';
export type { Clock, Timer } from './schedule/clock';
export { ManualClock, systemClock } from './schedule/clock';
export type { EventFields } from './schedule/event';
export { eventOf, fieldValue, parseEventTime, ScheduleError } from './schedule/event';
export type { PluginSchedulesOptions } from './schedule/plugin';
export { arrivalOf, PluginSchedules, SCHEDULE_DIR, STD_ACTIONS } from './schedule/plugin';
export type { EventRecord, EventState, StepRecord, StepState } from './schedule/record';
export { recordName } from './schedule/record';
export type {
  CancelResult,
  ScheduleCounters,
  ScheduleEvent,
  ScheduleInput,
  SchedulerOptions,
  ScheduleStep,
  SubmitResult,
} from './schedule/scheduler';
export { Scheduler } from './schedule/scheduler';
export type { SmtpOptions } from './schedule/smtp';
export { SmtpError, sendSmtp } from './schedule/smtp';
export type { StdEmailOptions, StdLogEntry, StdShutdownOptions } from './schedule/std';
export { composeEmail, DEFAULT_SENDMAIL, defaultShutdownCommand, stdEmail, stdLog, stdShutdown } from './schedule/std';
