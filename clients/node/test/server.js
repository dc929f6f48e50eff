// Start real `shipml serve` processes for the tests: train into a temporary store once,
// serve on a free port, wait until ready, stop the whole process group afterwards.
import { spawn, execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, "../../..");
export const SHIPML = process.env.SHIPML_BIN || join(REPO, ".venv/bin/shipml");
const scratch = mkdtempSync(join(tmpdir(), "shipml-node-"));
const env = { ...process.env, SHIPML_STORE: join(scratch, "store"), SHIPML_CACHE: join(scratch, "cache") };
delete env.SHIPML_API_KEYS;
const trained = new Set();
// SHIPML_TEST_SEED_STORE: a store whose models the caller trained from these same examples
// (the Python suite does, once per run); it is copied in and those examples are not
// trained again.
const seed = process.env.SHIPML_TEST_SEED_STORE;
if (seed) cpSync(seed, env.SHIPML_STORE, { recursive: true });

/** Train a project folder (an example or a test fixture) once into the shared store. */
export function train(folder, extraEnv = {}) {
  const key = folder + JSON.stringify(extraEnv);
  if (trained.has(key)) return;
  const name = basename(folder);
  if (seed && Object.keys(extraEnv).length === 0 && existsSync(join(seed, "models", name))) {
    trained.add(key);
    return;
  }
  const copy = join(scratch, `project-${trained.size}`);
  cpSync(join(REPO, folder), copy, { recursive: true });
  execFileSync(SHIPML, ["train"], { cwd: copy, env: { ...env, ...extraEnv }, stdio: "pipe" });
  trained.add(key);
}

export function freePort() {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.on("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

/** Start `shipml serve MODEL`; resolves with {url, stop} (after readiness unless wait is false). */
export async function serve(model, { extraEnv = {}, wait = true } = {}) {
  const port = await freePort();
  const child = spawn(SHIPML, ["serve", model, "--port", String(port)], {
    env: { ...env, ...extraEnv }, detached: true, stdio: "ignore",
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = () => {
    try { process.kill(-child.pid, "SIGTERM"); } catch { /* already gone */ }
  };
  if (wait) {
    const deadline = Date.now() + 60000;
    for (;;) {
      try {
        if ((await fetch(`${url}/health/ready`)).status === 200) break;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) { stop(); throw new Error(`${model} not ready on ${url}`); }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { url, stop };
}

export function cleanup() {
  rmSync(scratch, { recursive: true, force: true });
}
