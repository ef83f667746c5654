// One pass, every problem: a mistake never hides the mistakes next to it. A config with many
// independent mistakes, each of which alone would be reported, reports all of them at once; and
// no problem is reported that only follows from another (a value refused is not then judged
// by the rules that read it).
import t from 'tap';
import { ConfigError } from '../../src/config/load.js';
import { CATALOG, parseConfig } from '../../src/checkers.js';

function problems(text: string): string[] {
  try {
    parseConfig(text, 'x.yaml', {});
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.problems.map((p) => `${p.line ?? '-'}: ${formatPath(p.path)}: ${p.message}`);
  }
  return [];
}
function formatPath(path: readonly (string | number)[]): string {
  return path.map((x, i) => (typeof x === 'number' ? `[${x}]` : i ? `.${x}` : x)).join('');
}

t.test('a config with many independent mistakes: every one, in one pass', async (t) => {
  const text = `daemon:
  resync_interval: fast
  listen: nowhere
virtual_services:
  - address: 10.0.0.1
    port: 65536
    one_packet: true
    netmask: 33
    scheduler: nosuch
    fallback: {address: 10.0.0.999}
    real_servers:
      - {address: 10.0.0.2, weight: -1}
      - address: 10.0.0.3
        checks: [{type: http, expect_status: abc}]
      - {address: 10.0.0.4, interval: 1x}
  - address: 10.0.0.300
    port: 80
    real_servers:
      - {address: 10.0.0.5, port: 70000}
  - fwmark: 0
    checks: []
    real_servers:
      - {address: 10.0.0.6, fwd: nat}
  - port: 99999
  - protocol: udp
    address: 10.0.0.9
    port: 53
    checks: []
    real_servers:
      - address: 10.0.0.300
        timeout: 5s
        tunnel: {type: ipip}
      - address: 10.0.0.10
        checks: [{type: exec, command: nope}]
        lower_threshold: 10
      - address: 10.0.0.11
        checks:
          - {type: htp, port: 0, prot: 1}
`;
  t.same(problems(text), [
    '2: daemon.resync_interval: must be a duration like 500ms, 2s, 5m or a number of seconds: value was "fast"',
    '3: daemon.listen: must be ADDRESS:PORT ("127.0.0.1:9476", "[::1]:9476") or "", got "nowhere"',
    '6: virtual_services[0].port: must be a whole number 0..65535, got 65536',
    '8: virtual_services[0].netmask: must be a prefix length 0..32 for IPv4',
    '7: virtual_services[0].one_packet: only for UDP services',
    '10: virtual_services[0].fallback.address: must be an IPv4 or IPv6 address, got "10.0.0.999"',
    '12: virtual_services[0].real_servers[0].weight: must be a whole number 0..65535, got -1',
    '14: virtual_services[0].real_servers[1].checks[0].expect_status: "abc" is not a status or a range like 200-299',
    '15: virtual_services[0].real_servers[2].interval: must be a duration like 500ms, 2s, 5m or a number of seconds, got "1x"',
    '9: virtual_services[0].scheduler: scheduler module ip_vs_nosuch not found: the kernel refuses it (ENOENT); use one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh',
    '16: virtual_services[1].address: must be an IPv4 or IPv6 address, got "10.0.0.300"',
    '19: virtual_services[1].real_servers[0].port: must be a whole number 0..65535, got 70000',
    '20: virtual_services[2].fwmark: must be a whole number 1..4294967295, got 0',
    '23: virtual_services[2].real_servers[0].fwd: must be one of masq, route, tunnel, got "nat"',
    '24: virtual_services[3]: needs address and port (or fwmark)',
    '24: virtual_services[3].port: must be a whole number 0..65535, got 99999',
    '30: virtual_services[4].real_servers[0].address: must be an IPv4 or IPv6 address, got "10.0.0.300"',
    '32: virtual_services[4].real_servers[0].tunnel: only with fwd: tunnel',
    '31: virtual_services[4].real_servers[0].timeout: (5000 ms) must not exceed interval (2000 ms)',
    '34: virtual_services[4].real_servers[1].checks[0].command: must be a list: program and arguments, run without a shell (["/usr/lib/check", "{address}"]); {address}, {port}, {family} are replaced, got "nope"',
    '35: virtual_services[4].real_servers[1].lower_threshold: lower threshold 10 above upper threshold 0: the kernel refuses it (ERANGE); give an upper_threshold at least as large',
    `38: virtual_services[4].real_servers[2].checks[0].type: must be one of ${CATALOG.kinds.join(', ')}, got "htp"`,
    '38: virtual_services[4].real_servers[2].checks[0].prot: unknown key (did you mean "port"?)',
    '38: virtual_services[4].real_servers[2].checks[0].port: must be a whole number 1..65535, got 0',
  ]);
});

t.test('a value refused is not judged again by the rules that read it', async (t) => {
  // Each server has one mistake; the rule that would read the refused value stays silent.
  const text = `virtual_services:
  - address: 10.0.0.1
    port: 80
    checks: []
    real_servers:
      - {address: "2001:db8::1", fwd: tunel}
      - {address: 10.0.0.3, upper_threshold: -1, lower_threshold: 10}
      - {address: 10.0.0.4, interval: soon, timeout: 3s}
      - {address: 10.0.0.5, fwd: rout, tunnel: {type: ipip}}
  - protocol: udp
    address: 10.0.0.1
    port: 53
    real_servers:
      - {address: 10.0.0.6, checks: nope}
  - address: 10.0.0.1
    port: 81
    protocol: tcpp
    real_servers:
      - {address: 10.0.0.7}
`;
  t.same(problems(text), [
    '6: virtual_services[0].real_servers[0].fwd: must be one of masq, route, tunnel, got "tunel"',
    '7: virtual_services[0].real_servers[1].upper_threshold: must be a whole number 0..2147483647, got -1',
    '8: virtual_services[0].real_servers[2].interval: must be a duration like 500ms, 2s, 5m or a number of seconds, got "soon"',
    '9: virtual_services[0].real_servers[3].fwd: must be one of masq, route, tunnel, got "rout"',
    '14: virtual_services[1].real_servers[0].checks: must be a list of checks ([] for none), got "nope"',
    '17: virtual_services[2].protocol: must be one of tcp, udp, sctp, got "tcpp"',
  ]);
});
