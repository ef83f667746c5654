// CheckConfig -> Checker: the one place that knows which probe implements which check type.
// It sits above both the probes and the config, so neither src/health nor src/config imports a
// probe (src/health/ is the vocabulary the probes implement).
import { DnsChecker } from '../checks/dns.js';
import { ExecChecker } from '../checks/exec.js';
import { HttpChecker } from '../checks/http.js';
import { TcpChecker } from '../checks/tcp.js';
import type { CheckConfig, RealServerConfig } from './config/model.js';
import type { CheckTarget, Checker } from './health/checker.js';

export function createChecker(check: CheckConfig): Checker {
  switch (check.type) {
    case 'tcp':
      return new TcpChecker(check.options);
    case 'http':
    case 'https':
      return new HttpChecker(check.options);
    case 'dns':
      return new DnsChecker(check.options);
    case 'exec':
      return new ExecChecker(check.options);
  }
}

/** Where a check of a real server goes: its own address/port when the check names them. */
export function checkTarget(rs: RealServerConfig, check: CheckConfig): CheckTarget {
  const key = rs.destination.key;
  return {
    family: check.address?.family ?? key.family,
    address: check.address?.address ?? key.address,
    port: check.port ?? key.port,
  };
}
