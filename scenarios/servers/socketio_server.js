// A Socket.IO 4 server (the real `socket.io` package) for scenarios/socketio.toml.
//
// Usage: node socketio_server.js --port P [--ping-interval MS] [--ping-timeout MS]
//                                [--kick-after MS]
//
// Clients connect with the Engine.IO 4 WebSocket transport (/socket.io/?EIO=4&transport=websocket).
// The server answers the event "hello" with an acknowledgement {ok: true, echo: <its argument>},
// heartbeats every --ping-interval ms (Engine.IO's "2"; a client that does not answer "3"
// within --ping-timeout ms is disconnected with "ping timeout"), and --kick-after ms after a
// client connected to the namespace it kicks it (socket.disconnect(true): a "41" packet, then
// the WebSocket is closed). On SIGTERM/SIGINT it prints one line of counts and exits:
//   socketio_server: connected=N kicked=N ping_timeouts=N acks=N other_disconnects=N
// Without node_modules it runs `npm ci` here first, like deploy_server.js.
'use strict';

const fs = require('fs');
const path = require('path');
const http = require('http');
const { execFileSync } = require('child_process');

if (!fs.existsSync(path.join(__dirname, 'node_modules', 'socket.io', 'package.json'))) {
  console.log('socketio_server: installing socket.io (npm ci) ...');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: __dirname,
    stdio: 'inherit',
  });
}
const { Server } = require('socket.io');

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(name);
  return index >= 0 ? Number(args[index + 1]) : fallback;
};
const port = option('--port', 0);
const pingInterval = option('--ping-interval', 25000);
const pingTimeout = option('--ping-timeout', 20000);
const kickAfter = option('--kick-after', 0);

const counts = { connected: 0, kicked: 0, ping_timeouts: 0, acks: 0, other_disconnects: 0 };
const httpServer = http.createServer();
const io = new Server(httpServer, { transports: ['websocket'], pingInterval, pingTimeout });

io.on('connection', (socket) => {
  counts.connected += 1;
  socket.on('hello', (data, ack) => {
    counts.acks += 1;
    if (typeof ack === 'function') ack({ ok: true, echo: data });
  });
  let timer = null;
  if (kickAfter > 0) {
    timer = setTimeout(() => {
      counts.kicked += 1;
      socket.disconnect(true);
    }, kickAfter);
  }
  socket.on('disconnect', (reason) => {
    if (timer !== null) clearTimeout(timer);
    if (reason === 'ping timeout') counts.ping_timeouts += 1;
    else if (reason !== 'server namespace disconnect') counts.other_disconnects += 1;
  });
});

const report = () => {
  const line = Object.entries(counts).map(([k, v]) => `${k}=${v}`).join(' ');
  console.log(`socketio_server: ${line}`);
};
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    report();
    io.close();
    process.exit(0);
  });
}

httpServer.listen(port, '127.0.0.1', () => {
  console.log(`socketio_server: listening on ${httpServer.address().port}`);
});
