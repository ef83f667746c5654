// The adaptive check cap: the decision as a table, and the shell that samples once a period.
import type { EventLoopUtilization } from 'node:perf_hooks';
import t from 'tap';
import {
  ADMISSION_PERIOD_MS,
  AdmissionControl,
  inFlightMax,
  lagOutside,
  openFilesLimit,
  schedulerCap,
  nextLimit,
  busyShareOf,
  spare,
  targetLag,
  type AdmissionSettings,
} from '../../src/health/admission.js';

const settings: AdmissionSettings = { max: 256, min: 16, targetLagMs: 50 };

t.test(
  'nextLimit: halves when late with checks waiting, grows when on time or nothing waits',
  async (t) => {
    const rows: [limit: number, lagMs: number, waited: boolean, want: number, why: string][] = [
      [256, 51, true, 128, 'just over the target, checks waiting: halved'],
      [256, 1200, true, 128, 'far over: still one halving a period'],
      [20, 400, true, 16, 'never below min'],
      [16, 400, true, 16, 'at min it stays'],
      [16, 0, true, 20, 'on time: a quarter more'],
      [128, 25, true, 160, 'at half the target still counts as on time'],
      [250, 0, true, 256, 'never above max'],
      [256, 0, true, 256, 'at max it stays'],
      [2, 0, true, 20, 'a limit below min is taken as min, then grown'],
      [100, 26, true, 100, 'between half the target and the target: held'],
      [100, 50, true, 100, 'at the target: held'],
      [256, 400, false, 256, 'late, but nothing waited: the cap is not the cause, kept'],
      [64, 400, false, 80, 'nothing waited: grown back, late or not'],
      [64, 40, false, 80, 'in the band, nothing waited: grown back'],
    ];
    for (const [limit, lag, waited, want, why] of rows)
      t.equal(nextLimit(limit, lag, waited, settings), want, why);
    t.equal(
      nextLimit(3, 0, true, { max: 10, min: 1, targetLagMs: 50 }),
      4,
      'a small cap grows by one',
    );
    t.equal(nextLimit(1, 999, true, { max: 10, min: 1, targetLagMs: 50 }), 1, 'min 1 holds');
  },
);

t.test('targetLag: a saturated loop runs up to 150 ms late, its timeouts allowing', async (t) => {
  const rows: [share: number, timeoutMs: number, want: number, why: string][] = [
    [0, 1000, 50, 'idle: the target'],
    [0.79, 1000, 50, 'just under saturated: the target'],
    [0.8, 1000, 150, 'saturated: up to 150 ms'],
    [1, Infinity, 150, 'no timeout seen: 150 ms'],
    [1, 900, 150, 'three turns of 150 ms are half of 900'],
    [1, 600, 100, 'a 600 ms timeout: three turns of 100 ms at most'],
    [1, 300, 50, 'a 300 ms timeout: never below the target'],
    [1, 100, 50, 'shorter still: the target'],
    [NaN, 1000, 50, 'no reading: the target'],
  ];
  for (const [share, timeoutMs, want, why] of rows)
    t.equal(targetLag(share, timeoutMs, 50), want, why);
  t.equal(targetLag(1, 1000, 50, 0.5), 150, 'an answer in half its timeout: no close call');
  t.equal(targetLag(1, 1000, 50, 0.51), 50, 'over half: a close call, the target');
  t.equal(targetLag(1, 1000, 50, NaN), 50, 'nor a nonsense reading');
});

t.test('AdmissionControl: a saturated period keeps the cap up to its own target', async (t) => {
  let share = 0.9;
  const applied: number[] = [];
  const a = new AdmissionControl(
    settings,
    (n) => applied.push(n),
    () => share,
  );
  a.observe(0, 0, false);
  a.observe(ADMISSION_PERIOD_MS, 120, true, 1000);
  t.same(applied, [], 'saturated, 120 ms late, checks waiting: kept');
  t.ok(a.behind(), 'yet behind: later than the target');
  a.observe(2 * ADMISSION_PERIOD_MS, 120, true, 300);
  t.same(applied, [128], 'a check of 300 ms timeout in the period: halved at the target');
  a.observe(3 * ADMISSION_PERIOD_MS, 160, true, 1000);
  t.same(applied, [128, 64], 'over 150 ms: halved');
  a.observe(4 * ADMISSION_PERIOD_MS, 70, true, 1000);
  t.same(applied, [128, 64, 80], 'within half its target: grown');
  share = 0.5;
  a.observe(5 * ADMISSION_PERIOD_MS, 70, true, 1000);
  t.same(applied, [128, 64, 80, 40], 'with CPU to spare, 70 ms late: halved');
  share = 0.9;
  a.observe(6 * ADMISSION_PERIOD_MS, 70, true, 1000);
  t.same(applied, [128, 64, 80, 40, 50], 'saturated again: grown');
  a.answered(600, 1000);
  a.observe(7 * ADMISSION_PERIOD_MS, 70, true, 1000);
  t.same(applied, [128, 64, 80, 40, 50, 25], 'a healthy answer in 600 ms of 1 s: halved');
  a.answered(400, 1000);
  a.observe(8 * ADMISSION_PERIOD_MS, 70, true, 1000);
  t.same(applied, [128, 64, 80, 40, 50, 25, 31], 'in 400 ms: not a close call, grown');
});

