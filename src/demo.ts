// A small example table for running without a kernel (the in-memory backend).
import type { Operation } from './ipvs/model.js';
import { destinationSpec, serviceSpec } from './ipvs/spec.js';

export function demoTable(): Operation[] {
  const web = serviceSpec({
    key: { family: 4, protocol: 'tcp', address: '192.0.2.10', port: 80 },
    scheduler: 'wlc',
  });
  const dns = serviceSpec({
    key: { family: 6, protocol: 'udp', address: '2001:db8::53', port: 53 },
    scheduler: 'mh',
    schedFlags: 3,
  });
  return [
    { op: 'add-service', service: web },
    ...[1, 2, 3].map((i): Operation => ({
      op: 'add-destination',
      service: web.key,
      destination: destinationSpec({
        key: { family: 4, address: `127.0.0.${i + 1}`, port: 8080 },
        weight: i === 3 ? 0 : 10,
      }),
    })),
    { op: 'add-service', service: dns },
    {
      op: 'add-destination',
      service: dns.key,
      destination: destinationSpec({
        key: { family: 6, address: '2001:db8::5:1', port: 53 },
        fwd: 'route',
      }),
    },
  ];
}
