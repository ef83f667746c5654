// A table that uses every attribute ipvsadm can set, with the lines `ipvsadm -S -n` prints for
// it (checked by hand against ipvsadm(8); -S leaves thresholds out, so they are restore-only
// extras, checked through `ipvsadm -Ln --thresholds`). The kernel lane writes the table through
// the backend and reads it with ipvsadm, and the other way round.
import type { Operation, ServiceSpec, DestinationSpec } from '../../src/ipvs/model.js';
import { destinationSpec, serviceSpec } from '../../src/ipvs/spec.js';

export interface FixtureService {
  readonly service: ServiceSpec;
  readonly line: string;
  readonly destinations: readonly {
    readonly spec: DestinationSpec;
    readonly line: string;
    /** Options `ipvsadm -S` does not print but `ipvsadm -R` takes. */
    readonly restoreExtra?: string;
  }[];
}

const tcp = { family: 4, protocol: 'tcp', address: '10.1.0.1', port: 80 } as const;
const udp6 = { family: 6, protocol: 'udp', address: '2001:db8::53', port: 53 } as const;
const sctp = { family: 4, protocol: 'sctp', address: '10.1.0.3', port: 3868 } as const;
const sip = { family: 4, protocol: 'udp', address: '10.1.0.4', port: 5060 } as const;
const fwm4 = { family: 4, fwmark: 7 } as const;
const fwm6 = { family: 6, fwmark: 0x10 } as const;
const tcp6 = { family: 6, protocol: 'tcp', address: '2001:db8::80', port: 443 } as const;

