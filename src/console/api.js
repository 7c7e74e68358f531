/**
 * The console's HTTP client for the gateway's JSON APIs (openapi/control.yaml,
 * openapi/payments.yaml, openapi/ai.yaml). The admin token lives only in this object, in
 * memory: it is sent as `Authorization: Bearer <token>` and never written to the URL,
 * cookies or web storage; signing out or reloading the page drops it.
 */

/** A non-2xx answer: `status`, and the gateway's `{"detail":{"msg","code"}}` when it sent one. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0: no answer)
   * @param {string} code the error code, e.g. `UNAUTHORIZED`; '' when the body had none
   * @param {string} msg the gateway's message
   */
  constructor(status, code, msg) {
    super(msg);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** Reads a failed response's error body into an ApiError. */
export async function errorOf(res) {
  let code = '';
  let msg = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (body && body.detail) {
      code = body.detail.code || '';
      msg = body.detail.msg || msg;
    }
  } catch { /* not JSON */ }
  return new ApiError(res.status, code, msg);
}

export class Api {
  #token;

  /** @param {string} token the admin token; '' when the gateway asks for none (loopback bind without one) */
  constructor(token) {
    this.#token = token;
  }

  /** Whether requests carry a token. */
  get hasToken() {
    return this.#token !== '';
  }

  /** Headers for a request to the gateway (the token when there is one, plus `extra`). */
  headers(extra = {}) {
    return this.#token ? { ...extra, Authorization: `Bearer ${this.#token}` } : { ...extra };
  }

  /**
   * One JSON request. @returns the parsed body, or undefined for 204.
   * @throws ApiError for any non-2xx answer or when the gateway cannot be reached (status 0)
   */
  async request(method, path, body) {
    let res;
    try {
      res = await fetch(path, {
        method,
        headers: this.headers(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch (err) {
      throw new ApiError(0, '', `the gateway did not answer (${err.message})`);
    }
    if (!res.ok) throw await errorOf(res);
    return res.status === 204 ? undefined : res.json();
  }

  get(path) {
    return this.request('GET', path);
  }

  post(path, body) {
    return this.request('POST', path, body);
  }

  delete(path) {
    return this.request('DELETE', path);
  }
}

/**
 * Whether the admin APIs answer without a token (a loopback bind with no `http.adminToken`):
 * 'open', 'token' (a token is required) or 'disabled' (a public bind without a token: 403).
 */
export async function probeAccess() {
  const res = await fetch('/api/streams?limit=1', { cache: 'no-store', credentials: 'omit' });
  if (res.ok) return 'open';
  if (res.status === 401) return 'token';
  if (res.status === 403) return 'disabled';
  throw await errorOf(res);
}
