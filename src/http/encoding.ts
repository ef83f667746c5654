// Whether a client takes a gzip body, from its Accept-Encoding (RFC 9110, section 12.5.3).
// Prometheus asks for gzip on every scrape; at 10,000 real servers the page is 37 MB of text
// that gzip at level 1 makes about 1.3 MB. Pure.

/** Codings by weight, as a header lists them: `gzip;q=0.5, br`. A bad weight counts as 0. */
function weights(header: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const item of header.split(',')) {
    const [coding = '', ...params] = item.split(';').map((s) => s.trim());
    if (!coding) continue;
    let q = 1;
    for (const p of params) {
      const m = /^q\s*=\s*(.*)$/i.exec(p);
      if (m) q = /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(m[1] ?? '') ? Number(m[1]) : 0;
    }
    out.set(coding.toLowerCase(), q);
  }
  return out;
}

/**
 * True when `header` accepts gzip: `gzip` (or its old name `x-gzip`) with a weight above 0, or
 * `*` above 0 when gzip is not named. No header means identity only (the RFC allows any coding
 * then, but a client that sends none, curl among them, expects plain text).
 */
export function acceptsGzip(header: string | readonly string[] | undefined): boolean {
  if (header === undefined) return false;
  const w = weights(typeof header === 'string' ? header : header.join(','));
  const named = w.get('gzip') ?? w.get('x-gzip');
  if (named !== undefined) return named > 0;
  return (w.get('*') ?? 0) > 0;
}
