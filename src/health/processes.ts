// The process-wide cap on checks that start a process (exec's commands, ping): one limiter,
// never replaced, so daemon.exec_concurrency bounds them all, and a burst of such checks cannot
// fork the director out of processes. A check that waits for it waits inside its own deadline.
import pLimit from 'p-limit';

export const processSlots = pLimit(32);

/** Sets the cap (an integer >= 1); checks already waiting follow the new one. */
export function setExecConcurrency(n: number): void {
  processSlots.concurrency = n;
}

export function execConcurrency(): number {
  return processSlots.concurrency;
}
