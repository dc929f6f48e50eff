// shipml-client: call a shipml model service from Node.js (>= 18) or a browser.
// No dependencies: the global fetch, AbortSignal and setTimeout are all it needs.

/** An error answered by the service, or a failure to reach it (status 0). */
export class ShipmlError extends Error {
  /**
   * @param {number} status HTTP status, or 0 when no answer came
   * @param {string} code the service's error code, e.g. "invalid_input"
   * @param {string} message what went wrong, in words
   * @param {string | null} requestId the X-Request-ID to quote when asking about it
   * @param {unknown} [body] the parsed error body, when there was one
   */
  constructor(status, code, message, requestId, body) {
    super(`${status} ${code}: ${message}` + (requestId ? ` (request ${requestId})` : ""));
    this.name = "ShipmlError";
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.body = body;
  }
}

/** No connection could be made (refused, reset, DNS). Retried. */
export class ConnectionError extends ShipmlError {
  constructor(message, cause) {
    super(0, "connection_failed", message, null);
    this.name = "ConnectionError";
    this.cause = cause;
  }
}

/** No answer within timeoutMs. Not retried: the model may already have run. */
export class TimeoutError extends ShipmlError {
  constructor(timeoutMs) {
    super(0, "timeout", `no answer within ${timeoutMs} ms`, null);
    this.name = "TimeoutError";
  }
}

const MAX_DELAY_MS = 5000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function errorFrom(response) {
  const requestId = response.headers.get("x-request-id");
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    const error = body.error || {};
    return new ShipmlError(response.status, error.code || "http_error", error.message || text,
      error.request_id || requestId, body);
  } catch {
    return new ShipmlError(response.status, "http_error", text.slice(0, 200), requestId);
  }
}

export class Client {
  /**
   * @param {string} url the service, e.g. "http://127.0.0.1:8000"
   * @param {{apiKey?: string, timeoutMs?: number, retries?: number, retryDelayMs?: number}} [options]
   */
  constructor(url, { apiKey, timeoutMs = 10000, retries = 2, retryDelayMs = 200 } = {}) {
    this.url = url.replace(/\/+$/, "");
    this.apiKey = apiKey;
    this.timeoutMs = timeoutMs;
    this.retries = retries;
    this.retryDelayMs = retryDelayMs;
  }

  /** One attempt: a Response, or a thrown ConnectionError / TimeoutError. */
  async #attempt(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (this.apiKey) headers.Authorization = `Bearer ${this.apiKey}`;
    try {
      return await fetch(this.url + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      if (err && (err.name === "TimeoutError" || err.name === "AbortError")) {
        throw new TimeoutError(this.timeoutMs);
      }
      throw new ConnectionError(`cannot reach ${this.url}: ${err && err.cause ? err.cause.code || err.cause.message : err}`, err);
    }
  }

  /** Retries, with exponential backoff, only on 503 and failed connections. */
  async #request(method, path, body) {
    for (let attempt = 0; ; attempt += 1) {
      const last = attempt >= this.retries;
      let response;
      try {
        response = await this.#attempt(method, path, body);
      } catch (err) {
        if (err instanceof ConnectionError && !last) {
          await sleep(Math.min(this.retryDelayMs * 2 ** attempt, MAX_DELAY_MS));
          continue;
        }
        throw err;
      }
      if (response.status === 503 && !last) {
        const after = Number(response.headers.get("retry-after"));
        await response.arrayBuffer();  // free the connection
        await sleep(Math.min(after > 0 ? after * 1000 : this.retryDelayMs * 2 ** attempt, MAX_DELAY_MS));
        continue;
      }
      if (!response.ok) throw await errorFrom(response);
      return response.json();
    }
  }

  /**
   * Predict for one record (one result) or a list of records (a list of results).
   * @param {object | object[]} input
   */
  predict(input) {
    return this.#request("POST", "/predict", input);
  }

  /** The model card: name, version, digest, input schema, metrics. */
  info() {
    return this.#request("GET", "/info");
  }

  /** True once the model is loaded and warmed; false while loading or unreachable. */
  async ready() {
    try {
      const response = await this.#attempt("GET", "/health/ready");
      await response.arrayBuffer();
      return response.status === 200;
    } catch (err) {
      if (err instanceof ShipmlError) return false;
      throw err;
    }
  }
}
