// A graphql-ws 6 server (the real `graphql-ws` package on `ws` 8) for scenarios/graphql_ws.toml.
//
// Usage: node graphql_ws_server.js --port P [--ping-every MS] [--tokens FILE]
//
// Path /graphql, subprotocol graphql-transport-ws (anything else: graphql-ws refuses it). The
// connection_init payload must carry a token listed in --tokens (a CSV file whose header has a
// "token" column; default: every token is accepted): otherwise the server closes with 4403
// Forbidden. Schema: `subscription { countdown(from: Int!, every: Int = 100) }` yields from, from-1, ...
// 0, one every `every` ms, then completes. Every --ping-every ms the server sends the protocol's
// {"type":"ping"} (the client must answer {"type":"pong"}). On SIGTERM/SIGINT it prints one
// line of counts and exits:
//   graphql_ws_server: acked=N forbidden=N subscribed=N cancelled=N finished=N pongs=N
// "cancelled" counts subscriptions the client completed with their own id before the end.
// Without node_modules it runs `npm ci` here first, like deploy_server.js.
'use strict';

const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const modules = path.join(__dirname, 'node_modules');
if (!fs.existsSync(path.join(modules, 'graphql-ws', 'package.json'))) {
  console.log('graphql_ws_server: installing graphql-ws (npm ci) ...');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: __dirname,
    stdio: 'inherit',
  });
}
const { WebSocketServer } = require('ws');
const { useServer } = require('graphql-ws/use/ws');
const {
  GraphQLInt, GraphQLNonNull, GraphQLObjectType, GraphQLSchema, GraphQLString,
} = require('graphql');

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(name);
  return index >= 0 ? args[index + 1] : fallback;
};
const port = Number(option('--port', '0'));
const pingEvery = Number(option('--ping-every', '0'));
const tokensFile = option('--tokens', '');

let tokens = null;
if (tokensFile) {
  const lines = fs.readFileSync(tokensFile, 'utf8').split(/\r?\n/).filter((l) => l.trim());
  const column = lines[0].split(',').indexOf('token');
  tokens = new Set(lines.slice(1).map((l) => l.split(',')[column]));
}

const counts = { acked: 0, forbidden: 0, subscribed: 0, cancelled: 0, finished: 0, pongs: 0 };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function* countdown(from, every) {
  counts.subscribed += 1;
  let done = false;
  try {
    for (let i = from; i >= 0; i -= 1) {
      yield { countdown: i };
      if (i > 0) await sleep(every);
    }
    done = true;
    counts.finished += 1;
  } finally {
    if (!done) counts.cancelled += 1; // return() from the client's complete
  }
}

const schema = new GraphQLSchema({
  query: new GraphQLObjectType({
    name: 'Query',
    fields: { hello: { type: GraphQLString, resolve: () => 'world' } },
  }),
  subscription: new GraphQLObjectType({
    name: 'Subscription',
    fields: {
      countdown: {
        type: GraphQLInt,
        args: {
          from: { type: new GraphQLNonNull(GraphQLInt) },
          every: { type: GraphQLInt, defaultValue: 100 },
        },
        subscribe: (_root, { from, every }) => countdown(from, every),
      },
    },
  }),
});

const wss = new WebSocketServer({ host: '127.0.0.1', port, path: '/graphql' });
useServer(
  {
    schema,
    onConnect: (ctx) => {
      const token = ctx.connectionParams && ctx.connectionParams.token;
      if (tokens !== null && !tokens.has(token)) {
        counts.forbidden += 1;
        return false; // graphql-ws closes with 4403 Forbidden
      }
      counts.acked += 1;
      return true;
    },
  },
  wss,
);
wss.on('connection', (socket) => {
  socket.on('message', (data) => {
    if (String(data).includes('"pong"')) counts.pongs += 1;
  });
  if (pingEvery > 0) {
    const timer = setInterval(() => socket.send('{"type":"ping"}'), pingEvery);
    socket.on('close', () => clearInterval(timer));
  }
});

const report = () => {
  const line = Object.entries(counts).map(([k, v]) => `${k}=${v}`).join(' ');
  console.log(`graphql_ws_server: ${line}`);
};
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    report();
    process.exit(0);
  });
}
wss.on('listening', () => console.log(`graphql_ws_server: listening on ${wss.address().port}`));
