// Rise and fall: how results become a health state. Pure; the scheduler keeps the state.
//
// A server goes down after `fall` consecutive failures and comes up after `rise` consecutive
// successes; a single result against the current state only counts towards a change.
// Before any result the state is `initial` (down: not in rotation until proven; up: trusted
// until proven otherwise). Truth table, with S = consecutive successes, F = consecutive failures
// after the result is counted:
//
//   state  result   condition      next state  transition
//   down   success  S <  rise      down        -
//   down   success  S >= rise      up          up
//   down   failure  -              down        -           (S resets)
//   up     failure  F <  fall      up          -
//   up     failure  F >= fall      down        down
//   up     success  -              up          -           (F resets)
//   any    local    -              unchanged   -           (S and F as they were)
//
// A local result (CheckResult.local: the probe could not run on this director) is not evidence
// about the server, so the scheduler does not observe it at all.
//
// Several checks on one server: src/reconcile/servers.ts (serverStatus) combines their states.

export interface HealthPolicy {
  readonly rise: number;
  readonly fall: number;
  readonly initial: 'up' | 'down';
}

export const DEFAULT_POLICY: HealthPolicy = { rise: 2, fall: 3, initial: 'down' };

export interface HealthState {
  readonly up: boolean;
  /**
   * Consecutive successes, counted up to `rise` (nothing reads more), and consecutive failures,
   * all of them (a metric shows them), the newest run only.
   */
  readonly successes: number;
  readonly failures: number;
  /** Whether a result was seen (false: the state is still the initial assumption). */
  readonly checked: boolean;
}

export function initialState(policy: HealthPolicy): HealthState {
  return { up: policy.initial === 'up', successes: 0, failures: 0, checked: false };
}

export function observe(
  state: HealthState,
  healthy: boolean,
  policy: HealthPolicy,
): { state: HealthState; transition: 'up' | 'down' | null } {
  const successes = healthy ? Math.min(state.successes + 1, policy.rise) : 0;
  const failures = healthy ? 0 : state.failures + 1;
  let up = state.up;
  let transition: 'up' | 'down' | null = null;
  if (!up && healthy && successes >= policy.rise) {
    up = true;
    transition = 'up';
  } else if (up && !healthy && failures >= policy.fall) {
    up = false;
    transition = 'down';
  }
  // A steady state is the same object: a server keeps its state until its next check, which
  // makes a new one each check a survivor of every young collection in between, moved to the
  // old generation only to die there (at 10,000 servers a second, 0.5 MiB a second).
  if (
    up === state.up &&
    successes === state.successes &&
    failures === state.failures &&
    state.checked
  )
    return { state, transition };
  return { state: { up, successes, failures, checked: true }, transition };
}
