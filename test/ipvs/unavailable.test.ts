// On a kernel without IPVS (this machine's, outside the VM) opening the backend says what to do.
import { existsSync } from 'node:fs';
import t from 'tap';
import { NetlinkBackend } from '../../src/ipvs/netlink/backend.js';

t.test(
  'a kernel without IPVS gets one clear message',
  { skip: existsSync('/proc/net/ip_vs') && 'this kernel has IPVS' },
  async (t) => {
    await t.rejects(NetlinkBackend.open(), {
      code: 'IPVS_UNAVAILABLE',
      message: /the kernel has no IPVS: load it with `modprobe ip_vs`/,
    });
  },
);
