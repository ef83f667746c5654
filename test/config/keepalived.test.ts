// keepalived.conf -> the native config's plain data: a table per directive and block (raw values,
// notes, problems by line and file), include through a fake callback, Debian's samples and the
// corpus in test/config/keepalived/, each validated by the native reader or refused by line.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import t from 'tap';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/checkers.js';
import { translateKeepalived, type IncludeFn } from '../../src/config/keepalived.js';
import { formatPath } from '../../src/config/reader.js';

const corpus = fileURLToPath(new URL('../../../test/config/keepalived/', import.meta.url));
const SAMPLES = '/usr/share/doc/keepalived/samples';

const none: IncludeFn = () => [];

/** A fake include: files from a map, `*` matching within one path part, relative to `from`. */
function fakeInclude(files: Record<string, string>): IncludeFn & { calls: string[][] } {
  const calls: string[][] = [];
  const fn = (pattern: string, from: string) => {
    calls.push([pattern, from]);
    const full = pattern.startsWith('/') ? pattern : join(dirname(from), pattern);
    const re = new RegExp(
      `^${full.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`,
    );
    return Object.keys(files)
      .filter((f) => re.test(f))
      .sort()
      .map((f) => ({ file: f, text: files[f] ?? '' }));
  };
  return Object.assign(fn, { calls });
}

/** Real files, for the corpus: `*` in the last part only. */
const fsInclude: IncludeFn = (pattern, from) => {
  const full = resolve(dirname(from), pattern);
  const dir = dirname(full);
  const re = new RegExp(
    `^${full
      .slice(dir.length + 1)
      .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')}$`,
  );
  return readdirSync(dir)
    .filter((f) => re.test(f))
    .sort()
    .map((f) => ({ file: join(dir, f), text: readFileSync(join(dir, f), 'utf8') }));
};

