// Type declarations for shipml-client.

export interface ClientOptions {
  /** Sent as `Authorization: Bearer <apiKey>` when the service has API keys on. */
  apiKey?: string;
  /** Per-attempt timeout in milliseconds (default 10000). */
  timeoutMs?: number;
  /** Extra attempts on 503 or a failed connection (default 2). */
  retries?: number;
  /** First backoff delay in milliseconds, doubled each attempt, capped at 5 s (default 200). */
  retryDelayMs?: number;
}

/** A record: feature name to value, e.g. `{ text: "I love this" }`. */
export type Record = { [field: string]: unknown };

export class ShipmlError extends Error {
  /** HTTP status, or 0 when no answer came. */
  readonly status: number;
  /** The service's error code, e.g. "invalid_input", "unauthorized", "timeout". */
  readonly code: string;
  /** The X-Request-ID of the failed request, to find it in the service log. */
  readonly requestId: string | null;
  readonly body?: unknown;
  constructor(status: number, code: string, message: string, requestId: string | null, body?: unknown);
}

export class ConnectionError extends ShipmlError {}
export class TimeoutError extends ShipmlError {}

export class Client {
  constructor(url: string, options?: ClientOptions);
  readonly url: string;
  /** One record gets one result; a list of records gets a list of results. */
  predict<R = unknown>(input: Record): Promise<R>;
  predict<R = unknown>(input: Record[] | { inputs: unknown[] }): Promise<R[]>;
  /** The model card. */
  info(): Promise<{ name: string; version: number; ref: string; digest: string; [key: string]: unknown }>;
  /** True once the model is loaded and warmed; never throws for a loading or absent service. */
  ready(): Promise<boolean>;
}
