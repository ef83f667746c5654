// The one canonical text of an option set, from which every checker's merge key is made.
import t from 'tap';
import { canonical } from '../../src/health/canonical.js';

const same: [string, unknown, unknown][] = [
  ['object keys in any order', { a: 1, b: [2, 'x'] }, { b: [2, 'x'], a: 1 }],
  ['nested objects too', { o: { y: 1, x: 2 } }, { o: { x: 2, y: 1 } }],
  ['an undefined option is an omitted one', { a: 1, b: undefined }, { a: 1 }],
  ['a regex by source and flags', /a.b/gi, new RegExp('a.b', 'ig')],
  [
    'an object without a prototype is plain',
    Object.assign(Object.create(null), { a: 1 }),
    { a: 1 },
  ],
];
for (const [name, a, b] of same) t.equal(canonical(a), canonical(b), name);

const different: [string, unknown, unknown][] = [
  ['array order matters', [1, 2], [2, 1]],
  ['a regex is not its text', /ab/, '/ab/'],
  ['regex flags', /ab/, /ab/i],
  ['a number is not its text', 1, '1'],
  ['null is not an omitted option', { a: null }, {}],
  ['false is not an omitted option', { a: false }, {}],
  ['an empty mapping is not an omitted one', { a: {} }, {}],
  ['Infinity is not null', Infinity, null],
  ['a string that looks like a regex encoding', 'RegExp("a","")', /a/],
];
for (const [name, a, b] of different) t.not(canonical(a), canonical(b), name);

t.equal(
  canonical({ z: /x\/y/m, a: ['q', 1, true, null], m: { b: 'B', a: undefined } }),
  '{"a":["q",1,true,null],"m":{"b":"B"},"z":RegExp("x\\\\/y","m")}',
  'the text itself',
);

t.test('only plain data: anything else would hide in the key', async (t) => {
  for (const value of [
    () => 1,
    new Map(),
    new Set(),
    new Date(0),
    Buffer.from('a'),
    1n,
    Symbol('s'),
  ]) {
    t.throws(() => canonical({ option: value }), TypeError, Object.prototype.toString.call(value));
  }
});
