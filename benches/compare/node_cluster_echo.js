// Node's `cluster` echo: the multi-process peer of benches/compare/scaling.sh.
//
//   node node_cluster_echo.js WORKERS PORT
//
// The primary forks WORKERS processes; each runs net.createServer(s =>
// s.pipe(s)) (backpressure-aware) on the shared port. Node's default
// scheduling on Linux is round-robin: the primary accepts and hands each
// connection to a worker. Binds 127.0.0.1, sets noDelay, prints
// "listening on 127.0.0.1:PORT" once every worker listens. SIGTERM stops all.
'use strict';
const cluster = require('cluster');
const net = require('net');

const workers = Number(process.argv[2] || 1);
const port = Number(process.argv[3] || 0);
if (!(workers >= 1) || !(port > 0)) {
  console.error('usage: node node_cluster_echo.js WORKERS PORT');
  process.exit(2);
}

if (cluster.isPrimary) {
  let listening = 0;
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('listening', () => {
    if (++listening === workers) console.log(`listening on 127.0.0.1:${port}`);
  });
  const stop = () => {
    for (const id in cluster.workers) cluster.workers[id].kill();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const server = net.createServer({ noDelay: true }, (s) => {
    s.on('error', () => {}); // ECONNRESET from a closing generator is routine
    s.pipe(s);
  });
  server.listen(port, '127.0.0.1');
}