function get(raw: unknown, path: string): unknown {
  let cur: unknown = raw;
  for (const part of path.split(/\.|\[(\d+)\]/).filter((p) => p !== undefined && p !== '')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

const vs = (body: string, head = '192.0.2.1 80'): string =>
  `virtual_server ${head} {\n  protocol TCP\n${body}\n}\n`;
const rs = (body: string, head = '10.0.0.1 80'): string => `  real_server ${head} {\n${body}\n  }`;

interface Case {
  name: string;
  text: string;
  /** path -> expected value in raw */
  raw?: Record<string, unknown>;
  /** paths that must be absent */
  absent?: string[];
  /** "line directive" of every problem, in order */
  problems?: string[];
  /** a note whose text matches, at this path (formatPath) and line */
  notes?: [path: string, line: number, text: RegExp][];
  /** the result validates through the native reader */
  valid?: boolean;
}

const CASES: Case[] = [
  {
    name: 'keepalived defaults written out',
    text: vs(rs('    TCP_CHECK {\n    }')),
    raw: {
      'daemon.cleanstop': true,
      'defaults.interval': '1m',
      'defaults.timeout': '5s',
      'defaults.fall': 2,
      'defaults.rise': 1,
      'defaults.initial': 'down',
      'defaults.on_failure': 'remove',
      'defaults.drain_timeout': '0s',
      'defaults.scheduler': 'wlc',
      'defaults.jitter': 0,
      'virtual_services[0].protocol': 'tcp',
      'virtual_services[0].address': '192.0.2.1',
      'virtual_services[0].port': 80,
      'virtual_services[0].real_servers[0].checks[0].type': 'tcp',
    },
    absent: ['virtual_services[0].real_servers[0].interval', 'virtual_services[0].interval'],
    notes: [
      ['virtual_services[0].address', 1, /^$/],
      ['virtual_services[0].real_servers[0].checks[0].type', 4, /^$/],
    ],
    valid: true,
  },
  {
    name: 'comments, quotes, braces on one line and the next',
    text: `virtual_server 192.0.2.1 80 { protocol TCP # comment
  lb_algo "rr" ! another
  real_server 10.0.0.1 80
  {
    TCP_CHECK { connect_timeout 2 }
  }
  real_server 10.0.0.2 80 { weight 3 }
}`,
    raw: {
      'virtual_services[0].scheduler': 'rr',
      'virtual_services[0].real_servers[0].timeout': '2s',
      'virtual_services[0].real_servers[1].weight': 3,
      'virtual_services[0].real_servers[1].checks': [],
    },
    valid: true,
  },
  {
    name: 'delay_loop, retry, delay_before_retry, connect_timeout',
    text: vs(
      '  delay_loop 10\n  retry 2\n  delay_before_retry 1.5\n  connect_timeout 4\n' +
        rs('    TCP_CHECK {\n    }'),
    ),
    raw: {
      'virtual_services[0].interval': '10s',
      'virtual_services[0].down_interval': '10s',
      'virtual_services[0].fall': 3,
      'virtual_services[0].fast_interval': '1500ms',
      'virtual_services[0].timeout': '4s',
    },
    notes: [['virtual_services[0].fall', 4, /^$/]],
    valid: true,
  },
  {
    name: 'connect_timeout longer than delay_loop is cut to it, with a note',
    text: vs('  delay_loop 2\n' + rs('    TCP_CHECK {\n    }')),
    raw: { 'virtual_services[0].real_servers[0].timeout': '2s' },
    notes: [['virtual_services[0].real_servers[0].timeout', 5, /waits 5s/]],
    valid: true,
  },
  {
    name: 'checker timing overrides the real server and virtual server',
    text: vs('  retry 5\n' + rs('    retry 4\n    TCP_CHECK {\n      retry 0\n    }')),
    raw: { 'virtual_services[0].real_servers[0].fall': 1 },
    notes: [['virtual_services[0].real_servers[0].fall', 7, /^$/]],
    valid: true,
  },
  {
    name: 'checkers of one server that differ: the lowest fall, a note',
    text: vs(rs('    TCP_CHECK {\n    }\n    DNS_CHECK {\n    }')),
    raw: { 'virtual_services[0].real_servers[0].fall': 2 },
    notes: [['virtual_services[0].real_servers[0].fast_interval', 4, /checkers differ/]],
    valid: true,
  },
  {
    name: 'lb_algo, lb_kind, flags, ops, persistence',
    text: `virtual_server 192.0.2.1 53 {
  protocol UDP
  lb_algo sh
  lb_kind DR
  sh-port
  sh-fallback
  ops
  persistence_timeout 600
  persistence_granularity 255.255.255.0
  persistence_engine sip
  real_server 10.0.0.1 53 {
    PING_CHECK {
    }
  }
}`,
    raw: {
      'virtual_services[0].protocol': 'udp',
      'virtual_services[0].scheduler': 'sh',
      'virtual_services[0].fwd': 'route',
      'virtual_services[0].sched_flags': ['sh-port', 'sh-fallback'],
      'virtual_services[0].one_packet': true,
      'virtual_services[0].persistent': '10m',
      'virtual_services[0].netmask': 24,
      'virtual_services[0].pe': 'sip',
      'virtual_services[0].real_servers[0].checks[0].type': 'ping',
    },
    valid: true,
  },
  {
    name: 'persistence_timeout without a value: 6 minutes; no port',
    text: vs('  persistence_timeout\n' + rs('    PING_CHECK {\n    }'), '192.0.2.1'),
    raw: { 'virtual_services[0].persistent': '6m', 'virtual_services[0].port': 0 },
  },
  {
    name: 'lvs_method NAT/DR/TUN, tunnel options, per real server',
    text: vs(
      '  lvs_method TUN type gue port 6080 remcsum\n' +
        rs('    lvs_method NAT\n    TCP_CHECK {\n    }') +
        '\n' +
        rs('    TCP_CHECK {\n    }', '10.0.0.2 80'),
    ),
    raw: {
      'virtual_services[0].fwd': 'tunnel',
      'virtual_services[0].tunnel': { type: 'gue', port: 6080, remcsum: true },
      'virtual_services[0].real_servers[0].fwd': 'masq',
    },
  },
  {
    name: 'DR resets a real server port to the virtual server port, as keepalived',
    text: vs('  lvs_method DR\n' + rs('    TCP_CHECK {\n    }', '10.0.0.1 8080')),
    raw: { 'virtual_services[0].real_servers[0].port': 80 },
    notes: [['virtual_services[0].real_servers[0].port', 4, /resets 8080/]],
    valid: true,
  },
  {
    name: 'sorry_server, sorry_server_lvs_method, sorry_server_inhibit',
    text: vs(
      '  sorry_server 198.51.100.1 8080\n  sorry_server_lvs_method NAT\n  sorry_server_inhibit\n' +
        rs('    TCP_CHECK {\n    }'),
    ),
    raw: {
      'virtual_services[0].fallback': { address: '198.51.100.1', port: 8080, fwd: 'masq' },
    },
    notes: [
      ['virtual_services[0]', 5, /not kept at weight 0/],
      ['virtual_services[0]', 3, /no real server is healthy/],
    ],
    valid: true,
  },
  {
    name: 'sorry_server without a port takes the virtual server port',
    text: vs('  sorry_server 198.51.100.1\n' + rs('    TCP_CHECK {\n    }')),
    raw: { 'virtual_services[0].fallback.port': 80 },
    valid: true,
  },
  {
    name: 'inhibit_on_failure: quiesce on the service',
    text: vs('  inhibit_on_failure\n' + rs('    TCP_CHECK {\n    }')),
    raw: { 'virtual_services[0].on_failure': 'quiesce' },
    notes: [['virtual_services[0].on_failure', 3, /weight 0/]],
    valid: true,
  },
  {
    name: 'inhibit_on_failure on every real server is the service setting too',
    text: vs(
      rs('    inhibit_on_failure yes\n    TCP_CHECK {\n    }') +
        '\n' +
        rs('    inhibit_on_failure on\n    TCP_CHECK {\n    }', '10.0.0.2 80'),
    ),
    raw: { 'virtual_services[0].on_failure': 'quiesce' },
    valid: true,
  },
  {
    name: 'inhibit_on_failure on some real servers only is refused',
    text: vs(
      rs('    inhibit_on_failure\n    TCP_CHECK {\n    }') +
        '\n' +
        rs('    TCP_CHECK {\n    }', '10.0.0.2 80'),
    ),
    problems: ['8 inhibit_on_failure'],
  },
  {
    name: 'alpha on the virtual server, the real server or one checker: initial down',
    text: vs(
      '  alpha\n' +
        rs('    TCP_CHECK {\n    }') +
        '\n' +
        rs('    alpha off\n    TCP_CHECK {\n      alpha on\n    }', '10.0.0.2 80') +
        '\n' +
        rs('    alpha no\n    TCP_CHECK {\n    }', '10.0.0.3 80'),
    ),
    raw: {
      'virtual_services[0].real_servers[0].initial': 'down',
      'virtual_services[0].real_servers[1].initial': 'down',
    },
    absent: ['virtual_services[0].real_servers[2].initial'],
    valid: true,
  },
  {
    name: 'omega, ha_suspend, smtp_alert, warmup, log_all_failures: notes',
    text: vs(
      '  omega\n  ha_suspend\n  smtp_alert on\n  warmup 5\n' +
        rs('    TCP_CHECK {\n      log_all_failures on\n    }'),
    ),
    notes: [
      ['virtual_services[0]', 3, /omega/],
      ['virtual_services[0]', 4, /ha_suspend/],
      ['virtual_services[0]', 5, /e-mail/],
      ['virtual_services[0]', 6, /warmup/],
      ['virtual_services[0]', 9, /log_all_failures/],
    ],
    problems: [],
  },
  {
    name: 'quorum 1 and hysteresis 0 are the fallback; another quorum is the service quorum',
    text:
      vs(
        '  quorum 1\n  hysteresis 0\n  sorry_server 198.51.100.1 80\n' +
          rs('    TCP_CHECK {\n    }'),
      ) +
      vs(
        '  quorum 3\n  sorry_server 198.51.100.1 80\n' + rs('    TCP_CHECK {\n    }'),
        '192.0.2.2 80',
      ) +
      vs('  quorum 3\n  hysteresis 1\n' + rs('    TCP_CHECK {\n    }'), '192.0.2.3 80'),
    raw: {
      'virtual_services[1].quorum': { weight: 3, hysteresis: 0 },
      'virtual_services[2].quorum': { weight: 3, hysteresis: 1 },
    },
    notes: [
      [
        'virtual_services[1].quorum',
        13,
        /lost below a healthy weight of 3, gained again at 3; while lost the sorry server serves/,
      ],
      [
        'virtual_services[2].quorum',
        22,
        /quorum 3, hysteresis 1: lost below a healthy weight of 2, gained again at 4$/,
      ],
    ],
    valid: true,
  },
  {
    name: "quorum_up, quorum_down: the service's hooks, without a shell",
    text: vs('  quorum_up /bin/up\n  quorum_down "/bin/down x"\n' + rs('    TCP_CHECK {\n    }')),
    raw: {
      'virtual_services[0].hooks': { quorum_up: ['/bin/up'], quorum_down: ['/bin/down', 'x'] },
    },
    notes: [['virtual_services[0].hooks', 4, /quorum_down: run without a shell/]],
    valid: true,
  },
  {
    name: "notify_up, notify_down: the real server's server_up/server_down hooks, without a shell",
    text: vs(
      rs(
        '    notify_up "/usr/local/bin/notify.sh RS UP \'10.0.0.1:80 web\'"\n    notify_down /bin/down\n    TCP_CHECK {\n    }',
      ),
    ),
    raw: {
      'virtual_services[0].real_servers[0].hooks': {
        server_up: ['/usr/local/bin/notify.sh', 'RS', 'UP', '10.0.0.1:80 web'],
        server_down: ['/bin/down'],
      },
    },
    notes: [['virtual_services[0].real_servers[0].hooks', 5, /notify_down: run without a shell/]],
    valid: true,
  },
  {
    name: 'notify_up by a relative name, with shell syntax or a placeholder: refused',
    text: vs(
      rs('    notify_up /bin/up nobody\n    notify_down notify.sh\n    TCP_CHECK {\n    }') +
        '\n' +
        rs(
          '    notify_up "/bin/up > /tmp/x"\n    notify_down "/bin/down {server}"\n    TCP_CHECK {\n    }',
          '10.0.0.2 80',
        ),
    ),
    problems: ['5 notify_down', '10 notify_up', '11 notify_down'],
  },
  {
    name: 'notify_up SCRIPT USER GROUP: the hooks run as that user and group; two users at one level refused',
    text: vs(
      rs(
        '    notify_up /bin/up nobody nogroup\n    notify_down /bin/down nobody nogroup\n    TCP_CHECK {\n    }',
      ) +
        '\n' +
        rs(
          '    notify_up /bin/up nobody\n    notify_down /bin/down\n    TCP_CHECK {\n    }',
          '10.0.0.2 80',
        ),
    ),
    raw: {
      'virtual_services[0].real_servers[0].hooks': {
        server_up: ['/bin/up'],
        server_down: ['/bin/down'],
        user: 'nobody',
        group: 'nogroup',
      },
    },
    notes: [
      [
        'virtual_services[0].real_servers[0].hooks',
        5,
        /notify_down: run without a shell \(as keepalived execs it\), as nobody:nogroup with no capability \(ipvs-warden needs CAP_SETUID and CAP_SETGID for it\)/,
      ],
    ],
    problems: ['11 notify_down'],
  },
  {
    name: 'weight, uthreshold, lthreshold, snmp_name',
    text: vs(
      '  snmp_name web\n' +
        rs(
          '    weight 7\n    uthreshold 100\n    lthreshold 50\n    snmp_name web1\n    TCP_CHECK {\n    }',
        ),
    ),
    raw: {
      'virtual_services[0].name': 'web',
      'virtual_services[0].real_servers[0].weight': 7,
      'virtual_services[0].real_servers[0].upper_threshold': 100,
      'virtual_services[0].real_servers[0].lower_threshold': 50,
      'virtual_services[0].real_servers[0].name': 'web1',
    },
    valid: true,
  },
  {
    name: 'connect_ip, connect_port, bindto',
    text: vs(
      rs(
        '    TCP_CHECK {\n      connect_ip 10.0.9.1\n      connect_port 8443\n      bindto 10.0.0.254\n    }',
      ),
    ),
    raw: {
      'virtual_services[0].real_servers[0].checks[0]': {
        type: 'tcp',
        address: '10.0.9.1',
        port: 8443,
        bind: '10.0.0.254',
      },
    },
    valid: true,
  },
  {
    name: 'HTTP_GET: one check per url, virtualhost by level, status codes, regex',
    text: vs(
      '  virtualhost vs.example\n' +
        rs(`    virtualhost rs.example
    HTTP_GET {
      url {
        path /a
        status_code 200 300-399
        regex "^ok"
        regex_no_match
      }
      url {
        path /b
        digest 9B3A0C85A887A256D6939DA88AABD8CD
        virtualhost url.example
      }
    }`),
    ),
    raw: {
      'virtual_services[0].real_servers[0].checks': [
        {
          type: 'http',
          path: '/a',
          expect_status: '200,300-399',
          host: 'rs.example',
          http_version: '1.0',
          body_not_match: '^ok',
        },
        {
          type: 'http',
          path: '/b',
          expect_status: '200-299',
          digest: '9b3a0c85a887a256d6939da88aabd8cd',
          host: 'url.example',
          http_version: '1.0',
        },
      ],
      'virtual_services[0].real_servers[0].fast_interval': '3s',
    },
    notes: [['virtual_services[0]', 6, /2 urls: one check each/]],
    valid: true,
  },
  {
    name: 'HTTP_GET without urls, url without path: refused as keepalived ignores them',
    text: vs(
      rs('    HTTP_GET {\n    }\n    HTTP_GET {\n      url {\n        digest 00\n      }\n    }'),
    ),
    problems: ['4 HTTP_GET', '7 url'],
  },
  {
    name: 'SSL_GET with the SSL block and enable_sni',
    text:
      'SSL {\n  ca /etc/ssl/ca.pem\n  certificate /etc/ssl/c.pem\n  key /etc/ssl/k.pem\n}\n' +
      vs(
        rs(
          '    virtualhost www.example\n    SSL_GET {\n      url { path / }\n      enable_sni\n    }',
        ),
        '192.0.2.1 443',
      ),
    raw: {
      'virtual_services[0].real_servers[0].checks[0].type': 'https',
      'virtual_services[0].real_servers[0].checks[0].tls': {
        verify: false,
        sni: 'www.example',
        ca_file: '/etc/ssl/ca.pem',
        cert_file: '/etc/ssl/c.pem',
        key_file: '/etc/ssl/k.pem',
      },
    },
  },
  {
    name: 'http_protocol 1.1 and 1.0C',
    text: vs(
      rs('    HTTP_GET {\n      http_protocol 1.1\n      url { path / }\n    }') +
        '\n' +
        rs('    HTTP_GET {\n      http_protocol 1.0C\n      url { path / }\n    }', '10.0.0.2 80'),
    ),
    raw: {
      'virtual_services[0].real_servers[0].checks[0].http_version': '1.1',
      'virtual_services[0].real_servers[1].checks[0].http_version': '1.0',
    },
    valid: true,
  },
  {
    name: 'SMTP_CHECK helo_name and its default',
    text: vs(
      rs('    SMTP_CHECK {\n      helo_name "mx.example"\n    }') +
        '\n' +
        rs('    SMTP_CHECK {\n    }', '10.0.0.2 80'),
      '192.0.2.1 25',
    ),
    raw: {
      'virtual_services[0].real_servers[0].checks[0]': { type: 'smtp', helo_name: 'mx.example' },
      'virtual_services[0].real_servers[1].checks[0].helo_name': 'smtpchecker.keepalived.org',
    },
    valid: true,
  },
  {
    name: 'DNS_CHECK type and name, defaults SOA and .',
    text: vs(
      rs('    DNS_CHECK {\n      type MX\n      name example.com\n    }') +
        '\n' +
        rs('    DNS_CHECK {\n    }', '10.0.0.2 53'),
      '192.0.2.1 53',
    ),
    raw: {
      'virtual_services[0].real_servers[0].checks[0].record_type': 'MX',
      'virtual_services[0].real_servers[0].checks[0].name': 'example.com',
      'virtual_services[0].real_servers[1].checks[0].record_type': 'SOA',
      'virtual_services[0].real_servers[1].checks[0].name': '.',
      'virtual_services[0].fall': 4,
    },
    valid: true,
  },
  {
    name: 'MISC_CHECK: split, misc_dynamic, misc_timeout, user',
    text: vs(
      rs(`    MISC_CHECK {
      misc_path "/usr/lib/check 'a b' -x"
      misc_dynamic
      misc_timeout 4
      user nobody nogroup
    }`),
    ),
    raw: {
      'virtual_services[0].real_servers[0].checks[0]': {
        type: 'exec',
        command: ['/usr/lib/check', 'a b', '-x'],
        dynamic_weight: true,
        user: 'nobody',
        group: 'nogroup',
      },
      'virtual_services[0].real_servers[0].timeout': '4s',
      'virtual_services[0].real_servers[0].fall': 1,
    },
    valid: true,
  },
  {
    name: 'MISC_CHECK without misc_timeout: delay_loop',
    text: vs('  delay_loop 7\n' + rs('    MISC_CHECK {\n      misc_path /bin/true\n    }')),
    raw: { 'virtual_services[0].real_servers[0].timeout': '7s' },
    valid: true,
  },
  {
    name: 'MISC_CHECK quoting it cannot split safely is refused',
    text: vs(
      rs(
        '    MISC_CHECK {\n      misc_path "/bin/sh -c \\"exit 0\\""\n    }\n    MISC_CHECK {\n      misc_path "/bin/x $HOME"\n    }\n    MISC_CHECK {\n      misc_path "/bin/x {address}"\n    }',
      ),
    ),
    problems: ['5 misc_path', '8 misc_path', '11 misc_path'],
  },
  {
    name: 'UDP_CHECK payload, require_reply, max_reply_length; without require_reply',
    text: vs(
      rs('    UDP_CHECK {\n      payload Ab12f 3 456\n      require_reply 0a\n    }') +
        '\n' +
        rs('    UDP_CHECK {\n    }', '10.0.0.2 53'),
      '192.0.2.1 53',
    ),
    raw: {
      'virtual_services[0].real_servers[0].checks[0]': {
        type: 'udp',
        payload_hex: 'ab 12 0f 03 45 06',
        expect_hex: '0a',
        require_reply: true,
        max_reply: 255,
      },
      'virtual_services[0].real_servers[1].checks[0].require_reply': false,
    },
    notes: [['virtual_services[0]', 10, /random bytes/]],
    valid: true,
  },
  {
    name: 'FILE_CHECK, BFD_CHECK, bind_if, bind_port, checker fwmark: refused',
    text: vs(
      rs(
        '    FILE_CHECK {\n      track_file x\n    }\n    BFD_CHECK {\n      name b\n    }\n    TCP_CHECK {\n      bind_if eth0\n      bind_port 99\n      fwmark 4\n    }',
      ),
    ),
    problems: ['4 FILE_CHECK', '7 BFD_CHECK', '11 bind_if', '12 bind_port', '13 fwmark'],
  },
  {
    name: 'fwmark service: family from the real servers; ports cleared, checks keep them',
    text: `virtual_server fwmark 5 {
  real_server 2001:db8::1 443 {
    TCP_CHECK {
    }
  }
}`,
    raw: {
      'virtual_services[0].fwmark': 5,
      'virtual_services[0].family': 6,
      'virtual_services[0].real_servers[0].port': 0,
      'virtual_services[0].real_servers[0].checks[0].port': 443,
    },
    absent: ['virtual_services[0].protocol'],
    valid: true,
  },
  {
    name: 'virtual_server_group: ranges and fwmarks, one service each',
    text: `virtual_server_group G {
  192.0.2.1-3 80
  192.0.2.254-192.0.3.1 80
  2001:db8::1-2 80
  fwmark 3 inet6
}
virtual_server group G {
  protocol TCP
  real_server 10.0.0.1 80 {
    TCP_CHECK {
    }
  }
}`,
    raw: {
      'virtual_services[0].address': '192.0.2.1',
      'virtual_services[2].address': '192.0.2.3',
      'virtual_services[3].address': '192.0.2.254',
      'virtual_services[6].address': '192.0.3.1',
      'virtual_services[7].address': '2001:db8::1',
      'virtual_services[8].address': '2001:db8::2',
      'virtual_services[9].fwmark': 3,
      'virtual_services[9].family': 6,
      'virtual_services[9].real_servers[0].address': '10.0.0.1',
    },
    notes: [['virtual_services[3].address', 3, /virtual_server_group G/]],
  },
  {
    name: 'an unknown group, an address block, a reversed range',
    text: `virtual_server_group G {
  192.0.2.0/30 80
  192.0.2.9-3 80
}
virtual_server group H {
  protocol TCP
}`,
    problems: ['2 192.0.2.0/30', '3 192.0.2.9-3', '5 virtual_server'],
  },
  {
    name: 'no protocol: keepalived reports it and uses UDP; refused',
    text: 'virtual_server 192.0.2.1 80 {\n  real_server 10.0.0.1 80 {\n  }\n}\n',
    problems: ['1 protocol'],
  },
  {
    name: 'unknown keywords, unclosed blocks, stray braces, unclosed quotes',
    text: 'virtual_server 192.0.2.1 80 {\n  protocol TCP\n  nonsense 1\n  path "x\n}\n}\nvirtual_server 192.0.2.2 80 {\n',
    problems: ['3 nonsense', '4 "', '4 path', '6 }', '7 virtual_server', '7 protocol'],
  },
  {
    name: 'conditional lines, parameters and sequences are refused',
    text: '@main $X=1\n$Y=2\n~SEQ(A, 1, 3) virtual_server 192.0.2.$A 80 {\n}\n',
    problems: ['1 @main', '2 $Y', '3 ~SEQ', '4 }'],
  },
  {
    name: 'VRRP and global settings are left to keepalived; lvs_timeouts refused',
    text: `global_defs {
  router_id X
  lvs_timeouts tcp 900
  lvs_flush_on_stop
  lvs_notify_fifo /run/fifo
}
vrrp_instance VI_1 {
  state MASTER
}
vrrp_sync_group G {
}
vrrp_script chk {
}
static_ipaddress {
}
`,
    problems: ['3 lvs_timeouts', '5 lvs_notify_fifo'],
    notes: [['daemon.cleanstop', 4, /lvs_flush_on_stop/]],
  },
  {
    name: 'lvs_sync_daemon: the sync daemon follows the VRRP role, told by notify',
    text: `global_defs {
  lvs_sync_daemon eth1 VI_1 id 7 maxlen 1400 port 8848 ttl 2 group 224.0.0.81
}
vrrp_instance VI_1 {
}
`,
    raw: {
      'daemon.sync.state': 'follow-role',
      'daemon.sync.interface': 'eth1',
      'daemon.sync.sync_id': 7,
      'daemon.sync.max_packet_length': 1400,
      'daemon.sync.port': 8848,
      'daemon.sync.ttl': 2,
      'daemon.sync.group': '224.0.0.81',
    },
    notes: [['daemon.sync.state', 2, /notify "\/usr\/bin\/ipvs-warden role"/]],
    valid: true,
  },
  {
    name: 'lvs_sync_daemon: no instance, a bad id, an unknown option',
    text: 'global_defs {\n  lvs_sync_daemon eth1\n  lvs_sync_daemon eth1 VI_1 id 300 weight 2\n}\n',
    problems: ['2 lvs_sync_daemon', '3 id', '3 weight'],
  },
];

for (const c of CASES) {
  t.test(c.name, async (t) => {
    const r = translateKeepalived(c.text, 'k.conf', none);
    for (const [path, value] of Object.entries(c.raw ?? {})) t.same(get(r.raw, path), value, path);
    for (const path of c.absent ?? []) t.equal(get(r.raw, path), undefined, `${path} absent`);
    if (c.problems)
      t.same(
        r.problems.map((p) => `${p.line} ${p.directive}`),
        c.problems,
        r.problems.map((p) => `${p.line} ${p.directive}: ${p.message}`).join('\n'),
      );
    for (const [path, line, text] of c.notes ?? []) {
      const found = r.notes.some(
        (n) => formatPath(n.path) === path && n.line === line && text.test(n.text ?? ''),
      );
      t.ok(found, `note at ${path} line ${line} ${String(text)}`);
    }
    if (c.valid) {
      t.same(r.problems, [], 'no problems');
      t.doesNotThrow(() => parseConfig(stringify(r.raw), 'k.yaml', {}), 'validates');
    }
  });
}

t.test('every raw value has a note with its line', async (t) => {
  const text = readFileSync(join(corpus, 'full.conf'), 'utf8');
  const r = translateKeepalived(text, join(corpus, 'full.conf'), fsInclude);
  const leaves: string[] = [];
  const walk = (v: unknown, path: (string | number)[]): void => {
    if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'object' && x !== null))
      v.forEach((x, i) => walk(x, [...path, i]));
    else if (v !== null && typeof v === 'object' && !Array.isArray(v))
      for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
    else leaves.push(formatPath(path));
  };
  walk(r.raw, []);
  // A note on a mapping value (tls, tunnel, a regex) covers its keys.
  const noted = r.notes.map((n) => formatPath(n.path));
  t.same(
    leaves.filter((l) => !noted.some((n) => l === n || l.startsWith(`${n}.`))),
    [],
  );
});

