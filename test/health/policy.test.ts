// Rise and fall, row by row of the truth table in src/health/policy.ts.
import t from 'tap';
import {
  initialState,
  observe,
  type HealthPolicy,
  type HealthState,
} from '../../src/health/policy.js';

const policy: HealthPolicy = { rise: 2, fall: 3, initial: 'down' };

function run(
  results: boolean[],
  p = policy,
): { up: boolean[]; transitions: (string | null)[]; last: HealthState } {
  let state = initialState(p);
  const up: boolean[] = [];
  const transitions: (string | null)[] = [];
  for (const r of results) {
    const next = observe(state, r, p);
    state = next.state;
    up.push(state.up);
    transitions.push(next.transition);
  }
  return { up, transitions, last: state };
}

t.test('down until rise successes in a row; a failure in between starts over', async (t) => {
  const r = run([true, false, true, true, true]);
  t.same(r.up, [false, false, false, true, true]);
  t.same(r.transitions, [null, null, null, 'up', null]);
});

t.test('up until fall failures in a row; a success in between starts over', async (t) => {
  const r = run([true, true, false, false, true, false, false, false, false]);
  t.same(r.up, [false, true, true, true, true, true, true, false, false]);
  t.same(r.transitions, [null, 'up', null, null, null, null, null, 'down', null]);
  t.equal(r.last.failures, 4, 'failures keep counting while down');
});

t.test('start-up state: assumed up goes down only after fall failures', async (t) => {
  const p: HealthPolicy = { rise: 1, fall: 2, initial: 'up' };
  t.ok(initialState(p).up);
  t.equal(initialState(p).results, 0, 'no result yet');
  const r = run([false, false, true], p);
  t.same(r.up, [true, false, true]);
  t.same(r.transitions, [null, 'down', 'up']);
});

t.test('rise and fall of 1 follow every result', async (t) => {
  const r = run([true, false, true], { rise: 1, fall: 1, initial: 'down' });
  t.same(r.transitions, ['up', 'down', 'up']);
});
