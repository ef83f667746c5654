// A throwaway SIP server (Debian's kamailio) for the SIP probe tests: a kamailio.cfg in a temp
// dir that answers OPTIONS statelessly (sl_send_reply) on UDP and TCP, on 127.0.0.1 and ::1,
// run in the foreground; the request URI's user picks the answer: `busy` gets 503, `slow` a
// 100 Trying before the 200, anything else 200. Debian's own kamailio service is not used.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './servers.js';

export interface Kamailio {
  readonly port: number;
  /** What kamailio wrote to stderr (for a failing test's message). */
  log(): string;
  /** Stops the main process, which stops its children, and waits for it. */
  stop(): Promise<void>;
}

export async function startKamailio(): Promise<Kamailio> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-kamailio-'));
  const port = await freePort();
  const cfg = join(dir, 'kamailio.cfg');
  writeFileSync(
    cfg,
    [
      '#!KAMAILIO',
      'debug=1',
      'log_stderror=yes',
      'children=1',
      'tcp_children=1',
      'auto_aliases=no',
      `listen=udp:127.0.0.1:${port}`,
      `listen=tcp:127.0.0.1:${port}`,
      `listen=udp:[::1]:${port}`,
      `listen=tcp:[::1]:${port}`,
      'loadmodule "sl.so"',
      'request_route {',
      '  if (method == "OPTIONS") {',
      '    if (uri =~ "^sip:busy@") { sl_send_reply("503", "Service Unavailable"); exit; }',
      '    if (uri =~ "^sip:slow@") { sl_send_reply("100", "Trying"); }',
      '    sl_send_reply("200", "OK");',
      '    exit;',
      '  }',
      '  sl_send_reply("405", "Method Not Allowed");',
      '}',
      '',
    ].join('\n'),
  );
  const kamailio = spawn(
    'kamailio',
    [
      '-DD',
      '-E',
      '-f',
      cfg,
      '-Y',
      dir,
      '-P',
      join(dir, 'kamailio.pid'),
      '-m',
      '16',
      '-M',
      '4',
      '-S',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  kamailio.stderr.setEncoding('utf8');
  kamailio.stderr.on('data', (d: string) => (log += d));
  const exited = new Promise<void>((resolve) => kamailio.once('exit', () => resolve()));
  return {
    port,
    log: () => log,
    stop: async () => {
      kamailio.kill();
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
