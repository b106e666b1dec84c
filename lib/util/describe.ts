// What error messages say about a value the caller gave, and the options argument every public
// function takes the same way. Building a message must never throw itself: `${value}` and
// String(value) do for a Symbol or an object without a prototype, JSON.stringify for a BigInt.

const MAX_STRING = 60;
const MAX_ITEMS = 8;

/** A string in single quotes, escaped as JSON escapes it, cut after 60 characters. */
function quote(text: string): string {
  const cut = text.length > MAX_STRING ? `${text.slice(0, MAX_STRING)}...` : text;
  const escaped = JSON.stringify(cut).slice(1, -1).replace(/\\"/g, '"').replace(/'/g, "\\'");
  return `'${escaped}'`;
}

function article(name: string): string {
  return /^[aeio]/i.test(name) ? `an ${name}` : `a ${name}`;
}

/** Objects by kind: arrays of a few plain values by their items, others by their class. */
function describeObject(value: object): string {
  if (Array.isArray(value)) {
    const items: unknown[] = value;
    const plain =
      items.length <= MAX_ITEMS &&
      items.every((item) => item === null || (typeof item !== 'object' && typeof item !== 'function'));
    return plain ? `[${items.map(describe).join(', ')}]` : `an array of ${items.length} items`;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === null || proto === Object.prototype) return 'an object';
  const name: unknown = (proto as { constructor?: { name?: unknown } }).constructor?.name;
  const kind = typeof name === 'string' && name !== '' ? article(name) : 'an object';
  return ArrayBuffer.isView(value) && 'length' in value ? `${kind} of ${String(value.length)}` : kind;
}

/**
 * A short description of any value for an error message, which never throws: numbers as
 * String(n) ("1.5", "NaN", "-Infinity"), strings quoted ('abc', cut after 60 characters),
 * null, undefined, true, 10n, Symbol(description), "a function (name)", arrays of a few plain
 * values by their items ("[2, 'a', null]") and others by their length ("an array of 20
 * items"), typed arrays by class and length ("a Float32Array of 3"), plain objects and those
 * without a prototype as "an object", other objects by their class ("a Date", "a Tensor").
 */
export function describe(value: unknown): string {
  try {
    switch (typeof value) {
      case 'number':
      case 'boolean':
      case 'undefined':
        return String(value);
      case 'bigint':
        return `${value}n`;
      case 'string':
        return quote(value);
      case 'symbol':
        return value.description === undefined ? 'a symbol' : `Symbol(${quote(value.description).slice(1, -1)})`;
      case 'function':
        return typeof value.name === 'string' && value.name !== '' ? `a function (${value.name})` : 'a function';
      default:
        return value === null ? 'null' : describeObject(value as object);
    }
  } catch {
    // A Proxy whose traps throw, a getter that throws: say what kind of value it is at least.
    return typeof value === 'function' ? 'a function' : 'an object';
  }
}

/**
 * An optional options argument as an object: undefined and null are no options (an empty
 * object); anything but a non-array object is a TypeError "where: options must be an object,
 * got ...". Use it for every options parameter that has a default.
 */
export function optionsObject<T extends object>(options: T | null | undefined, where: string): T {
  if (options === undefined || options === null) return {} as T;
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${where}: options must be an object, got ${describe(options)}`);
  }
  return options;
}

/**
 * A required options argument as an object: undefined and null are a TypeError
 * "where: options { fields } are required, got null", and so is anything `optionsObject` refuses.
 */
export function requiredOptions<T extends object>(options: T | null | undefined, where: string, fields: string): T {
  if (options === undefined || options === null) {
    throw new TypeError(`${where}: options ${fields} are required, got ${describe(options)}`);
  }
  return optionsObject(options, where);
}
