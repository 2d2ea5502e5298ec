export type { Headers, SelectorMode } from './compile';
export type { SelectorErrorCode } from './errors';
export { SelectorError } from './errors';
export type { ParseOptions, Selector } from './selector';
export { clearSelectorCache, parseSelector, SELECTOR_CACHE_SIZE } from './selector';
