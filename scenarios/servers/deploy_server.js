// A Node `ws` 8 echo server that shuts down like the seeds' sweeps (scenarios/deploy_*.toml).
//
// Usage: node deploy_server.js --port P [--sweep soft|hard] [--grace MS] [--code 1001]
//                              [--processes N]
//
// On SIGTERM (what a supervisor sends on a deploy) it stops accepting and closes every client:
//   soft: socket.close(code) to everyone, then after --grace ms terminate() whoever is still
//         OPEN or CLOSING (the seeds' "soft shutdown": give clients time, but not 30 s);
//   hard: socket.close(code), then terminate() on the next tick (the seeds' "hard landing").
// It exits 0 once no client is left. Without node_modules it runs `npm ci` here first (its
// output goes to wsload's server.log), so a fresh clone needs nothing but node and npm.
//
// --processes N (default 1): N worker processes share the port (Node's `cluster`: the primary
// accepts and hands each connection to the next worker), for more clients than one process's
// file limit (benchmarks/c100k.py --server node: 100,000). The primary forwards SIGTERM to every
// worker, each sweeps its own clients as above and exits once it has none left, and the primary
// exits once every worker has: 0 when each exited 0 after the signal.
'use strict';

const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

if (!fs.existsSync(path.join(__dirname, 'node_modules', 'ws', 'package.json'))) {
  console.log('deploy_server: installing ws (npm ci) ...');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: __dirname,
    stdio: 'inherit',
  });
}
const cluster = require('cluster');
const { performance } = require('perf_hooks');
const { WebSocket, WebSocketServer } = require(path.join(__dirname, 'node_modules', 'ws'));

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(name);
  return index >= 0 ? args[index + 1] : fallback;
};
const port = Number(option('--port', '0'));
const sweep = option('--sweep', 'soft');
const grace = Number(option('--grace', '10000'));
const code = Number(option('--code', '1001'));
const processes = Number(option('--processes', '1'));

// How late this process's event loop ran at most (a 100 ms timer's lateness: how saturated a
// loaded server was), said when it exits.
function watchLateness() {
  let late = 0;
  let tick = performance.now();
  setInterval(() => {
    const now = performance.now();
    late = Math.max(late, now - tick - 100);
    tick = now;
  }, 100).unref();
  return () => late.toFixed(0);
}

if (processes > 1 && cluster.isPrimary) {
  primary();
} else {
  serve();
}

function primary() {
  cluster.schedulingPolicy = cluster.SCHED_RR; // even shares: each worker has its file limit
  let stopping = false;
  let failed = false;
  let listening = 0;
  let running = processes;
  const late = watchLateness();
  for (let i = 0; i < processes; i += 1) cluster.fork();
  cluster.on('listening', (worker, address) => {
    listening += 1;
    if (listening === processes) {
      console.log(`deploy_server: listening on ${address.port} in ${processes} processes`);
    }
  });
  cluster.on('exit', (worker, status, signal) => {
    if (!stopping || status !== 0) {
      failed = true;
      console.log(`deploy_server: worker ${worker.process.pid} exited (${status ?? signal})`);
    }
    // counted here: cluster.workers drops a worker at its exit or its IPC channel's end,
    // whichever comes last, so the last exit may still find it listed
    running -= 1;
    if (running === 0) {
      console.log(`deploy_server: all ${processes} processes exited (primary at most ${late()} ms late)`);
      process.exit(failed ? 1 : 0);
    }
  });
  process.on('SIGTERM', () => {
    if (stopping) return;
    stopping = true;
    console.log(`deploy_server: SIGTERM, forwarded to ${processes} processes`);
    for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM');
  });
}

function serve() {
  const wss = new WebSocketServer({ host: '127.0.0.1', port, clientTracking: true });
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  wss.on('listening', () => console.log(`deploy_server: listening on ${wss.address().port}`));

  const stillThere = (socket) => [WebSocket.OPEN, WebSocket.CLOSING].includes(socket.readyState);

  const late = watchLateness();

  const exitWhenEmpty = () => {
    const timer = setInterval(() => {
      if (wss.clients.size === 0) {
        clearInterval(timer);
        console.log(`deploy_server: event loop at most ${late()} ms late`);
        console.log('deploy_server: every client gone, exiting');
        process.exit(0);
      }
    }, 5);
  };

  let stopping = false;
  process.on('SIGTERM', () => {
    if (stopping) return;
    stopping = true;
    console.log(`deploy_server: SIGTERM, ${sweep} sweep of ${wss.clients.size} clients`);
    wss.close(); // stop accepting; open clients stay until the sweep below
    if (sweep === 'hard') {
      for (const socket of wss.clients) {
        socket.close(code, 'going away');
        process.nextTick(() => {
          if (stillThere(socket)) socket.terminate();
        });
      }
    } else {
      for (const socket of wss.clients) socket.close(code, 'going away');
      setTimeout(() => {
        let left = 0;
        for (const socket of wss.clients) {
          if (stillThere(socket)) {
            socket.terminate();
            left += 1;
          }
        }
        console.log(`deploy_server: grace over, terminated ${left}`);
      }, grace).unref();
    }
    exitWhenEmpty();
  });
}
