// N concurrent net.connect by name from one Node event loop, one echoed byte
// each: the event-loop figure of bench/run.py. A connect() that blocks for
// the SOCKS handshake serializes them; a non-blocking one overlaps them.
// Prints the milliseconds from the first connect to the last echo.
// Usage: node node_connects.js N HOST PORT
"use strict";
const net = require("net");
const [n, host, port] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4])];
const start = process.hrtime.bigint();
let left = n;
for (let i = 0; i < n; i++) {
  const s = net.connect({ host, port }, () => s.write("x"));
  s.once("data", () => {
    s.destroy();
    if (--left === 0) console.log((Number(process.hrtime.bigint() - start) / 1e6).toFixed(2));
  });
  s.on("error", (e) => {
    console.error(`node_connects: ${host}:${port}: ${e.message}`);
    process.exit(1);
  });
}
