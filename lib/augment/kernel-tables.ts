// Small tensors the kernels read on every call: a search space's op kinds and ranges per device,
// the baselines' packed draw tables per device and image size. Each is made once per owner (a
// search space, a baseline's table of ops) and key, and kept out of any tidy() scope that is open
// when it is first needed; `releaseTables(owner)` frees an owner's tables now, and they are also
// freed when the owner is garbage-collected.
import { keep, tidy, type Tensor } from '../engine/tensor.js';

const cache = new WeakMap<object, Map<string, Tensor[]>>();
/** Keys per owner before its tables are dropped and remade: image sizes and devices in use are few. */
const KEYS_PER_OWNER = 64;

/** The tables of `owner` for `key`, made by `make` on first use. */
export function cachedTables(owner: object, key: string, make: () => Tensor[]): Tensor[] {
  let byKey = cache.get(owner);
  if (byKey === undefined) {
    byKey = new Map();
    cache.set(owner, byKey);
  }
  let tables = byKey.get(key);
  if (tables === undefined) {
    if (byKey.size >= KEYS_PER_OWNER) {
      for (const old of byKey.values()) for (const t of old) t.dispose();
      byKey.clear();
    }
    tables = tidy(() => make()).map((t) => keep(t));
    byKey.set(key, tables);
  }
  return tables;
}

/** Frees the tables made for `owner` now rather than when it is collected; they are remade if it is used again. */
export function releaseTables(owner: object): void {
  for (const tables of cache.get(owner)?.values() ?? []) for (const t of tables) t.dispose();
  cache.delete(owner);
}
