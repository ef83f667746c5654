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
  t.equal(initialState(p).checked, false, 'no result yet');
  const r = run([false, false, true], p);
  t.same(r.up, [true, false, true]);
  t.same(r.transitions, [null, 'down', 'up']);
});

t.test('rise and fall of 1 follow every result', async (t) => {
  const r = run([true, false, true], { rise: 1, fall: 1, initial: 'down' });
  t.same(r.transitions, ['up', 'down', 'up']);
});

t.test('a steady state is the same object; successes count to rise, failures on', async (t) => {
  const p: HealthPolicy = { rise: 2, fall: 3, initial: 'down' };
  const up = run([true, true, true, true], p).last;
  t.same(up, { up: true, successes: 2, failures: 0, checked: true }, 'successes stop at rise');
  const again = observe(up, true, p);
  t.equal(again.state, up, 'healthy again: the same object');
  t.equal(again.transition, null);
  const failing = observe(up, false, p).state;
  t.not(failing, up, 'a failure is a new state');
  t.equal(failing.failures, 1);
  const down = run([false, false, false, false, false], { ...p, initial: 'up' }).last;
  t.equal(down.failures, 5, 'failures keep counting (a metric shows them)');
  t.not(observe(down, false, p).state, down, 'so a failing server still makes a state a check');
  const first = observe(initialState(p), false, p).state;
  t.same(first, { up: false, successes: 0, failures: 1, checked: true }, 'the first result');
  const fresh = initialState({ ...p, initial: 'up' });
  t.not(
    observe(fresh, true, p).state,
    fresh,
    'the first result is seen even when it changes no count',
  );
  t.equal(observe(fresh, true, p).state.checked, true);
});
