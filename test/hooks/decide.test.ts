// Hooks in the config (read, inherited, refused at their path, printed and read back by
// check-config) and hooksFor(), the pure decision: a table of events and what each runs.
import t from 'tap';
import { configProblems } from '../config/problems.js';
import { CATALOG, parseConfig } from '../../src/checkers.js';
import { effectiveConfig } from '../../src/config/effective.js';
import type { Config } from '../../src/config/model.js';
import { hooksFor, type HookEvent } from '../../src/hooks/decide.js';

const BASE = `defaults:
  hooks:
    server_down: [/usr/local/bin/notify, "{service}", "{server}", "{state}", "from={from}"]
    timeout: 5s
virtual_services:
  - name: web
    address: 192.0.2.1
    port: 80
    hooks:
      fallback_on: [/usr/local/bin/sorry, start, "{address}:{port}", "{protocol}"]
      fallback_off: {shell: 'logger "fallback off $WARDEN_SERVICE"'}
      quorum_down: [/usr/local/bin/page, "{service}", "{weight}<{quorum}", "{state}"]
    quorum: {weight: 3, hysteresis: 1}
    real_servers:
      - {name: a, address: 10.0.0.1}
      - name: b
        address: 10.0.0.2
        port: 8080
        hooks: {server_up: [/bin/up, "{address}", "{port}", "{healthy}/{servers}"], timeout: 2s, user: nobody, group: "65534"}
  - fwmark: 7
    checks: []
    real_servers: [{address: 10.0.0.3}]
`;

const problems = (text: string): string[] => configProblems(text);

t.test('hooks are read, inherited key by key, and check-config prints them', async (t) => {
  const c = parseConfig(BASE, 'test.yaml', {});
  const [web, mark] = c.virtualServices;
  const [a, b] = web!.realServers;
  t.same(a!.hooks, {
    serverDown: {
      argv: ['/usr/local/bin/notify', '{service}', '{server}', '{state}', 'from={from}'],
    },
    timeoutMs: 5000,
  });
  t.same(b!.hooks, {
    serverUp: { argv: ['/bin/up', '{address}', '{port}', '{healthy}/{servers}'] },
    serverDown: a!.hooks!.serverDown,
    timeoutMs: 2000,
    user: 'nobody',
    group: '65534',
  });
  t.same(web!.hooks, {
    fallbackOn: { argv: ['/usr/local/bin/sorry', 'start', '{address}:{port}', '{protocol}'] },
    fallbackOff: { shell: 'logger "fallback off $WARDEN_SERVICE"' },
    quorumDown: { argv: ['/usr/local/bin/page', '{service}', '{weight}<{quorum}', '{state}'] },
    timeoutMs: 5000,
  });
  t.equal(mark!.hooks, undefined, 'defaults name no fallback hook');
  t.ok(mark!.realServers[0]!.hooks?.serverDown, 'but a server_down, which its server inherits');
  const printed = effectiveConfig(c, CATALOG);
  t.match(printed, /fallback_off:\n\s+shell: logger "fallback off \$WARDEN_SERVICE"/);
  t.match(printed, /quorum:\n\s+weight: 3\n\s+hysteresis: 1\n/);
  t.match(printed, /user: nobody\n\s+group: "65534"\n/);
  t.same(effectiveConfig(parseConfig(printed, 'again.yaml', {}), CATALOG), printed, 'reads back');
});

t.test('every mistake in hooks at its path', async (t) => {
  const vs = (hooks: string, rs = '{address: 10.0.0.1}'): string =>
    `virtual_services:\n  - address: 192.0.2.1\n    port: 80\n    hooks: ${hooks}\n    real_servers: [${rs}]\n`;
  t.same(problems(vs('[/bin/x]')), [
    'virtual_services.0.hooks: must be a mapping of server_up, server_down, fallback_on, fallback_off, quorum_up, quorum_down, timeout, user, group, got a list',
  ]);
  t.same(problems(vs('{server_upp: [/bin/x], timeout: 2h}')), [
    'virtual_services.0.hooks.server_upp: unknown key (did you mean "server_up"?)',
    'virtual_services.0.hooks.timeout: must be 10ms..1h, got "2h"',
  ]);
  t.same(problems(vs('{server_up: [], server_down: "/bin/x {server}"}')), [
    'virtual_services.0.hooks.server_up: must be a program and its arguments (1..256 strings)',
    'virtual_services.0.hooks.server_down: must be a list (program and arguments, no shell) or {shell: "..."}, got "/bin/x {server}"',
  ]);
  t.same(problems(vs('{fallback_on: [notify, "{srvice}", {a: 1}]}')), [
    'virtual_services.0.hooks.fallback_on.1: unknown placeholder {srvice}: one of {service} {server} {address} {port} {protocol} {state} {from} {healthy} {servers} {weight} {quorum}',
    'virtual_services.0.hooks.fallback_on.2: must be a string, got a mapping',
    'virtual_services.0.hooks.fallback_on.0: must be an absolute path (no PATH search: the program is the one named)',
  ]);
  t.same(problems(vs('{fallback_on: {shell: "notify {service}"}, fallback_off: {shell: ""}}')), [
    'virtual_services.0.hooks.fallback_on.shell: placeholders are not replaced in a shell line: use "$WARDEN_SERVICE"',
    'virtual_services.0.hooks.fallback_off.shell: must be a shell command line, got ""',
  ]);
  t.same(
    problems(vs('{}', '{address: 10.0.0.1, hooks: {fallback_on: [/bin/x], server_up: [/bin/y]}}')),
    ['virtual_services.0.real_servers.0.hooks.fallback_on: unknown key'],
    'a real server has no fallback',
  );
  t.same(problems(vs('{user: "-r", group: "a b", server_up: [/bin/x]}')), [
    'virtual_services.0.hooks.user: must be a user name or numeric id, got "-r"',
    'virtual_services.0.hooks.group: must be a group name or numeric id, got "a b"',
  ]);
  t.same(problems(vs('{user: nobody, group: 65534, quorum_up: [/bin/x]}')), [], 'a name, an id');
  t.same(problems(`defaults:\n  hooks: {server_up: {shell: 1}}\nvirtual_services: []\n`), [
    'defaults.hooks.server_up.shell: must be a shell command line, got 1',
  ]);
});