export const FIXTURE: readonly FixtureService[] = [
  {
    service: serviceSpec({
      key: tcp,
      scheduler: 'wrr',
      persistent: true,
      timeout: 600,
      netmask: 24,
    }),
    line: '-A -t 10.1.0.1:80 -s wrr -p 600 -M 255.255.255.0',
    destinations: [
      {
        spec: destinationSpec({
          key: { family: 4, address: '10.1.0.11', port: 8080 },
          weight: 5,
          upperThreshold: 100,
          lowerThreshold: 10,
        }),
        line: '-a -t 10.1.0.1:80 -r 10.1.0.11:8080 -m -w 5',
        restoreExtra: '-x 100 -y 10',
      },
      {
        spec: destinationSpec({
          key: { family: 4, address: '10.1.0.12', port: 80 },
          fwd: 'route',
          weight: 0,
        }),
        line: '-a -t 10.1.0.1:80 -r 10.1.0.12:80 -g -w 0',
      },
      {
        spec: destinationSpec({
          key: { family: 4, address: '10.1.0.13', port: 80 },
          fwd: 'tunnel',
          weight: 2,
        }),
        line: '-a -t 10.1.0.1:80 -r 10.1.0.13:80 -i -w 2 --tun-type ipip',
      },
      {
        spec: destinationSpec({
          key: { family: 4, address: '10.1.0.14', port: 80 },
          fwd: 'tunnel',
          tunnel: { type: 'gue', port: 6080, remcsum: true },
        }),
        line: '-a -t 10.1.0.1:80 -r 10.1.0.14:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-remcsum',
      },
      {
        spec: destinationSpec({
          key: { family: 4, address: '10.1.0.15', port: 80 },
          fwd: 'tunnel',
          // ipvsadm takes --tun-remcsum for GUE only (the kernel itself would store it for GRE too).
          tunnel: { type: 'gre', csum: true },
        }),
        line: '-a -t 10.1.0.1:80 -r 10.1.0.15:80 -i -w 1 --tun-type gre --tun-csum',
      },
      {
        spec: destinationSpec({
          key: { family: 6, address: '2001:db8::15', port: 80 },
          fwd: 'tunnel',
          weight: 65535,
        }),
        line: '-a -t 10.1.0.1:80 -r [2001:db8::15]:80 -i -w 65535 --tun-type ipip',
      },
    ],
  },
  {
    // ipvsadm allows one-packet scheduling (-o) for UDP only.
    service: serviceSpec({
      key: udp6,
      scheduler: 'mh',
      schedFlags: 3,
      persistent: true,
      timeout: 30,
      netmask: 64,
      onePacket: true,
    }),
    line: '-A -u [2001:db8::53]:53 -s mh -p 30 -M 64 -o -b mh-fallback,mh-port',
    destinations: [
      {
        spec: destinationSpec({
          key: { family: 6, address: '2001:db8::5:1', port: 53 },
          weight: 10,
        }),
        line: '-a -u [2001:db8::53]:53 -r [2001:db8::5:1]:53 -m -w 10',
      },
      {
        spec: destinationSpec({
          key: { family: 4, address: '10.1.0.21', port: 53 },
          fwd: 'tunnel',
        }),
        line: '-a -u [2001:db8::53]:53 -r 10.1.0.21:53 -i -w 1 --tun-type ipip',
      },
    ],
  },
  {
    service: serviceSpec({ key: sctp, scheduler: 'sh', schedFlags: 1 }),
    line: '-A --sctp-service 10.1.0.3:3868 -s sh -b sh-fallback',
    destinations: [
      {
        spec: destinationSpec({ key: { family: 4, address: '10.1.0.31', port: 3868 }, weight: 3 }),
        line: '-a --sctp-service 10.1.0.3:3868 -r 10.1.0.31:3868 -m -w 3',
      },
    ],
  },
  {
    service: serviceSpec({ key: sip, scheduler: 'rr', persistent: true, timeout: 60, pe: 'sip' }),
    line: '-A -u 10.1.0.4:5060 -s rr -p 60 --pe sip',
    destinations: [],
  },
  {
    service: serviceSpec({
      key: fwm4,
      scheduler: 'lc',
      persistent: true,
      timeout: 300,
      netmask: 16,
    }),
    line: '-A -f 7 -s lc -p 300 -M 255.255.0.0',
    destinations: [
      {
        spec: destinationSpec({
          key: { family: 4, address: '10.1.0.41', port: 0 },
          fwd: 'route',
          weight: 4,
        }),
        line: '-a -f 7 -r 10.1.0.41:0 -g -w 4',
      },
    ],
  },
  {
    service: serviceSpec({ key: fwm6, scheduler: 'sed' }),
    line: '-A -f 16 -6 -s sed',
    destinations: [
      {
        spec: destinationSpec({
          key: { family: 6, address: '2001:db8::6:1', port: 0 },
          fwd: 'route',
        }),
        line: '-a -f 16 -6 -r [2001:db8::6:1]:0 -g -w 1',
      },
    ],
  },
  {
    service: serviceSpec({ key: tcp6, scheduler: 'wlc' }),
    line: '-A -t [2001:db8::80]:443 -s wlc',
    destinations: [
      {
        spec: destinationSpec({
          key: { family: 6, address: '2001:db8::8:1', port: 8443 },
          upperThreshold: 1000,
        }),
        line: '-a -t [2001:db8::80]:443 -r [2001:db8::8:1]:8443 -m -w 1',
        restoreExtra: '-x 1000 -y 0',
      },
    ],
  },
];

/** The fixture as writes, services first. */
export function fixtureOperations(): Operation[] {
  return FIXTURE.flatMap((f) => [
    { op: 'add-service' as const, service: f.service },
    ...f.destinations.map((d) => ({
      op: 'add-destination' as const,
      service: f.service.key,
      destination: d.spec,
    })),
  ]);
}

export const FIXTURE_LINES: readonly string[] = FIXTURE.flatMap((f) => [
  f.line,
  ...f.destinations.map((d) => d.line),
]);

/** Input for `ipvsadm -R` that builds the fixture. */
export const FIXTURE_RESTORE: string = FIXTURE.flatMap((f) => [
  f.line,
  ...f.destinations.map((d) => (d.restoreExtra ? `${d.line} ${d.restoreExtra}` : d.line)),
]).join('\n');
