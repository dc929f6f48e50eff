// shipml-client against live `shipml serve` processes (node --test).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";

import { Client, ConnectionError, ShipmlError, TimeoutError } from "../src/index.js";
import { cleanup, freePort, serve, train } from "./server.js";

const SEED = { sepal_length: 6.7, sepal_width: 3.0, petal_length: 5.2, petal_width: 2.3 };
const servers = [];
after(() => { servers.forEach((s) => s.stop()); cleanup(); });

describe("iris and sentiment", () => {
  let iris, sentiment;
  before(async () => {
    train("examples/iris");
    train("examples/sentiment");
    iris = await serve("iris@latest");
    sentiment = await serve("sentiment@latest");
    servers.push(iris, sentiment);
  });

  test("predict one record and a list", async () => {
    const client = new Client(iris.url);
    assert.equal((await client.predict(SEED)).label, "virginica");
    const three = await client.predict([SEED, SEED, SEED]);
    assert.equal(three.length, 3);
    assert.equal((await client.predict({ inputs: [[6.7, 3.0, 5.2, 2.3]] }))[0].label, "virginica");
  });

  test("sentiment scores", async () => {
    const client = new Client(sentiment.url);
    const positive = await client.predict({ text: "I love this" });
    assert.ok(positive.score > 0.5);
    assert.equal(positive.label, "positive");
    assert.ok((await client.predict({ text: "This was terrible and a waste of money" })).score < 0.5);
  });

  test("info and ready", async () => {
    const client = new Client(iris.url);
    const info = await client.info();
    assert.equal(info.name, "iris");
    assert.match(info.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(await client.ready(), true);
  });

  test("a bad record is a typed 422 with the request id", async () => {
    const response = await fetch(`${iris.url}/predict`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
    });
    const headerId = response.headers.get("x-request-id");
    assert.ok(headerId);
    await assert.rejects(new Client(iris.url).predict({ sepal_length: 1 }), (err) => {
      assert.ok(err instanceof ShipmlError);
      assert.equal(err.status, 422);
      assert.equal(err.code, "invalid_input");
      assert.match(err.message, /sepal_width/);
      assert.match(err.requestId, /^[0-9a-f]{16}$/);
      return true;
    });
  });
});

describe("API keys", () => {
  let server;
  before(async () => {
    train("examples/iris");
    server = await serve("iris@latest", { extraEnv: { SHIPML_API_KEYS: "right-key" } });
    servers.push(server);
  });

  test("the right key works, a wrong one is a typed 401", async () => {
    assert.equal((await new Client(server.url, { apiKey: "right-key" }).predict(SEED)).label, "virginica");
    await assert.rejects(new Client(server.url, { apiKey: "wrong" }).info(), (err) => {
      assert.ok(err instanceof ShipmlError);
      assert.equal(err.status, 401);
      assert.equal(err.code, "unauthorized");
      return true;
    });
    assert.equal(await new Client(server.url).ready(), true);  // probes stay open
  });
});

describe("failures", () => {
  test("retries a service that is still loading (503)", async () => {
    train("tests/fixtures/echo", { ECHO_SETUP_DELAY: "3" });
    const slow = await serve("echo@latest", { wait: false });
    servers.push(slow);
    const client = new Client(slow.url, { retries: 15, retryDelayMs: 300 });
    const started = Date.now();
    assert.deepEqual(await client.predict({ text: "hi" }), { length: 2, text: "hi" });
    assert.ok(Date.now() - started > 1000, "it waited for the model");
  });

  test("times out on a socket that never answers, without retrying", async () => {
    const silent = createServer(() => { /* accept and say nothing */ });
    await new Promise((r) => silent.listen(0, "127.0.0.1", r));
    try {
      const client = new Client(`http://127.0.0.1:${silent.address().port}`, { timeoutMs: 300, retries: 3 });
      const started = Date.now();
      await assert.rejects(client.predict({ text: "x" }), TimeoutError);
      assert.ok(Date.now() - started < 1500);
      assert.equal(await client.ready(), false);
    } finally {
      silent.close();
    }
  });

  test("connection refused is a ConnectionError after retries", async () => {
    const client = new Client(`http://127.0.0.1:${await freePort()}`, { retries: 2, retryDelayMs: 20 });
    await assert.rejects(client.info(), (err) => {
      assert.ok(err instanceof ConnectionError);
      assert.equal(err.status, 0);
      assert.equal(err.code, "connection_failed");
      return true;
    });
    assert.equal(await client.ready(), false);
  });
});
