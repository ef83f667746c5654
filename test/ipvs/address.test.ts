// Address text to kernel bytes: the hand-read dotted quad agrees with the parser it stands in
// front of, and leaves whatever the buffer held before no part of the address.
import ipaddr from 'ipaddr.js';
import t, { type Test } from 'tap';
import { canonicalAddress, writeAddress } from '../../src/ipvs/address.js';

/** What the bytes must be: the parser's reading, or its error. */
function reference(text: string): Buffer | Error {
  try {
    const out = Buffer.alloc(16);
    out.set(ipaddr.IPv4.parse(text).toByteArray());
    return out;
  } catch (e) {
    return e as Error;
  }
}

function written(t: Test, text: string): Buffer | Error {
  const out = Buffer.alloc(24, 0xee); // garbage around and under the 16 bytes
  try {
    writeAddress(4, text, out, 4);
  } catch (e) {
    return e as Error;
  }
  t.same([...out.subarray(0, 4), ...out.subarray(20)], Array(8).fill(0xee), `${text}: in place`);
  return out.subarray(4, 20);
}

t.test('IPv4 text, canonical or not, is written as the parser reads it', async (t) => {
  const cases = [
    ['0.0.0.0', [0, 0, 0, 0]],
    ['1.2.3.4', [1, 2, 3, 4]],
    ['10.101.0.1', [10, 101, 0, 1]],
    ['255.255.255.255', [255, 255, 255, 255]],
    ['192.168.100.200', [192, 168, 100, 200]],
    // Not canonical: the parser's reading (leading zeros are octal to it) or its error.
    ['010.0.0.1', null],
    ['1.2.3.04', null],
    ['256.0.0.1', null],
    ['1.2.3.1000', null],
    ['1.2.3', null],
    ['1.2.3.4.5', null],
    ['1..2.3', null],
    ['.1.2.3', null],
    ['1.2.3.', null],
    [' 1.2.3.4', null],
    ['1.2.3.4 ', null],
    ['0x0a.0.0.1', null],
    ['', null],
    ['1.2.3.a', null],
  ] as const;
  for (const [text, bytes] of cases) {
    const got = written(t, text);
    const want = reference(text);
    if (bytes) {
      t.same(
        [...(got as Buffer)],
        [...bytes, ...new Array<number>(12).fill(0)],
        `${text}: written`,
      );
      t.equal(canonicalAddress(4, text), text, `${text}: canonical`);
    }
    if (want instanceof Error) t.type(got, Error, `${text}: refused as the parser refuses it`);
    else t.same(got, want, `${text}: as the parser reads it`);
  }
});

t.test('every canonical octet in every position', async (t) => {
  let wrong = 0;
  for (let v = 0; v < 256; v++) {
    for (let at = 0; at < 4; at++) {
      const parts = [7, 7, 7, 7];
      parts[at] = v;
      const got = written(t, parts.join('.'));
      if (!(got instanceof Buffer) || [...got.subarray(0, 4)].join('.') !== parts.join('.'))
        wrong++;
    }
  }
  t.equal(wrong, 0);
});
