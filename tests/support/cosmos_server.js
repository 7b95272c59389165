#!/usr/bin/env node
// Starts @vercel/cosmosdb-server for the test suite and the store benchmark.
//
// Why a script rather than `node_modules/.bin/cosmosdb-server`:
//  - it listens on a free loopback port (port 0) and prints the chosen port as one JSON
//    line on stdout, so parallel runs never collide and the fixture needs no polling;
//  - it enables HTTP keep-alive (the CLI closes every connection, which makes each
//    request pay a TLS handshake and hides what a real client sees);
//  - it fixes one gap of the server that product code must not work around: a point
//    read of a missing item answers 500 (a TypeError inside the handler) where Cosmos DB
//    answers 404 NotFound;
//  - with COSMOS_ADVERTISED_PORT set, the account advertises that port as its regional
//    endpoint. The SDK sends every request after the first to the endpoint the account
//    advertises, so a test that puts a proxy in front of the server (to cut the network
//    for an outage) must have the account advertise the proxy, as a real account's
//    regional host name resolves through the same network as its global one.
// It exits when its stdin closes, so a crashed test run never leaves it behind.
"use strict";

const path = require("path");

const root = path.join(__dirname, "..", "..", "node_modules", "@vercel", "cosmosdb-server", "lib");
const readDocument = require(path.join(root, "handler", "read-document.js"));
const { parsePartitionKey } = require(path.join(root, "utils", "get-partition-from-header.js"));

// The account is built with `new account.default(host, port)` when the server starts
// listening; a subclass swaps in the advertised port.
const accountModule = require(path.join(root, "account", "index.js"));
const advertisedPort = Number(process.env.COSMOS_ADVERTISED_PORT || 0);
if (advertisedPort) {
  const Account = accountModule.default;
  accountModule.default = class AdvertisedAccount extends Account {
    constructor(host) {
      super(host, advertisedPort);
    }
  };
}

// routes.js captures each handler's `default` export when it is first loaded, so the
// wrapper has to be installed before `require(root)` pulls the routes in.
const originalRead = readDocument.default;
readDocument.default = (account, req, res, params) => {
  const collection = account.database(params.dbId).collection(params.collId);
  if (collection.read()) {
    const header = req.headers["x-ms-documentdb-partitionkey"];
    const rawKey = Array.isArray(header) ? header[0] : header;
    let partitionKey;
    try {
      partitionKey = parsePartitionKey(rawKey, params.docId);
    } catch (err) {
      partitionKey = params.docId;
    }
    if (!collection.document(params.docId, partitionKey).read()) {
      res.statusCode = 404;
      return { code: "NotFound", message: "Entity with the specified id does not exist in the system." };
    }
  }
  return originalRead(account, req, res, params);
};

const { createHttpsServer } = require(root);

const server = createHttpsServer({ keepAlive: true });
server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address();
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});

const stop = () => {
  server.close(() => process.exit(0));
  // Idle keep-alive sockets would otherwise hold close() open until they time out.
  server.closeAllConnections();
};
process.stdin.on("end", stop);
process.stdin.on("close", stop);
process.stdin.resume();
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
