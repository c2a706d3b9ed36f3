// A Node `ws` 8 server for wsload's loopback tests (started by tests/peers.py).
//
// Usage: node server.js [--close-timeout MS] [--deflate]
// Listens on 127.0.0.1 (port chosen by the OS) and prints "PORT <n>" once listening.
// --deflate turns on ws's perMessageDeflate (off by default in ws); GET /stats (plain HTTP) then
// answers {"compressed_in": N}: client messages that arrived compressed (RSV1), counted where ws
// inflates them, the server-side evidence that the client really compressed.
// What each connection does comes from its request path, so one server serves a whole test file:
//   /echo (default)                      echo every message back
//   /sink                                read messages, never answer them
//   /fragments?parts=N                   echo every message back as N fragments
//   /close?after=MS&code=C&reason=TEXT   echo, then ws.close(code, reason) after MS
//   /terminate?after=MS                  echo, then ws.terminate() (no Close frame) after MS
//   /pubsub?pushes=N&interval=MS&code=C  an application server, not an echo: a JSON
//                                        {"op":"subscribe","topic":T} gets {"op":"subscribed"}
//                                        and N pushes, one every MS; {"op":"bye"} gets
//                                        ws.close(C, "bye") once the pushes are out
// --close-timeout is ws's closeTimeout: how long the server waits for the client's answer to its
// Close before destroying the socket (ws's default: 30 s).
'use strict';

const http = require('http');
const { Receiver, WebSocketServer } = require('ws');

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(name);
  return index >= 0 ? Number(args[index + 1]) : fallback;
};

let compressedIn = 0;
const inflate = Receiver.prototype.decompress;
Receiver.prototype.decompress = function decompress(data, cb) {
  if (this._fin) compressedIn += 1;  // the last frame of a compressed message
  return inflate.call(this, data, cb);
};

const server = http.createServer((request, response) => {
  response.writeHead(request.url === '/stats' ? 200 : 404, { 'Content-Type': 'application/json' });
  response.end(JSON.stringify({ compressed_in: compressedIn }));
});
const wss = new WebSocketServer({
  server,
  closeTimeout: option('--close-timeout', 30000),
  perMessageDeflate: args.includes('--deflate'),
});

wss.on('connection', (ws, request) => {
  const url = new URL(request.url, 'http://peer');
  const after = Number(url.searchParams.get('after') || 0);
  const mode = url.pathname.replace(/^\//, '') || 'echo';
  ws.on('error', () => {});
  if (mode === 'pubsub') {
    pubsub(ws, url.searchParams);
    return;
  }
  const parts = Number(url.searchParams.get('parts') || 1);
  ws.on('message', (data, isBinary) => {
    if (mode === 'fragments') {
      const step = Math.max(1, Math.ceil(data.length / parts));
      let at = 0;
      do {
        ws.send(data.subarray(at, at + step), { binary: isBinary, fin: at + step >= data.length });
        at += step;
      } while (at < data.length);
    } else if (mode !== 'sink') {
      ws.send(data, { binary: isBinary });
    }
  });
  if (mode === 'close') {
    const code = Number(url.searchParams.get('code') || 1000);
    const reason = url.searchParams.get('reason') || '';
    setTimeout(() => ws.close(code, reason), after);
  } else if (mode === 'terminate') {
    setTimeout(() => ws.terminate(), after);
  }
});

function pubsub(ws, params) {
  const pushes = Number(params.get('pushes') || 5);
  const interval = Number(params.get('interval') || 10);
  const code = Number(params.get('code') || 4000);
  let sent = 0;
  let timer = null;
  let bye = false;
  const finish = () => {
    if (bye && sent >= pushes) ws.close(code, 'bye');
  };
  ws.on('close', () => clearInterval(timer));
  ws.on('message', (data) => {
    let message;
    try {
      message = JSON.parse(data.toString());
    } catch (err) {
      ws.send('{"op":"error"}');
      return;
    }
    if (message.op === 'subscribe') {
      ws.send(JSON.stringify({ op: 'subscribed', topic: message.topic }));
      timer = setInterval(() => {
        if (sent >= pushes) {
          clearInterval(timer);
          return;
        }
        sent += 1;
        ws.send(JSON.stringify({ op: 'push', topic: message.topic, n: sent }));
        finish();
      }, interval);
    } else if (message.op === 'bye') {
      bye = true;
      finish();
    }
  });
}

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});

const stop = () => {
  for (const client of wss.clients) client.terminate();
  wss.close();
  server.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);  // the test process went away: do not linger
process.stdin.resume();
