#!/usr/bin/env node
// textalyze: print the sentiment of text, or serve a page that shows it as you type.
//
//   node textalyze.js "I love this" "What a waste"    # one line per text
//   echo "I love this" | node textalyze.js            # one line per input line
//   node textalyze.js --serve [--port 3000]           # a small web page
//
// SHIPML_URL names the model service (default http://127.0.0.1:8000, what `make demo`
// serves); SHIPML_API_KEY is sent when set.
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { createInterface } from "node:readline";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { Client, ShipmlError } from "shipml-client";

const client = new Client(process.env.SHIPML_URL || "http://127.0.0.1:8000", {
  apiKey: process.env.SHIPML_API_KEY,
});

function line(text, result) {
  return `${result.score.toFixed(3)} ${result.label.padEnd(8)} ${text}`;
}

async function scoreTexts(texts) {
  // One request for all of them: the service answers a list for a list.
  const results = await client.predict(texts.map((text) => ({ text })));
  texts.forEach((text, i) => console.log(line(text, results[i])));
}

async function readLines() {
  const lines = [];
  for await (const text of createInterface({ input: process.stdin })) if (text.trim()) lines.push(text);
  return lines;
}

function serve(port) {
  const folder = join(dirname(fileURLToPath(import.meta.url)), "public");
  const files = { "/": ["index.html", "text/html"], "/app.js": ["app.js", "text/javascript"] };
  const security = { "Content-Security-Policy": "default-src 'self'", "X-Content-Type-Options": "nosniff" };
  const server = createServer(async (request, response) => {
    const send = (status, type, body) => {
      response.writeHead(status, { "Content-Type": `${type}; charset=utf-8`, ...security });
      response.end(body);
    };
    if (request.method === "GET" && files[request.url]) {
      const [name, type] = files[request.url];
      return send(200, type, await readFile(join(folder, name)));
    }
    if (request.method === "POST" && request.url === "/score") {
      let body = "";
      for await (const chunk of request) body += chunk;
      try {
        const { text } = JSON.parse(body || "{}");
        return send(200, "application/json", JSON.stringify(await client.predict({ text })));
      } catch (err) {
        const status = err instanceof ShipmlError && err.status ? err.status : 502;
        return send(status, "application/json", JSON.stringify({ error: err.message }));
      }
    }
    send(404, "text/plain", "not found");
  });
  server.listen(port, "127.0.0.1", () => console.log(`textalyze on http://127.0.0.1:${port}/`));
}

const args = process.argv.slice(2);
try {
  if (args[0] === "--serve") {
    const at = args.indexOf("--port");
    serve(at > 0 ? Number(args[at + 1]) : 3000);
  } else {
    const texts = args.length ? args : await readLines();
    if (texts.length) await scoreTexts(texts);
  }
} catch (err) {
  console.error(`textalyze: ${err.message}`);
  process.exit(1);
}