const config: Config = parseConfig(BASE, 'test.yaml', {});
const web = config.virtualServices[0]!;
const mark = config.virtualServices[1]!;
const [a, b] = web.realServers as [(typeof web.realServers)[0], (typeof web.realServers)[0]];

interface Case {
  readonly name: string;
  readonly event: HookEvent;
  /** [hook, program, ...args], or [] for none. */
  readonly runs: readonly (readonly string[])[];
  readonly env?: Record<string, string>;
  readonly timeoutMs?: number;
  /** Whom the run is as; unset: checked to be the daemon's user. */
  readonly user?: string;
}

const server = (
  rs: typeof a,
  from: 'up' | 'down' | 'pending',
  to: 'up' | 'down',
  vs = web,
): HookEvent => ({ kind: 'server', vs, rs, from, to, healthy: 1, servers: 2 });

const CASES: Case[] = [
  {
    name: 'up -> down runs server_down with the facts in arguments and environment',
    event: server(a, 'up', 'down'),
    runs: [['server_down', '/usr/local/bin/notify', 'web', 'a', 'down', 'from=up']],
    env: {
      WARDEN_HOOK: 'server_down',
      WARDEN_SERVICE: 'web',
      WARDEN_SERVER: 'a',
      WARDEN_ADDRESS: '10.0.0.1',
      WARDEN_PORT: '80',
      WARDEN_PROTOCOL: 'tcp',
      WARDEN_STATE: 'down',
      WARDEN_FROM: 'up',
      WARDEN_HEALTHY: '1',
      WARDEN_SERVERS: '2',
    },
    timeoutMs: 5000,
  },
  { name: 'down -> up with no server_up: nothing', event: server(a, 'down', 'up'), runs: [] },
  {
    name: "a server's own server_up, its own timeout and user",
    event: server(b, 'down', 'up'),
    runs: [['server_up', '/bin/up', '10.0.0.2', '8080', '1/2']],
    timeoutMs: 2000,
    user: 'nobody',
  },
  {
    name: 'the first result after a start is no transition',
    event: server(a, 'pending', 'down'),
    runs: [],
  },
  { name: 'pending -> up neither', event: server(b, 'pending', 'up'), runs: [] },
  {
    name: 'fallback on: the service address and port, its protocol',
    event: { kind: 'fallback', vs: web, on: true, healthy: 0, servers: 2 },
    runs: [['fallback_on', '/usr/local/bin/sorry', 'start', '192.0.2.1:80', 'tcp']],
    env: {
      WARDEN_HOOK: 'fallback_on',
      WARDEN_STATE: 'on',
      WARDEN_FROM: 'off',
      WARDEN_HEALTHY: '0',
    },
  },
  {
    name: 'fallback off: a shell line, run with /bin/sh -c, facts only in the environment',
    event: { kind: 'fallback', vs: web, on: false, healthy: 1, servers: 2 },
    runs: [['fallback_off', '/bin/sh', '-c', 'logger "fallback off $WARDEN_SERVICE"']],
    env: { WARDEN_SERVICE: 'web', WARDEN_STATE: 'off', WARDEN_SERVER: '' },
  },
  {
    name: 'quorum down: the healthy weight and the quorum',
    event: { kind: 'quorum', vs: web, up: false, healthy: 1, servers: 2, weight: 1 },
    runs: [['quorum_down', '/usr/local/bin/page', 'web', '1<3', 'down']],
    env: { WARDEN_HOOK: 'quorum_down', WARDEN_WEIGHT: '1', WARDEN_QUORUM: '3', WARDEN_FROM: 'up' },
  },
  {
    name: 'quorum up with no quorum_up hook: nothing',
    event: { kind: 'quorum', vs: web, up: true, healthy: 2, servers: 2, weight: 2 },
    runs: [],
  },
  {
    name: 'a fwmark service with no fallback hooks: nothing',
    event: { kind: 'fallback', vs: mark, on: true, healthy: 0, servers: 1 },
    runs: [],
  },
  {
    name: "a fwmark service's server: protocol fwm",
    event: server(mark.realServers[0]!, 'up', 'down', mark),
    runs: [['server_down', '/usr/local/bin/notify', 'FWM 7', '10.0.0.3:0', 'down', 'from=up']],
    env: { WARDEN_PROTOCOL: 'fwm', WARDEN_PORT: '0' },
  },
];

t.test('hooksFor: what each event runs', async (t) => {
  for (const c of CASES) {
    const runs = hooksFor(c.event);
    t.same(
      runs.map((r) => [r.hook, r.program, ...r.args]),
      c.runs,
      c.name,
    );
    if (c.env) t.match(runs[0]?.env, c.env, `${c.name}: environment`);
    if (c.timeoutMs) t.equal(runs[0]?.timeoutMs, c.timeoutMs, `${c.name}: deadline`);
    if (runs[0]) t.equal(runs[0].user, c.user, `${c.name}: user`);
  }
});
