// The fast reading of a config (js-yaml) must give the data yaml gives, or step aside: a table of
// what configs hold, each read both ways, and the tokens that send a config the careful way.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { fastData } from '../../src/config/load.js';

const careful = (text: string): unknown => parse(text, { uniqueKeys: true, logLevel: 'error' });

// Plain scalars of YAML 1.2's core schema and their look-alikes from 1.1 (which must stay strings).
const SCALARS = [
  '1',
  '-0',
  '+12',
  '007',
  '0o17',
  '0O17',
  '0x1F',
  '-0x10',
  '+0x10',
  '0b101',
  '1_000',
  '1e3',
  '1.5e-3',
  '+.5',
  '.5',
  '5.',
  '.inf',
  '-.Inf',
  '+.INF',
  '.nan',
  '.NaN',
  '12345678901234567890',
  'true',
  'True',
  'TRUE',
  'tRue',
  'false',
  'yes',
  'no',
  'on',
  'off',
  'y',
  'n',
  'null',
  'Null',
  'NULL',
  '~',
  '',
  '2001-12-14',
  '12:30',
  '1:20:30',
  '10.0.0.1',
  '::1',
  '"[::1]:80"',
  '10.0.0.1:80',
  '2001:db8::1',
  '0x7a100000',
  '500ms',
  '1h',
  '200-299',
  'a#b',
  'http://x/?a=1',
  '"quoted: yes"',
  "'it''s'",
  '"a\\x41\\u00e9\\n"',
  '"tab\\there"',
  "''",
  '""',
  'a b  c',
  '-x',
  '--x',
  '.',
];

t.test('every plain and quoted scalar reads alike', async (t) => {
  for (const s of SCALARS) {
    const text = `k: ${s}\n`;
    t.strictSame(fastData(text), careful(text), JSON.stringify(s));
  }
});

const DOCUMENTS: Record<string, string> = {
  'block and flow collections': 'a:\n  - 1\n  - {x: 1, y: [2, 3]}\n  - [a, b]\nb: {}\nc: []\n',
  'nested sequences': '- - 1\n  - 2\n- - 3\n',
  comments: '# top\na: 1 # after\n# between\nb:\n  # inside\n  c: 2\n',
  'literal and folded blocks':
    'a: |\n  one\n  two\nb: >\n  one\n  two\nc: |-\n  x\nd: >+\n  y\n\ne: 1\n',
  'multi-line plain and quoted': 'a: one\n  two\nb: "one\n  two"\nc: \'x\n\n  y\'\n',
  'keys of every kind': '1: a\ntrue: b\n"q": d\n0x10: e\n1.5: f\n"null": g\nnulls: h\n',
  'a key with no value': 'a:\nb: 1\n',
  'CRLF line ends': 'a: 1\r\nb:\r\n  - x\r\n',
  'a byte-order mark': '\ufeffa: 1\n',
  'document markers': '---\na: 1\n...\n',
  unicode: 'name: "web—é"\nb: ünï\n',
  __proto__: '__proto__: {a: 1}\nconstructor: 2\n',
  'a merge key is a plain key': '"<<": 1\nb: 2\n',
  'a JSON config':
    '{"virtual_services": [{"address": "10.0.0.1", "port": 80, "x": null, "y": 1.5}]}',
};

t.test('documents read alike', async (t) => {
  for (const [name, text] of Object.entries(DOCUMENTS)) {
    const fast = fastData(text);
    t.not(fast, undefined, `${name}: read the fast way`);
    t.strictSame(fast, careful(text), name);
  }
});

t.test('the example config reads alike, the fast way', async (t) => {
  const text = readFileSync(new URL('../../../deploy/ipvs-warden.yaml', import.meta.url), 'utf8');
  const fast = fastData(text);
  t.not(fast, undefined);
  t.strictSame(fast, careful(text));
});

t.test('what only yaml reads as meant, and every error, goes the careful way', async (t) => {
  const CAREFUL = {
    tag: 'a: !!str 12\n',
    'float tag': 'a: !!float 1\n',
    'local tag': 'a: !foo bar\n',
    'tag in a flow sequence': 'a: [!!str 1]\n',
    anchor: 'a: &x 1\nb: *x\n',
    'anchor in a sequence': '- &x {a: 1}\n- *x\n',
    directive: '%YAML 1.1\n---\na: yes\n',
    'complex key': '? [a, b]\n: 1\n',
    'null key': 'a: 1\nnull: 2\n',
    'null key in a sequence': '- ~: 2\n',
    'null key in a flow mapping': 'a: {b: 1, NULL: 2}\n',
    'empty key': 'a: 1\n: 2\n',
    'duplicate key': 'a: 1\na: 2\n',
    empty: '',
    'only a comment': '# nothing\n',
    'two documents': 'a: 1\n---\nb: 2\n',
    'not YAML': 'a: [1, 2\n',
  };
  for (const [name, text] of Object.entries(CAREFUL)) t.equal(fastData(text), undefined, name);
  // A string that merely looks like one of those tokens is also read carefully: slower, not wrong.
  t.equal(fastData('expect: "a *b"\n'), undefined);
  t.not(fastData('expect: "a*b&c!"\n'), undefined, 'inside a word they are plain characters');
});
