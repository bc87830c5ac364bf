// Node's net echo, the peer of `netloop serve echo` in benches/compare/run.sh.
//
//   node node_echo.js pipe PORT   net.createServer(s => s.pipe(s))  (backpressure-aware)
//   node node_echo.js data PORT   the seed's form: s.on('data', d => s.write(d))
//                                 (ignores write()'s return value, as the seed does)
//
// Binds 127.0.0.1, sets noDelay (as netloop, tokio_echo and epoll_echo do),
// prints "listening on 127.0.0.1:PORT" once listening. Single-threaded.
'use strict';
const net = require('net');

const mode = process.argv[2] || 'pipe';
const port = Number(process.argv[3] || 0);
if (mode !== 'pipe' && mode !== 'data') {
  console.error('usage: node node_echo.js pipe|data PORT');
  process.exit(2);
}

const server = net.createServer({ noDelay: true }, (s) => {
  s.on('error', () => {}); // ECONNRESET from a closing generator is routine
  if (mode === 'pipe') {
    s.pipe(s);
  } else {
    s.on('data', (d) => s.write(d));
    s.on('end', () => s.end());
  }
});
server.on('error', (e) => {
  console.error(`node_echo: ${e.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', 4096, () => {
  const a = server.address();
  console.log(`node echo (${mode}) listening on ${a.address}:${a.port}`);
});
process.on('SIGTERM', () => process.exit(0));
