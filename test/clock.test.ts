// The system clock: a delay past what Node's timers hold is clamped, not wrapped to 1 ms.
import t from 'tap';
import { systemClock } from '../src/clock.js';

t.test('a delay beyond 2^31-1 ms does not fire at once', async (t) => {
  let fired = false;
  const timer = systemClock.setTimeout(() => (fired = true), 2 ** 31 + 1000);
  // Unclamped, Node fires it after 1 ms; 100 ms is a hundredfold margin on that.
  await new Promise((r) => setTimeout(r, 100));
  timer.cancel();
  t.notOk(fired);
});
