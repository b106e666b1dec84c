// A search's objective and regularisers, checked: each Error names the option and the rule.
import { describe } from '../util/describe.js';
import { SEARCH_OBJECTIVES, type Regularisers, type SearchObjective } from './objectives.js';
import { DEFAULT_WIDTH_ENTROPY, type WidthEntropy } from './ranges.js';

/** The regularisers that are set, each a non-negative finite number. */
export function checkRegularisers(regularisers: Regularisers): Regularisers {
  const known = [
    'entropyFloor',
    'entropyWeight',
    'strength',
    'strengthWeight',
    'changeReward',
    'widthFloor',
    'widthCeiling',
    'widthWeight',
    'widthRate',
    'prior',
    'tolerance',
    'riseTarget',
    'shortfallWeight',
  ];
  if (regularisers === null || typeof regularisers !== 'object')
    throw new TypeError(
      `search: regularisers must be an object { ${known.join(', ')} }, got ${describe(regularisers)}`,
    );
  const set: Record<string, number> = {};
  for (const [name, value] of Object.entries(regularisers)) {
    if (!known.includes(name))
      throw new RangeError(`search: unknown regulariser '${name}' (one of ${known.join(', ')})`);
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
      throw new RangeError(`search: regularisers.${name} must be a non-negative number, got ${describe(value)}`);
    set[name] = value;
  }
  for (const name of ['widthFloor', 'widthCeiling'] as const) {
    const value = set[name];
    if (value !== undefined && !(value > 0 && value <= 1))
      throw new RangeError(`search: regularisers.${name} must be a width in (0, 1], got ${describe(value)}`);
  }
  if (set.widthRate !== undefined && !(set.widthRate >= 1))
    throw new RangeError(`search: regularisers.widthRate must be at least 1, got ${describe(set.widthRate)}`);
  return set;
}

/** The width entropy's bounds and adaptation: the regularisers', else the defaults (dna/ranges.ts). */
export function widthBounds(regularisers: Regularisers): WidthEntropy {
  const bounds: WidthEntropy = {
    floor: regularisers.widthFloor ?? DEFAULT_WIDTH_ENTROPY.floor,
    ceiling: regularisers.widthCeiling ?? DEFAULT_WIDTH_ENTROPY.ceiling,
    weight: regularisers.widthWeight ?? DEFAULT_WIDTH_ENTROPY.weight,
    rate: regularisers.widthRate ?? DEFAULT_WIDTH_ENTROPY.rate,
  };
  if (bounds.floor > bounds.ceiling)
    throw new RangeError(
      `search: regularisers.widthFloor (${bounds.floor}) must not be above widthCeiling (${bounds.ceiling})`,
    );
  return bounds;
}

export function checkObjective(objective: string): SearchObjective {
  if (!(SEARCH_OBJECTIVES as readonly string[]).includes(objective)) {
    throw new RangeError(`search: unknown objective ${describe(objective)} (one of ${SEARCH_OBJECTIVES.join(', ')})`);
  }
  return objective as SearchObjective;
}
