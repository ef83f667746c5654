// One canonical text for a check's options, so a merge key can never leave an option out: it
// is made from the whole option set, not from a hand-kept list. A leaf; pure.
//
// Object keys sorted; undefined (an option not given) omitted; a RegExp as its source and flags;
// arrays in order; anything but plain data refused, since it would hide in the key.

export function canonical(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string')
    return JSON.stringify(value);
  if (typeof value === 'number')
    return Number.isFinite(value) ? JSON.stringify(value) : String(value);
  if (value instanceof RegExp)
    return `RegExp(${JSON.stringify(value.source)},${JSON.stringify(value.flags)})`;
  if (Array.isArray(value)) return `[${value.map((v: unknown) => canonical(v ?? null)).join(',')}]`;
  if (typeof value === 'object') {
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto === Object.prototype || proto === null) {
      const fields = Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`);
      return `{${fields.join(',')}}`;
    }
  }
  throw new TypeError(
    `an option must be plain data (string, number, boolean, null, RegExp, array, object), got ${Object.prototype.toString.call(value)}`,
  );
}

/** A checker's merge key: its kind and its whole normalised option set. */
export function checkKey(kind: string, options: object): string {
  return `${kind}:${canonical(options)}`;
}
