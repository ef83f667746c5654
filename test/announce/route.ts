// A route as the announcer keeps it (a blackhole host route in table 240, protocol 250), for the
// tests to build what they expect.
import { RTN_BLACKHOLE, type Route } from '../../src/realserver/rtnetlink.js';

export const announced = (address: string, extra: Partial<Route> = {}): Route => ({
  family: address.includes(':') ? 6 : 4,
  table: 240,
  address,
  prefix: address.includes(':') ? 128 : 32,
  metric: 0,
  protocol: 250,
  type: RTN_BLACKHOLE,
  ...extra,
});
