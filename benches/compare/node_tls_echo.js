// Node's tls echo, the peer of `netloop serve echo --tls-cert .. --tls-key ..`
// in benches/compare/run.sh (cells tls*).
//
//   node node_tls_echo.js PORT CERT KEY   tls.createServer(s => s.pipe(s))
//
// Binds 127.0.0.1, sets noDelay, prints "listening on 127.0.0.1:PORT" once
// listening. Single-threaded. Node's TLS is OpenSSL; the cipher suite is the
// client's (netloop bench, rustls) first choice, as for the other peers.
'use strict';
const fs = require('fs');
const tls = require('tls');

const port = Number(process.argv[2] || 0);
const cert = fs.readFileSync(process.argv[3]);
const key = fs.readFileSync(process.argv[4]);

const server = tls.createServer({ cert, key }, (s) => {
  s.setNoDelay(true);
  s.on('error', () => {}); // ECONNRESET from a closing generator is routine
  s.pipe(s);
});
server.on('tlsClientError', () => {});
server.on('error', (e) => {
  console.error(`node_tls_echo: ${e.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', 4096, () => {
  const a = server.address();
  console.log(`node tls echo listening on ${a.address}:${a.port}`);
});
process.on('SIGTERM', () => process.exit(0));