t.test('include: relative to the including file, through the callback, nested', async (t) => {
  const include = fakeInclude({
    '/etc/keepalived/conf.d/a.conf': vs(rs('    TCP_CHECK {\n    }'), '192.0.2.1 80'),
    '/etc/keepalived/conf.d/b.conf':
      'include rs/*.conf\n' +
      'virtual_server 192.0.2.2 80 {\n  protocol TCP\n  include rs/one\n}\n',
    '/etc/keepalived/conf.d/rs/one': rs('    weight 9\n    bogus 1\n    TCP_CHECK {\n    }'),
  });
  const r = translateKeepalived(
    'global_defs {\n}\ninclude conf.d/*.conf\nincludem nothing/*\n',
    '/etc/keepalived/keepalived.conf',
    include,
  );
  t.same(include.calls, [
    ['conf.d/*.conf', '/etc/keepalived/keepalived.conf'],
    ['rs/*.conf', '/etc/keepalived/conf.d/b.conf'],
    ['rs/one', '/etc/keepalived/conf.d/b.conf'],
    ['nothing/*', '/etc/keepalived/keepalived.conf'],
  ]);
  t.equal(get(r.raw, 'virtual_services[1].real_servers[0].weight'), 9);
  t.same(
    r.problems.map((p) => [p.file, p.line, p.directive]),
    [
      [undefined, 4, 'includem'],
      ['/etc/keepalived/conf.d/rs/one', 3, 'bogus'],
    ],
  );
  const weight = r.notes.find(
    (n) => formatPath(n.path) === 'virtual_services[1].real_servers[0].weight',
  );
  t.same(weight && [weight.file, weight.line], ['/etc/keepalived/conf.d/rs/one', 2]);
  const unmatched = r.notes.find((n) => /matches no file/.test(n.text ?? ''));
  t.same(unmatched && [unmatched.file, unmatched.line], ['/etc/keepalived/conf.d/b.conf', 1]);
  t.same(r.left, []);
});