t.test('AdmissionControl decides once a period, on the worst lag in it', async (t) => {
  const applied: number[] = [];
  const a = new AdmissionControl(settings, (n) => applied.push(n));
  t.equal(a.current(), 256, 'starts at max');
  a.observe(0, 0, false);
  a.observe(10, 300, false);
  a.observe(50, 0, true);
  t.same(applied, [], 'nothing decided within the first period');
  a.observe(ADMISSION_PERIOD_MS, 0, false);
  t.same(applied, [128], 'the late timer and a check that had to wait, in one period, halved it');
  t.ok(a.behind(), 'that period was late');
  a.observe(ADMISSION_PERIOD_MS + 10, 0, true);
  a.observe(2 * ADMISSION_PERIOD_MS, 0, true);
  t.same(applied, [128, 160], 'an on-time period grows it');
  t.notOk(a.behind(), 'the last period kept time');
  a.observe(3 * ADMISSION_PERIOD_MS, 40, true);
  t.same(applied, [128, 160], 'a period inside the band changes nothing, and calls nothing');
  t.notOk(a.behind(), 'within the target is not behind');
  t.equal(a.current(), 160);
  a.observe(4 * ADMISSION_PERIOD_MS, 900, false);
  t.same(applied, [128, 160, 200], 'late with nothing waiting: grown, not halved');
});

t.test('min at or above max: a fixed cap, never changed', async (t) => {
  const applied: number[] = [];
  const a = new AdmissionControl({ max: 8, min: 8, targetLagMs: 50 }, (n) => applied.push(n));
  t.notOk(a.behind(), 'nothing seen yet');
  for (let i = 0; i < 10; i++) a.observe(i * ADMISSION_PERIOD_MS, 5000, true);
  t.same(applied, []);
  t.equal(a.current(), 8);
  t.ok(a.behind(), 'the lag is still seen: the loop is behind (for the hold)');
  a.observe(10 * ADMISSION_PERIOD_MS, 0, true);
  a.observe(11 * ADMISSION_PERIOD_MS, 0, true);
  t.notOk(a.behind(), 'and no longer once a period keeps time');
});

t.test('the scheduler cap: per event loop that probes; fixed with probe workers', async (t) => {
  const cases: [number, number, number, { max: number; min: number }, string][] = [
    [256, 16, 0, { max: 256, min: 16 }, 'no workers: as configured, adaptive'],
    [256, 512, 0, { max: 256, min: 256 }, 'a floor above the cap: fixed at the cap'],
    [256, 16, 2, { max: 512, min: 512 }, 'two workers: 256 each, fixed'],
    [100, 100, 3, { max: 300, min: 300 }, 'three workers, a fixed cap: 100 each'],
  ];
  for (const [concurrency, min, workers, want, why] of cases)
    t.same(schedulerCap(concurrency, min, workers), want, why);
});

t.test('inFlightMax: half the open files, never below the cap, or as set', async (t) => {
  const rows: [cap: number, openFiles: number, want: number, why: string][] = [
    [256, 20_000, 10_000, 'half the open files'],
    [256, 1_048_576, 524_288, "a container's limit"],
    [256, 1024, 512, "a shell's default"],
    [256, 300, 256, 'never below the cap'],
    [256, 513, 256, 'half, rounded down, still below it'],
    [512, 20_000, 10_000, 'with workers too: they share the files'],
    [256, Infinity, 524_288, 'unlimited: half of fs.nr_open'],
    [256, 0, 256, 'no limit read: the cap'],
    [256, NaN, 256, 'nor a nonsense one'],
  ];
  for (const [cap, openFiles, want, why] of rows) t.equal(inFlightMax(cap, openFiles), want, why);
  t.equal(inFlightMax(256, 20_000, 1000), 1000, 'check_in_flight_max set: it');
  t.equal(
    inFlightMax(256, 20_000, 100),
    256,
    'at or below the cap: the cap (a check keeps its slot)',
  );
  t.equal(inFlightMax(256, 0, 1000), 1000, 'set, with no limit read');
});

