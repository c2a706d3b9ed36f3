// A Node `ws` 8 server for wsload's loopback tests (started by tests/peers.py).
//
// Usage: node server.js [--close-timeout MS]
// Listens on 127.0.0.1 (port chosen by the OS) and prints "PORT <n>" once listening.
// What each connection does comes from its request path, so one server serves a whole test file:
//   /echo (default)                      echo every message back
//   /sink                                read messages, never answer them
//   /close?after=MS&code=C&reason=TEXT   echo, then ws.close(code, reason) after MS
//   /terminate?after=MS                  echo, then ws.terminate() (no Close frame) after MS
//   /pubsub?pushes=N&interval=MS&code=C  an application server, not an echo: a JSON
//                                        {"op":"subscribe","topic":T} gets {"op":"subscribed"}
//                                        and N pushes, one every MS; {"op":"bye"} gets
//                                        ws.close(C, "bye") once the pushes are out
// --close-timeout is ws's closeTimeout: how long the server waits for the client's answer to its
// Close before destroying the socket (ws's default: 30 s).
'use strict';

const { WebSocketServer } = require('ws');

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(name);
  return index >= 0 ? Number(args[index + 1]) : fallback;
};

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  closeTimeout: option('--close-timeout', 30000),
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
  ws.on('message', (data, isBinary) => {
    if (mode !== 'sink') ws.send(data, { binary: isBinary });
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

wss.on('listening', () => {
  process.stdout.write(`PORT ${wss.address().port}\n`);
});

const stop = () => {
  for (const client of wss.clients) client.terminate();
  wss.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);  // the test process went away: do not linger
process.stdin.resume();
