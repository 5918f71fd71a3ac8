// Every timeout, deadline and retry count of the agent, each with what it bounds and why: S3, IMDS, the task's
// credentials relay, the task's launch and restore, and the wait for a reclaim.
//
// The first rule (spotsnap never makes a task fail that would have succeeded without it) needs every wait on
// the network to end: an S3 endpoint that accepts connections and never answers, or a route that drops them,
// must cost bounded time and then an error the agent can act on (start the task from scratch, give up a
// background checkpoint and continue the task), never a hang. Code takes these values as defaults of a
// parameter, so tests pass shorter ones; there is deliberately no environment variable for any of them.

/** How the agent's S3 transports (the SDK's HTTP handler and restores' ranged GETs) bound one request. */
export interface S3Limits {
  /** Longest wait for a TCP connection to be established. */
  connectTimeoutMs: number;
  /** Longest time a connection may carry no byte in either direction before it is dropped. */
  socketIdleTimeoutMs: number;
  /** Tries of one S3 operation, the first included (the SDK's `maxAttempts`). */
  maxAttempts: number;
}

/**
 * Connect timeout for S3: 3 s. A TCP handshake to a regional S3 endpoint takes milliseconds; Linux resends a
 * lost SYN after 1 s, so 3 s allows one resent SYN and its answer. Without a bound a black-holed route costs
 * the kernel's whole SYN retry schedule (about 2 min with the default `tcp_syn_retries` of 6) per attempt.
 * The SDK retries a connect timeout like any transient network error, on a fresh connection.
 */
export const S3_CONNECT_TIMEOUT_MS = 3_000;

/**
 * Idle timeout of an S3 connection: 30 s without a byte sent or received. S3 starts answering a GET within
 * tens of milliseconds and a pack PUT (8 MiB, no multipart) right after its last byte arrives; 30 s of
 * silence is a stalled connection or a server that accepted and will never answer. It is an idle bound, not a
 * bound on a whole request: a pack upload or ranged read on a slow link takes as long as its bytes take while
 * they keep flowing (the SDK's total `requestTimeout` is left unset for that reason). The SDK then retries.
 */
export const S3_SOCKET_IDLE_TIMEOUT_MS = 30_000;

/**
 * Tries of one S3 operation: 5 (the SDK's default is 3). The SDK's standard retry mode waits an exponential,
 * jittered backoff between tries, so 5 tries ride out a few seconds of throttling (503 SlowDown) during a
 * checkpoint's burst of pack writes. Worst case on a silent endpoint: 5 x 30 s idle plus the backoffs, about
 * 2.5 min for one operation, which is why the start-up lookup has a budget of its own below.
 */
export const S3_MAX_ATTEMPTS = 5;

/** The limits every S3 client of the agent uses. */
export const S3_LIMITS: Readonly<S3Limits> = Object.freeze({
  connectTimeoutMs: S3_CONNECT_TIMEOUT_MS,
  socketIdleTimeoutMs: S3_SOCKET_IDLE_TIMEOUT_MS,
  maxAttempts: S3_MAX_ATTEMPTS,
});

/**
 * Budget of the start-up snapshot lookup (listing the job's committed snapshots before the task is launched):
 * 60 s in all, retries included. The listing normally answers in well under a second; this runs before the
 * task starts, so it is time the task loses. 60 s lets one silent connection be dropped (30 s idle) and a
 * retry answer; past it the agent starts the task from scratch, as it does when the lookup fails.
 */
export const STARTUP_SNAPSHOT_LOOKUP_BUDGET_MS = 60_000;

/**
 * Budget of what the agent writes to S3 when an attempt ends (the task's end marker, the attempt report, and after
 * a success the deletion of the job's packs), and of the report written after a final checkpoint: 30 s. All of it
 * is bookkeeping: the task's exit code (or the checkpoint's 177) is passed on once it is done or the time is up.
 */
export const ATTEMPT_END_BUDGET_MS = 30_000;

/**
 * Timeout of one instance metadata request (the token PUT or a GET): 2 s. The service is link-local and
 * answers in milliseconds; the AWS SDK's own metadata client waits 1 s. The notice is polled every second by
 * default, so a hung request delays seeing a 2-minute notice by 2 s at most.
 */
export const IMDS_REQUEST_TIMEOUT_MS = 2_000;

/**
 * How long IMDSv1 (no token) is used after the token PUT was refused, timed out or could not connect: 5 min,
 * then tokens are tried again. A hop limit of 1 drops the PUT's answer to a container behind a bridge while
 * plain GETs still work; the AWS SDK falls back to v1 in the same cases. A 401 answer to a tokenless GET ends
 * the window at once (tokens are required there), so a passing failure of the PUT cannot hide a notice.
 */
export const IMDS_V1_FALLBACK_MS = 5 * 60_000;

/** Lifetime asked for each IMDSv2 token: 6 h, the most the service grants; tokens are refreshed before expiry. */
export const IMDS_TOKEN_TTL_SECONDS = 21_600;

// The task: launched, restored, and frozen after its final checkpoint.

/** How long `unshare` may take to create the task's namespace on a loaded machine before it counts as failed. */
export const LAUNCH_TIMEOUT_MS = 30_000;

/**
 * How long a restored tree must run before the restore counts as done. A tree that dies by a signal or without
 * a status within it crashed because of the restore (its memory does not fit this container): the next older
 * snapshot or a fresh start is tried instead. Its output is held back meanwhile (up to 1 MiB), so nothing is printed twice.
 */
export const RESTORE_CONFIRM_MS = 2000;

/** How long past a notice's deadline a still-running instance counts as staying. */
export const RECLAIM_GRACE_MS = 60_000;

// The credentials relay (agent/task/credentials-relay.ts).

/** Credentials relay: one request to the agent's own credentials endpoint. SDKs ask the relay with 1 s (JavaScript) or 2 s (botocore). */
export const UPSTREAM_TIMEOUT_MS = 2000;
/** Requests to the upstream endpoint per task request, the first included. */
export const UPSTREAM_ATTEMPTS = 2;
/** Pause between two upstream requests. */
export const UPSTREAM_RETRY_DELAY_MS = 100;
/**
 * Credentials are fetched again once they expire within this margin, so that no SDK gets credentials it
 * already considers stale (botocore refreshes 15 minutes before expiry, the JavaScript SDK 5 minutes).
 */
export const REFRESH_MARGIN_MS = 15 * 60_000;
/** When a refresh fails, cached credentials are still served while they are valid for at least this long. */
export const STALE_SERVE_MIN_VALIDITY_MS = 60_000;
/** The credentials relay's own server: the whole request, and its headers, must arrive within these. */
export const RELAY_REQUEST_TIMEOUT_MS = 10_000;
export const RELAY_HEADERS_TIMEOUT_MS = 5_000;
