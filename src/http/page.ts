// The live status page of `GET /`: the /status snapshot as plain HTML (a table per service, the
// recent events), readable with JavaScript off. A small inline script polls the page itself and
// swaps in the new <main>, so this one pure function is the only renderer (no template in the
// browser), and a failed poll shows the page as disconnected. Every text from config or a peer is
// escaped; the script and style are inline and allowed by their hashes in a CSP that allows
// nothing else but fetching from this origin.
import { createHash } from 'node:crypto';
import type { ServerStatus, ServiceStatus, Status } from './status.js';

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text safe in an element's content and in a quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/** Seconds between polls: `?refresh=N` (1..3600), else the default. */
export const DEFAULT_REFRESH_S = 2;
export function refreshSeconds(query: string): number {
  const raw = new URLSearchParams(query).get('refresh');
  const n = raw !== null && /^\d{1,4}$/.test(raw) ? Number(raw) : NaN;
  return n >= 1 && n <= 3600 ? n : DEFAULT_REFRESH_S;
}

/** "4s", "3m 2s", "2h 5m", "3d 4h": how long before `now` the instant `iso` was. */
export function age(iso: string | null, now: string): string {
  if (iso === null) return '-';
  const s = Math.max(0, Math.round((Date.parse(now) - Date.parse(iso)) / 1000));
  if (!Number.isFinite(s)) return '-';
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** An instant as its age, the exact time on hover. */
function when(iso: string | null, now: string): string {
  if (iso === null) return '-';
  return `<time title="${escapeHtml(iso)}">${age(iso, now)} ago</time>`;
}

// Colours by class only: a style attribute would need 'unsafe-inline'.
const STYLE = `body{font:14px/1.35 system-ui,sans-serif;margin:1em;color:#222;background:#fff}
h1{font-size:1.3em;margin:0 .5em 0 0;display:inline}h2{font-size:1.1em;margin:1.2em 0 .3em}
#conn{padding:.1em .5em;border-radius:3px;background:#dfd}.stale #conn{background:#c00;color:#fff}
.stale main{opacity:.5}p{margin:.4em 0}
table{border-collapse:collapse;margin:1em 0;min-width:60%}caption{text-align:left;font-weight:bold;padding:.2em 0}
th,td{border:1px solid #ccc;padding:.15em .5em;text-align:left;vertical-align:top}th{background:#eee}
td.n{text-align:right;font-variant-numeric:tabular-nums}td.m{max-width:40em;overflow-wrap:anywhere}
.up{background:#dfd}.down{background:#fcc}.pending{background:#ffd}.maint{background:#ddf}.active{background:#fdb}
.mode{padding:0 .4em;border-radius:3px;font-weight:bold}.mode-fallback,.mode-panic,.bad{background:#c00;color:#fff}
.mode-normal{background:#dfd}ul{padding:0;list-style:none;font-family:monospace}li.down{color:#c00}
@media(prefers-color-scheme:dark){body{background:#111;color:#ddd}th{background:#333}th,td{border-color:#555}
.up,.mode-normal,#conn{background:#143}.down{background:#622}.pending{background:#550}.maint{background:#335}.active{background:#640}}`;

// Polls the page itself; a poll that fails or takes too long marks the page stale (with how long
// since the last answer) and the next poll tries again. While text is selected the tables are
// left alone, so an operator can copy a message.
const SCRIPT = `(()=>{const b=document.body,n=1e3*b.dataset.refresh,c=document.getElementById("conn");
let ok=Date.now(),err="",held=false;const show=()=>{const a=Math.round((Date.now()-ok)/1e3),bad=err!==""||a*1e3>3*n;
b.classList.toggle("stale",bad);c.textContent=bad?"DISCONNECTED: no answer for "+a+" s"+(err?" ("+err+")":""):(held?"paused while text is selected, ":"live, ")+"updated "+a+" s ago";};
const poll=async()=>{const ab=new AbortController(),t=setTimeout(()=>ab.abort(),Math.max(n,5e3));
try{const r=await fetch(location.href,{cache:"no-store",signal:ab.signal});if(!r.ok)throw new Error("HTTP "+r.status);
const m=new DOMParser().parseFromString(await r.text(),"text/html").getElementById("live");
if(!m)throw new Error("not a status page");held=String(getSelection())!=="";
if(!held)document.getElementById("live").replaceWith(document.adoptNode(m));ok=Date.now();err="";}
catch(e){err=e.name==="AbortError"?"timed out":e.message;}clearTimeout(t);show();setTimeout(poll,n);};
show();setInterval(show,1e3);setTimeout(poll,n);})();`;

const hash = (text: string): string =>
  `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/** Headers of the page: nothing loads but its own script and style; it polls its own origin. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': `default-src 'none'; script-src ${hash(SCRIPT)}; style-src ${hash(STYLE)}; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

function serverRow(r: ServerStatus, now: string): string {
  const state = r.maintenance ? 'maint' : r.state;
  const num = (n: number | null): string => `<td class="n">${n === null ? '-' : n}</td>`;
  const why = r.maintenance || r.role === 'fallback' ? r.reason : r.message;
  return `<tr class="${escapeHtml(state)}"><td>${escapeHtml(r.name)}</td><td>${escapeHtml(r.target)}</td><td>${escapeHtml(r.maintenance ? `${r.state} (maint)` : r.state)}</td><td class="n" title="${escapeHtml(r.reason)}">${r.desired_weight === null ? 'out' : r.desired_weight}</td>${num(r.kernel_weight)}${num(r.active_connections)}${num(r.inactive_connections)}<td>${when(r.last_check, now)}</td><td class="m">${escapeHtml(why)}</td><td>${when(r.last_transition, now)}</td></tr>`;
}

function serviceTable(svc: ServiceStatus, now: string): string {
  const quorum =
    svc.quorum === false && svc.mode !== 'fallback'
      ? ` <span class="bad">NO QUORUM (healthy weight ${svc.healthy_weight})</span>`
      : '';
  return `<table><caption>${escapeHtml(svc.name)} <small>${escapeHtml(svc.service)}</small> <span class="mode mode-${escapeHtml(svc.mode)}">${escapeHtml(svc.mode)}</span> ${svc.healthy}/${svc.servers} healthy${quorum}</caption>
<thead><tr><th>server</th><th>target</th><th>state</th><th>want</th><th>kernel</th><th>active</th><th>inactive</th><th>last check</th><th>message</th><th>last change</th></tr></thead>
<tbody>${svc.real_servers.map((r) => serverRow(r, now)).join('\n')}</tbody></table>`;
}

/** Events shown, newest first (the loop keeps 100; /events has them all). */
export const PAGE_EVENTS = 25;

/** The whole page for one snapshot. Pure. */
export function renderPage(s: Status, refreshS = DEFAULT_REFRESH_S): string {
  const now = s.time;
  const parts: string[] = [];
  parts.push(
    `<p>${s.ready ? 'ready' : '<span class="bad">NOT READY</span> (no reconcile yet)'}${s.dry_run ? ', <span class="bad">DRY RUN</span>' : ''}; snapshot <time datetime="${escapeHtml(now)}">${escapeHtml(now)}</time>; ${s.stats.operationsApplied} operations applied, ${s.stats.operationsFailed} failed, ${s.stats.driftRepairs} drift repairs</p>`,
  );
  if (s.director?.drained)
    parts.push(
      `<p class="bad">DIRECTOR DRAINED: ${escapeHtml(s.director.drained_reason ?? '')}</p>`,
    );
  // Before the first tick there are none to show yet: NOT READY says so.
  if (s.services.length === 0 && s.ready) parts.push('<p>No services configured.</p>');
  for (const svc of s.services) parts.push(serviceTable(svc, now));
  if (s.unowned.length > 0)
    parts.push(`<p>Not owned (left alone): ${escapeHtml(s.unowned.join(', '))}</p>`);
  if (s.sync.role) parts.push(`<p>Director role: ${escapeHtml(s.sync.role)}</p>`);
  if (s.sync.error) parts.push(`<p class="bad">Sync daemon: ${escapeHtml(s.sync.error)}</p>`);
  if ((s.announce?.length ?? 0) > 0) {
    const rows = s.announce.map(
      (v) =>
        `<tr class="${v.announced ? 'up' : 'down'}"><td>${escapeHtml(v.vip)}</td><td>${v.announced ? 'announced' : 'WITHDRAWN'}</td><td>${escapeHtml(v.reason)}</td><td>${escapeHtml(v.services.join(', '))}</td></tr>`,
    );
    parts.push(
      `<table><caption>Announced VIPs</caption><thead><tr><th>VIP</th><th>state</th><th>why</th><th>services</th></tr></thead><tbody>${rows.join('\n')}</tbody></table>`,
    );
  }
  const events = s.events.slice(-PAGE_EVENTS).reverse();
  parts.push(
    `<h2>Recent events</h2>${
      events.length === 0
        ? '<p>None yet.</p>'
        : `<ul>${events
            .map(
              (e) =>
                `<li${e.event.endsWith('.down') || e.event.endsWith('_on') ? ' class="down"' : ''}>${when(e.time, now)} ${escapeHtml(e.event)} ${escapeHtml(e.service)}${e.server ? ` ${escapeHtml(e.server)}` : ''}${e.message ? `: ${escapeHtml(e.message)}` : ''}</li>`,
            )
            .join('\n')}</ul>`
    }`,
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>ipvs-warden</title><noscript><meta http-equiv="refresh" content="${refreshS}"></noscript>
<style>${STYLE}</style></head>
<body data-refresh="${refreshS}"><header><h1>ipvs-warden</h1> <span id="conn">snapshot ${escapeHtml(now)}, reloads every ${refreshS} s</span></header>
<main id="live">
${parts.join('\n')}
</main>
<footer><p>Read-only. <a href="/status">/status</a> (JSON) <a href="/events">/events</a> <a href="/metrics">/metrics</a>; refresh: <a href="?refresh=1">1 s</a> <a href="?refresh=${DEFAULT_REFRESH_S}">${DEFAULT_REFRESH_S} s</a> <a href="?refresh=10">10 s</a></p></footer>
<script>${SCRIPT}</script></body></html>
`;
}
