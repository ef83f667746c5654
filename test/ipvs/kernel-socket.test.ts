// The kernel socket's start against this machine's own kernel (generic netlink and rtnetlink
// need no IPVS): the oversized request that sizes dump parts is refused and echoed whole, and
// its refusal never reaches the transport. The dumps it speeds up are counted in the VM
// (test/vm/kernel.vm.ts).
import { once } from 'node:events';
import { RawNetlinkSocket } from 'netlink';
import t from 'tap';
import { kernelSocketFor } from '../../src/ipvs/netlink/backend.js';
import { getFamilyMessage, isRefusal, refusedRequest } from '../../src/ipvs/netlink/codec.js';
import * as K from '../../src/ipvs/netlink/constants.js';
import { NetlinkTransport } from '../../src/ipvs/netlink/transport.js';

const NETLINK_ROUTE = 0;
const ENOENT = 2;
const EOPNOTSUPP = 95;

/** A datagram of one message, for isRefusal's table. */
function reply(type: number, seq: number, errno: number, length = K.NLMSG_HDRLEN + 4): Buffer {
  const b = Buffer.alloc(length);
  b.writeUInt32LE(length, 0);
  b.writeUInt16LE(type, 4);
  b.writeUInt32LE(seq, 8);
  if (length >= K.NLMSG_HDRLEN + 4) b.writeInt32LE(-errno, K.NLMSG_HDRLEN);
  return b;
}

t.test('isRefusal: only an error answering sequence 0', async (t) => {
  const rows: [string, Buffer, boolean][] = [
    ['an error to sequence 0', reply(K.NLMSG_ERROR, 0, ENOENT), true],
    ['an error to a numbered request', reply(K.NLMSG_ERROR, 1, ENOENT), false],
    ['an acknowledgement (errno 0)', reply(K.NLMSG_ERROR, 0, 0), false],
    ['a dump part', reply(K.NLMSG_DONE, 0, ENOENT), false],
    ['a short datagram', reply(K.NLMSG_ERROR, 0, ENOENT, K.NLMSG_HDRLEN), false],
  ];
  for (const [name, datagram, want] of rows) t.equal(isRefusal(datagram), want, name);
});

for (const [name, protocol, errno] of [
  ['generic netlink', K.NETLINK_GENERIC, ENOENT],
  ['rtnetlink', NETLINK_ROUTE, EOPNOTSUPP],
] as const) {
  t.test(`${name} refuses the sizing request and echoes it whole`, async (t) => {
    const socket = new RawNetlinkSocket(protocol, {
      recvBufferSize: 1 << 20,
      sendBufferSize: 1 << 20,
    });
    t.teardown(() => socket.close());
    const request = refusedRequest(32 << 10);
    const got = once(socket, 'message') as Promise<[Buffer, { port: number }]>;
    socket.send([request], { port: 0 }, () => undefined);
    const [data, rinfo] = await got;
    t.equal(rinfo.port, 0, 'from the kernel');
    t.ok(isRefusal(data), 'an error answering sequence 0');
    t.equal(data.readInt32LE(K.NLMSG_HDRLEN), -errno, `errno ${errno}`);
    // nlmsghdr, errno, then the request as sent: the read that takes it is over 32 KiB.
    t.ok(data.length >= K.NLMSG_HDRLEN + 4 + request.length, `${data.length} bytes`);
    t.same(
      data.subarray(K.NLMSG_HDRLEN + 4, K.NLMSG_HDRLEN + 8),
      request.subarray(0, 4),
      'the echo starts with the request',
    );
  });
}

t.test('the refusal never reaches the transport', async (t) => {
  const transport = new NetlinkTransport(kernelSocketFor(K.NETLINK_GENERIC));
  t.teardown(() => transport.close());
  const [family] = await transport.request(getFamilyMessage('nlctrl'), { op: 'get-family' });
  t.ok(family, 'the family request is answered');
  t.match(transport.counters, { received: 2, receivedDatagrams: 2, stray: 0, foreign: 0 });
});

t.test(
  'a reply waiting in the socket when the deadline passes is read, not timed out',
  async (t) => {
    const timeoutMs = 100;
    const transport = new NetlinkTransport(kernelSocketFor(K.NETLINK_GENERIC), { timeoutMs });
    t.teardown(() => transport.close());
    const answer = transport.request(getFamilyMessage('nlctrl'), { op: 'get-family' });
    // Queued in a microtask; the socket sends it on its first timer, due before the sweep's,
    // and the kernel answers within the send.
    await Promise.resolve();
    // The loop stalls past the deadline and the sweep's period: the next turn runs the sweep
    // (timers) before it reads the reply (poll).
    const until = Date.now() + 3 * timeoutMs;
    while (Date.now() < until);
    const [family] = await answer;
    t.ok(family, 'answered');
    t.equal(transport.counters.stray, 0);
  },
);