t.test('an include loop stops with a problem', async (t) => {
  const include = fakeInclude({ '/k/loop.conf': 'include loop.conf\n' });
  const r = translateKeepalived('include loop.conf\n', '/k/main.conf', include);
  t.equal(r.problems.length, 1);
  t.match(r.problems[0], { file: '/k/loop.conf', line: 1, message: /deeper than 16/ });
});

t.test('corpus: full.conf validates, every directive honoured or noted', async (t) => {
  const file = join(corpus, 'full.conf');
  const r = translateKeepalived(readFileSync(file, 'utf8'), file, fsInclude);
  t.same(r.problems, []);
  t.doesNotThrow(() => parseConfig(stringify(r.raw), file, {}));
  t.same(
    r.left.map((l) => l.path.join(' ')),
    ['global_defs router_id', 'global_defs lvs_flush', 'vrrp_instance VI_1'],
  );
  // The included real server went to each of the group's services.
  const services = get(r.raw, 'virtual_services') as unknown[];
  t.equal(services.length, 4 + 4);
  t.equal(get(r.raw, 'virtual_services[7].fwmark'), 9);
  t.equal(get(r.raw, 'virtual_services[7].real_servers[0].checks[0].port'), 8080);
  const included = r.notes.find(
    (n) => formatPath(n.path) === 'virtual_services[4].real_servers[0].address',
  );
  t.equal(included?.file, join(corpus, 'conf.d/web-rs.conf'));
});

