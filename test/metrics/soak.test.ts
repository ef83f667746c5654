// A short soak (unit lane): 1,000 real servers, 50 reloads that add and remove services and
// change checks, then the first config again. Whatever came and went must leave nothing behind:
// the registry's series, the loop's servers and the scheduler's runs end where they started.
// bench/soak.ts runs the same for minutes and watches the heap.
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { SERVERS_PER_SERVICE, SERVICES, Soak } from './soak-fixture.js';

const ROUNDS = 50;

t.test(
  `1,000 servers, ${ROUNDS} reloads, then the first config: nothing left behind`,
  async (t) => {
    const soak = new Soak();
    t.teardown(() => soak.stop());
    await soak.start();
    t.ok(await soak.settled(), 'every check reported, every server has a state');
    const start = await soak.measure();
    t.equal(start.counts.servers, SERVICES * SERVERS_PER_SERVICE);
    t.equal(start.counts.runs, SERVICES * SERVERS_PER_SERVICE, 'one check per server');

    for (let round = 1; round <= ROUNDS; round++) {
      // A reload every 100-200 ms, or back to back when a reload takes longer than that.
      const began = performance.now();
      await soak.reload(round);
      if (round % 10 === 0) await soak.metrics.render(); // a scraper now and then
      if (round === ROUNDS / 2) {
        // Midway the round's own servers and checks are there (else the end would prove nothing).
        t.ok(await soak.settled(), `round ${round} settled`);
        const mid = await soak.measure();
        t.equal(
          mid.counts.servers,
          start.counts.servers + 100 - SERVERS_PER_SERVICE,
          '100 in, 100 out',
        );
        const services = (keys: string[]): string[] => [
          ...new Set(keys.flatMap((k) => /"service":"([^"]+)"/.exec(k)?.[1] ?? [])),
        ];
        t.same(
          services(mid.keys).sort(),
          [
            ...services(start.keys).filter((s) => s !== `base${round % SERVICES}`),
            `extra${round}-0`,
            `extra${round}-1`,
          ].sort(),
          "series of the round's services, none of the one it left out",
        );
      }
      await sleep(Math.max(0, 100 + ((round * 37) % 100) - (performance.now() - began)));
    }
    await soak.reload(null);
    t.ok(await soak.settled(), 'back on the first config, settled');
    const end = await soak.measure();
    t.same(end.counts, start.counts, 'series, servers and runs as at the start');
    const before = new Set(start.keys);
    const after = new Set(end.keys);
    t.same(
      {
        gained: end.keys.filter((k) => !before.has(k)),
        lost: start.keys.filter((k) => !after.has(k)),
      },
      { gained: [], lost: [] },
      'the very same series',
    );
    t.same(soak.log.problems, [], 'no warnings or errors logged');
  },
);
