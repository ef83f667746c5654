// check-config's output written a virtual service at a time: the same text as the whole
// document's YAML, for configs with every kind of part (secrets, alerts, hooks, a value over
// several lines, no services at all); and whether it says that secret values are hidden.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { stringify } from 'yaml';
import { CATALOG, parseConfig } from '../../src/checkers.js';
import {
  effectiveDocument,
  renderDocument,
  renderEffective,
  YAML_OPTIONS,
} from '../../src/config/effective.js';
import { hasSecrets } from '../../src/health/options.js';

const example = readFileSync(new URL('../../../deploy/ipvs-warden.yaml', import.meta.url), 'utf8');

const CONFIGS: Record<string, string> = {
  'the packaged example': example,
  'no virtual services': 'daemon: {backend: memory}\nvirtual_services: []\n',
  'secrets, alerts and hooks': `daemon: {backend: memory}
alerts:
  email: {to: ops@example.com, from: lvs@example.com, smtp: mail.example.com, user: lvs, password: hunter2}
  webhooks:
    - {name: am, url: "http://127.0.0.1:9093/hook?token=abc", format: alertmanager}
virtual_services:
  - name: web
    address: 192.0.2.1
    port: 443
    hooks: {server_down: {shell: '/usr/local/bin/notify "$WARDEN_SERVER" down'}}
    real_servers:
      - address: 10.0.0.2
        checks:
          - {type: https, path: "/healthz?token=abc", headers: {Authorization: Bearer x}}
          - {type: tcp, send: "PING\\\\r\\\\n", expect: PONG}
      - {address: 10.0.0.3, weight: 0}
  - {name: dns, address: 192.0.2.1, port: 53, protocol: udp, checks: [], real_servers: [{address: 10.0.0.4}]}
`,
  'a value over several lines': `daemon: {backend: memory}
virtual_services:
  - address: 192.0.2.1
    port: 80
    real_servers:
      - address: 10.0.0.2
        checks: [{type: exec, command: [/bin/sh, -c, "echo one\\n\\n  two\\nthree\\n"]}]
`,
};

t.test('written a service at a time, the text is the whole document stringified', async (t) => {
  for (const [name, text] of Object.entries(CONFIGS)) {
    const config = parseConfig(text, `${name}.yaml`, {});
    for (const showSecrets of [false, true]) {
      const { document } = effectiveDocument(config, CATALOG, { showSecrets });
      const whole = stringify(document, YAML_OPTIONS);
      t.equal(renderDocument(document), whole, `${name}, showSecrets ${showSecrets}`);
    }
  }
});

t.test('whether a secret value is hidden', async (t) => {
  const hidden = (text: string, showSecrets = false): boolean =>
    renderEffective(parseConfig(text, 'test.yaml', {}), CATALOG, { showSecrets }).hidden;
  t.equal(hidden(CONFIGS['secrets, alerts and hooks'] ?? ''), true);
  t.equal(hidden(CONFIGS['secrets, alerts and hooks'] ?? '', true), false, 'shown: none hidden');
  t.equal(hidden(CONFIGS['no virtual services'] ?? ''), false);
  t.equal(hidden(CONFIGS['a value over several lines'] ?? ''), false, 'an exec check without env');
  const only = (extra: string): string =>
    `daemon: {backend: memory}\n${extra}virtual_services:\n  - {address: 192.0.2.1, port: 80, real_servers: [{address: 10.0.0.2, checks: [CHECK]}]}\n`;
  const cases: [string, string, boolean][] = [
    ['a plain TCP check', only('').replace('CHECK', '{type: tcp}'), false],
    ['a path without a query', only('').replace('CHECK', '{type: http, path: /healthz}'), false],
    ['a query', only('').replace('CHECK', '{type: http, path: "/h?k=v"}'), true],
    ['a header', only('').replace('CHECK', '{type: http, headers: {X-A: b}}'), true],
    ['no headers', only('').replace('CHECK', '{type: http, headers: {}}'), false],
    ['send', only('').replace('CHECK', '{type: tcp, send: hi}'), true],
    [
      "an alert webhook's URL",
      only('alerts: {webhooks: [{name: a, url: "http://127.0.0.1:1/x", format: json}]}\n').replace(
        'CHECK',
        '{type: tcp}',
      ),
      true,
    ],
  ];
  for (const [name, text, want] of cases) t.equal(hidden(text), want, name);
  t.equal(
    hasSecrets(
      { tls: { key: undefined, verify: false } },
      { tls: { key: 'secret', verify: 'public' } },
    ),
    false,
  );
  t.equal(
    hasSecrets({ tls: { key: '/k', verify: false } }, { tls: { key: 'secret', verify: 'public' } }),
    true,
  );
});
