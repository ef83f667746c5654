// The adaptive check cap: the decision as a table, and the shell that samples once a period.
import t from 'tap';
import {
  ADMISSION_PERIOD_MS,
  AdmissionControl,
  nextLimit,
  type AdmissionSettings,
} from '../../src/health/admission.js';

const settings: AdmissionSettings = { max: 256, min: 16, targetLagMs: 50 };

t.test('nextLimit: halves when late, grows a quarter when on time, holds in between', async (t) => {
  const rows: [limit: number, lagMs: number, want: number, why: string][] = [
    [256, 51, 128, 'just over the target: halved'],
    [256, 1200, 128, 'far over: still one halving a period'],
    [20, 400, 16, 'never below min'],
    [16, 400, 16, 'at min it stays'],
    [16, 0, 20, 'on time: a quarter more'],
    [128, 25, 160, 'at half the target still counts as on time'],
    [250, 0, 256, 'never above max'],
    [256, 0, 256, 'at max it stays'],
    [2, 0, 20, 'a limit below min is taken as min, then grown'],
    [100, 26, 100, 'between half the target and the target: held'],
    [100, 50, 100, 'at the target: held'],
  ];
  for (const [limit, lag, want, why] of rows) t.equal(nextLimit(limit, lag, settings), want, why);
  t.equal(nextLimit(3, 0, { max: 10, min: 1, targetLagMs: 50 }), 4, 'a small cap grows by one');
  t.equal(nextLimit(1, 999, { max: 10, min: 1, targetLagMs: 50 }), 1, 'min 1 holds');
});

t.test('AdmissionControl decides once a period, on the worst lag in it', async (t) => {
  const applied: number[] = [];
  const a = new AdmissionControl(settings, (n) => applied.push(n));
  t.equal(a.current(), 256, 'starts at max');
  a.observe(0, 0);
  a.observe(10, 300);
  a.observe(50, 0);
  t.same(applied, [], 'nothing decided within the first period');
  a.observe(ADMISSION_PERIOD_MS, 0);
  t.same(applied, [128], 'the late timer in the period halved it');
  a.observe(ADMISSION_PERIOD_MS + 10, 0);
  a.observe(2 * ADMISSION_PERIOD_MS, 0);
  t.same(applied, [128, 160], 'an on-time period grows it');
  a.observe(3 * ADMISSION_PERIOD_MS, 40);
  t.same(applied, [128, 160], 'a period inside the band changes nothing, and calls nothing');
  t.equal(a.current(), 160);
});

t.test('min at or above max: a fixed cap, never changed', async (t) => {
  const applied: number[] = [];
  const a = new AdmissionControl({ max: 8, min: 8, targetLagMs: 50 }, (n) => applied.push(n));
  for (let i = 0; i < 10; i++) a.observe(i * ADMISSION_PERIOD_MS, 5000);
  t.same(applied, []);
  t.equal(a.current(), 8);
});
