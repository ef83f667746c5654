import t from 'tap';
import { createLogger, type Level } from '../src/log.js';

const at = new Date('2026-12-01T00:00:00.000Z');

t.test('a line per logged event; below the level nothing is written, nor made', async (t) => {
  const cases: { level: Level; logged: Level; written: boolean }[] = [
    { level: 'warn', logged: 'debug', written: false },
    { level: 'warn', logged: 'info', written: false },
    { level: 'warn', logged: 'warn', written: true },
    { level: 'debug', logged: 'debug', written: true },
    { level: 'info', logged: 'error', written: true },
  ];
  for (const c of cases) {
    const lines: string[] = [];
    let made = 0;
    const log = createLogger({
      format: 'json',
      level: c.level,
      write: (l) => lines.push(l),
      clock: () => at,
    });
    log.log(c.logged, 'check.result', () => {
      made++;
      return { target: '10.0.0.2:80' };
    });
    t.equal(lines.length, c.written ? 1 : 0, `${c.logged} at level ${c.level}`);
    t.equal(made, c.written ? 1 : 0, 'lazy fields are made only for a written line');
    if (c.written)
      t.same(JSON.parse(lines[0] ?? ''), {
        time: at.toISOString(),
        level: c.logged,
        event: 'check.result',
        target: '10.0.0.2:80',
      });
  }
});

t.test('text lines: fields as key=value, quoted when they need it', async (t) => {
  const lines: string[] = [];
  const log = createLogger({
    format: 'text',
    level: 'info',
    write: (l) => lines.push(l),
    clock: () => at,
  });
  log.log('warn', 'server.down', { server: 'web-1', message: 'HTTP 503 from x', gone: undefined });
  log.log('info', 'tick', () => ({ ops: 3 }));
  t.same(lines, [
    `${at.toISOString()} warn  server.down server=web-1 message="HTTP 503 from x"\n`,
    `${at.toISOString()} info  tick ops=3\n`,
  ]);
});
