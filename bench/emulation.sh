#!/usr/bin/env bash
# How much the emulated VM slows JIT-compiled JavaScript against C: the same work timed here
# and in the VM (`npm run bench:emulation` runs it on the host, then in the VM). bench:peers
# compares node with C programs under that emulation; this says how far the emulation alone
# tilts that comparison. Each node figure includes node's start-up, timed on its own line.
cd "$(dirname "$0")/.." || exit 1
ms() {
  local s
  s=$(date +%s%N)
  "$@" > /dev/null 2>&1
  echo $((($(date +%s%N) - s) / 1000000))
}
head -c 32000000 /dev/zero > /tmp/emulation.bin
echo "C   sha256sum 32 MB:                  $(ms sha256sum /tmp/emulation.bin) ms"
echo "C   gzip -1 32 MB:                    $(ms gzip -1 -c /tmp/emulation.bin) ms"
echo "JS  node start-up (node -e 0):        $(ms node -e 0) ms"
echo "JS  fib(27), JIT-compiled code:       $(ms node -e 'function f(n){return n<2?n:f(n-1)+f(n-2)} f(27)') ms"
echo "JS  2e6 objects into a Map (runtime): $(ms node -e 'const m=new Map();for(let i=0;i<2e6;i++){m.set(i%1000,{a:i,b:String(i)})}') ms"
echo "JS  http-parser-js, 20,000 replies:   $(ms node -e "
const { HTTPParser } = require('./node_modules/http-parser-js/http-parser.js');
const b = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: nginx\r\nDate: Tue, 01 Dec 2026 11:00:00 GMT\r\n\r\nok');
for (let i = 0; i < 20000; i++) { const p = new HTTPParser(HTTPParser.RESPONSE); p[HTTPParser.kOnHeadersComplete] = () => 0; p.execute(b); }") ms"
rm -f /tmp/emulation.bin
