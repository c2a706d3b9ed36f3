// The benchmark target: a Node `ws` 8 echo server, as fast as Node ws gets (started by
// benchmarks/cycle.py, pinned to its own CPU). Echoes every message; answers a client's Close
// the way ws does (Close back, then the TCP close). Prints "PORT <n>" once listening on
// 127.0.0.1; exits when stdin closes (the harness went away) or on SIGTERM.
'use strict';

const { WebSocketServer } = require('ws');

// perMessageDeflate only for clients that offer it (the held-connections measurement with
// compression); the cycle measurements offer nothing and take the uncompressed path.
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: true });

wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});

wss.on('listening', () => process.stdout.write(`PORT ${wss.address().port}\n`));

const stop = () => {
  for (const client of wss.clients) client.terminate();
  wss.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
