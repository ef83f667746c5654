// Which Accept-Encoding headers get a gzipped /metrics: table rows, pure.
import t from 'tap';
import { acceptsGzip } from '../../src/http/encoding.js';

const cases: [string | string[] | undefined, boolean, string][] = [
  [undefined, false, 'no header: plain (curl without --compressed)'],
  ['', false, 'an empty header asks for identity'],
  ['gzip', true, "Prometheus' header"],
  ['gzip, deflate, br', true, "fetch's"],
  ['GZip', true, 'codings are case-insensitive'],
  ['x-gzip', true, 'the old name'],
  ['identity', false, 'identity alone'],
  ['deflate, br', false, 'only codings we do not write'],
  ['gzip;q=0', false, 'gzip refused'],
  ['gzip; q=0.000', false, 'refused, three decimals'],
  ['gzip;q=0.5, identity;q=1', true, 'a lower weight still takes it'],
  ['gzip;Q=0.001', true, 'the least weight above 0'],
  ['gzip;q=2', false, 'a weight above 1 is malformed: not taken'],
  ['gzip;q=abc', false, 'a weight that is no number: not taken'],
  ['*', true, 'anything'],
  ['*;q=0', false, 'nothing but identity'],
  ['*, gzip;q=0', false, 'gzip named as refused beats *'],
  ['br, *;q=0.1', true, '* takes gzip when gzip is not named'],
  [['deflate', 'gzip'], true, 'the header given twice'],
  [' , ;q=1, gzip ', true, 'empty items are skipped'],
];
for (const [header, want, why] of cases)
  t.equal(acceptsGzip(header), want, `${JSON.stringify(header)}: ${why}`);