t.test('openFilesLimit: the soft limit from /proc/self/limits', async (t) => {
  const limits = (soft: string, hard = '524288') =>
    [
      'Limit                     Soft Limit           Hard Limit           Units     ',
      'Max cpu time              unlimited            unlimited            seconds   ',
      `Max open files            ${soft.padEnd(20)} ${hard.padEnd(20)} files     `,
      'Max processes             95833                95833                processes ',
    ].join('\n');
  t.equal(openFilesLimit(limits('20000', '20000')), 20_000);
  t.equal(openFilesLimit(limits('1024')), 1024, 'the soft limit, not the hard one');
  t.equal(openFilesLimit(limits('unlimited')), Infinity);
  t.equal(openFilesLimit(limits('x')), null);
  t.equal(openFilesLimit(limits('0')), null);
  t.equal(openFilesLimit('Max processes 1 1 processes'), null, 'no such line');
  t.equal(openFilesLimit(''), null);
});

t.test(
  'spare: the busiest loop busy under half the time, timers within half the target',
  async (t) => {
    const rows: [share: number, lagMs: number, want: boolean, why: string][] = [
      [0, 0, true, 'idle'],
      [0.49, 25, true, 'just under half busy, lag at half the target'],
      [0.5, 0, false, 'half busy: no CPU to spare'],
      [0.9, 5, false, 'busy, though on time'],
      [0.1, 26, false, 'idle but late: a GC pause, a long turn'],
    ];
    for (const [share, lag, want, why] of rows) t.equal(spare(share, lag, 50), want, why);
  },
);

t.test('busyShareOf: the share busy since the last call, from utilization readings', async (t) => {
  // A reader of made-up readings: active and idle ms so far, as performance's gives them.
  let active = 0;
  let idle = 0;
  const read = (a?: EventLoopUtilization, b?: EventLoopUtilization): EventLoopUtilization => {
    if (a && b) {
      const act = a.active - b.active;
      const all = act + a.idle - b.idle;
      return { active: act, idle: a.idle - b.idle, utilization: all > 0 ? act / all : 0 };
    }
    return { active, idle, utilization: 0 };
  };
  const share = busyShareOf(read);
  active += 30;
  idle += 70;
  t.equal(share(), 0.3);
  active += 90;
  idle += 10;
  t.equal(share(), 0.9, 'since the last call only');
  t.equal(share(), 0, 'nothing since');
});

t.test('the shell: spare once a period shows it, not before', async (t) => {
  let busy = 0;
  const a = new AdmissionControl(
    settings,
    () => undefined,
    () => busy,
  );
  t.notOk(a.spare(), 'not before a period');
  a.observe(0, 0, false);
  busy = 0.2;
  a.observe(ADMISSION_PERIOD_MS, 0, false);
  t.ok(a.spare(), 'busy a fifth of the period');
  busy = 0.8;
  a.observe(2 * ADMISSION_PERIOD_MS, 0, false);
  t.notOk(a.spare(), 'busy 80 %');
  busy = 0;
  a.observe(3 * ADMISSION_PERIOD_MS, 40, false);
  t.notOk(a.spare(), 'idle, a timer 40 ms late');
  a.observe(4 * ADMISSION_PERIOD_MS, 0, false);
  t.ok(a.spare(), 'idle and on time');
});

t.test('lagOutside: the lag a tick does not explain', async (t) => {
  const I = Infinity;
  // planned, now, span from, span until, lag outside the span
  const cases: [number, number, number, number, number, string][] = [
    [100, 180, I, I, 80, 'no tick yet: all of it'],
    [100, 180, 0, 50, 80, 'a tick that ended before the check was due'],
    [100, 180, 90, I, 0, 'due during a tick still running'],
    [100, 180, 90, 170, 10, 'due during a tick: what came after it'],
    [100, 180, 120, 150, 50, 'a tick within the lag: the rest'],
    [100, 180, 120, I, 20, 'a tick that began after the check was due: before it'],
    [100, 180, 200, I, 80, 'a tick after it fired'],
    [100, 90, 0, I, 0, 'early: no lag'],
  ];
  for (const [planned, now, from, until, want, name] of cases)
    t.equal(lagOutside(planned, now, { from, until }), want, name);
});
