// quickReply, the HTTP check's reading of a whole, plain reply without the parser, held beside
// the parser (http-parser-js) it stands in for: the replies it takes, with why; the ones it
// leaves to the parser, with why; and thousands of mutations of a reply, where every one it
// takes must read as the parser reads it (status, Content-Length, body, a complete message).
import { HTTPParser } from 'http-parser-js';
import t from 'tap';
import { quickReply } from '../../checks/http.js';

/** The parser's reading of `bytes`, as the check's Exchange drives it; undefined if refused. */
function parsed(
  bytes: Buffer,
  head: boolean,
): { status: number; declared: string; body: string; complete: boolean } | undefined {
  const p = new HTTPParser(HTTPParser.RESPONSE);
  let status = -1;
  let major = -1;
  let declared = '';
  let body = '';
  let complete = false;
  p[HTTPParser.kOnHeadersComplete] = (...args: unknown[]) => {
    const info = (
      typeof args[0] === 'object'
        ? args[0]
        : { versionMajor: args[0], headers: args[2], statusCode: args[5] }
    ) as { versionMajor: number; headers: string[]; statusCode: number };
    status = info.statusCode;
    major = info.versionMajor;
    for (let i = 0; i + 1 < info.headers.length; i += 2)
      if (info.headers[i]?.toLowerCase() === 'content-length') declared = info.headers[i + 1] ?? '';
    return head ? 1 : 0;
  };
  p[HTTPParser.kOnBody] = (chunk: Buffer) => void (body += chunk.toString('latin1'));
  p[HTTPParser.kOnMessageComplete] = () => void (complete = true);
  const outcome = p.execute(bytes);
  if (outcome instanceof Error || major !== 1) return undefined;
  // onHead's guard on the first line, which the parser lets through.
  if (!/^HTTP\/\d\.\d \d{3}[ \r\n]$/.test(bytes.toString('latin1', 0, 13))) return undefined;
  return { status, declared, body, complete };
}

const taken: [string, string, boolean?][] = [
  ['a 200 with a body', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'],
  ['HTTP/1.0, no reason', 'HTTP/1.0 503\r\ncontent-length: 0\r\n\r\n'],
  [
    'names in any case, values with tabs',
    'HTTP/1.1 404 Not Found\r\nX-A:\t a b \t\r\nCONTENT-LENGTH:  3 \r\n\r\nabc',
  ],
  ['an empty value', 'HTTP/1.1 200 OK\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n'],
  ['HEAD: no body whatever the length', 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n', true],
  ['204 and 304 have none', 'HTTP/1.1 204 No Content\r\n\r\n'],
  ['a zero-padded length', 'HTTP/1.1 200 OK\r\nContent-Length: 002\r\n\r\nok'],
];
const left: [string, string, boolean?][] = [
  ['no length: the body runs to the close', 'HTTP/1.1 200 OK\r\n\r\nok'],
  ['chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n'],
  [
    'chunked with a length too (chunked wins)',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 12\r\n\r\n2\r\nok\r\n0\r\n\r\n',
  ],
  ['the body not all here', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok'],
  ['more than the body', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nok'],
  ['the headers not all here', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n'],
  [
    'an interim reply first',
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n',
  ],
  ['101', 'HTTP/1.1 101 Switching\r\nContent-Length: 0\r\n\r\n'],
  ['a status out of range', 'HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n'],
  ['four digits', 'HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n'],
  ['HTTP/2.0', 'HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n'],
  ['HTTP/1.2', 'HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n'],
  ['two lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok'],
  ['a length not of digits', 'HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok'],
  ['a length of 16 digits', `HTTP/1.1 200 OK\r\nContent-Length: ${'1'.repeat(16)}\r\n\r\n`],
  ['a bare LF', 'HTTP/1.1 200 OK\nContent-Length: 0\n\n'],
  ['a folded header', 'HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n'],
  ['a space before the colon', 'HTTP/1.1 200 OK\r\nX-A : a\r\nContent-Length: 0\r\n\r\n'],
  ['a byte past ASCII in a value', 'HTTP/1.1 200 OK\r\nX-A: \xe9\r\nContent-Length: 0\r\n\r\n'],
  ['a control byte in the reason', 'HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n'],
  [
    'headers past 8 KiB',
    `HTTP/1.1 200 OK\r\nX-Pad: ${'p'.repeat(8200)}\r\nContent-Length: 0\r\n\r\n`,
  ],
  ['not HTTP', 'SSH-2.0-OpenSSH_9.2\r\n\r\n'],
];

t.test('taken: read as the parser reads them', async (t) => {
  for (const [name, text, head = false] of taken) {
    const bytes = Buffer.from(text, 'latin1');
    const quick = quickReply(bytes, head);
    const p = parsed(bytes, head);
    t.ok(quick, name);
    t.same(
      quick && {
        status: quick.status,
        declared: quick.declared,
        body: quick.body.toString('latin1'),
        complete: true,
      },
      p,
      name,
    );
  }
});

t.test('left to the parser', async (t) => {
  for (const [name, text, head = false] of left)
    t.equal(quickReply(Buffer.from(text, 'latin1'), head), undefined, name);
});

t.test('mutations: whatever is taken reads as the parser reads it', async (t) => {
  // A fixed generator (xorshift32): the same mutations every run.
  let seed = 0x2545f491;
  const next = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  // Mostly the replies taken, whose small edits are often still taken; the rest for the edges.
  const bases = [...taken, ...taken, ...taken, ...left].map(([, text]) =>
    Buffer.from(text, 'latin1'),
  );
  const alphabet = Buffer.from('\r\n \t:0129aZ-HTP/.\x00\x7f\xe9', 'latin1');
  let took = 0;
  let agreed = 0;
  for (let i = 0; i < 20_000; i++) {
    const base = bases[next(bases.length)] ?? Buffer.alloc(0);
    const bytes = Buffer.from(base);
    const edits = 1 + next(2);
    let mutated = bytes;
    for (let e = 0; e < edits; e++) {
      const at = next(mutated.length + 1);
      const byte = alphabet[next(alphabet.length)] ?? 0;
      const kind = next(3);
      mutated =
        kind === 0
          ? Buffer.concat([mutated.subarray(0, at), Buffer.of(byte), mutated.subarray(at)])
          : kind === 1
            ? Buffer.concat([mutated.subarray(0, at), mutated.subarray(at + 1)])
            : Buffer.concat([mutated.subarray(0, at), Buffer.of(byte), mutated.subarray(at + 1)]);
    }
    const head = next(4) === 0;
    const quick = quickReply(mutated, head);
    if (!quick) continue;
    took++;
    const p = parsed(mutated, head);
    const same =
      p !== undefined &&
      p.complete &&
      p.status === quick.status &&
      p.declared === quick.declared &&
      p.body === quick.body.toString('latin1');
    if (same) agreed++;
    else t.fail(`${JSON.stringify(mutated.toString('latin1'))} head=${head}: ${JSON.stringify(p)}`);
  }
  t.equal(agreed, took, `${took} of 20,000 mutations taken, each read as the parser reads it`);
  t.ok(took > 1000, `enough taken to mean something: ${took}`);
});