t.test('corpus: refused.conf names each refusal by its line', async (t) => {
  const file = join(corpus, 'refused.conf');
  const text = readFileSync(file, 'utf8');
  const r = translateKeepalived(text, file, fsInclude);
  t.same(
    r.problems.map((p) => p.line),
    [6, 7, 8, 11, 15, 16, 17, 20, 23, 24, 27, 31, 34, 37, 42],
  );
});

t.test("Debian's samples: valid, or every refusal names its line", async (t) => {
  if (!existsSync(SAMPLES)) {
    t.fail(`no ${SAMPLES}: install keepalived (bash test/setup.sh)`);
    return;
  }
  const files = readdirSync(SAMPLES).filter((f) => f.startsWith('keepalived.conf'));
  t.ok(files.length > 10, 'samples found');
  for (const f of files) {
    const path = join(SAMPLES, f);
    const bytes = readFileSync(path);
    const text = (f.endsWith('.gz') ? gunzipSync(bytes) : bytes).toString('utf8');
    const lines = text.split('\n').length;
    const r = translateKeepalived(text, path, none);
    if (r.problems.length === 0) {
      t.doesNotThrow(() => parseConfig(stringify(r.raw), path, {}), `${f} validates`);
    } else {
      t.ok(
        r.problems.every((p) => p.line >= 1 && p.line <= lines && p.message.length > 0),
        `${f}: ${r.problems.map((p) => `${p.line} ${p.directive}`).join(', ')}`,
      );
    }
  }
});
