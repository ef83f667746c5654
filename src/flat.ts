// Keys the daemon keeps for its whole life, one or more per real server (ids, run keys, names),
// are made by template literals, and V8 makes each `+` of a template whose result has 13
// characters or more a rope: a 32-byte node over its two halves, kept until something
// flattens it. A target id was a tree of about ten ropes over fresh pieces (the numbers made
// strings), so at 10,000 real servers the heap held 155,000 ropes, 4.7 MiB of a 46 MiB live heap.

/** Written so the conversion below is never dropped as dead code. */
let sink = 0;

/**
 * `s`, flat: V8 flattens a string in place (String::Flatten) before reading it as a number, and
 * the garbage collector then points whatever held the rope at the flat string. Cheap: the parse
 * stops at the first character that is not part of a number. An engine that does not flatten
 * here costs memory, never a wrong value.
 */
export function flat(s: string): string {
  sink = (sink + Number(s)) | 0;
  return s;
}
