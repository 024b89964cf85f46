// api.js — every call the console makes goes through the documented HTTP API, with the
// token the user pasted (kept in sessionStorage for this tab only; never in a URL).
const KEY = "lakehouse.token";

export const token = () => sessionStorage.getItem(KEY);
export const setToken = (t) => t ? sessionStorage.setItem(KEY, t) : sessionStorage.removeItem(KEY);

// An answer of 4xx/5xx: the API's own error body ({error: {code, message, detail, hint}}).
export class ApiError extends Error {
  constructor(status, body, text) {
    const e = (body && body.error) || {};
    super(e.message || text || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || `http_${status}`;
    this.detail = e.detail || null;
    this.hint = e.hint || null;
  }
}

let onUnauthorized = () => {};
export const setUnauthorizedHandler = (f) => { onUnauthorized = f; };

// api("GET", "/catalog/datasets") → parsed JSON. body (an object) is sent as JSON.
// opts.raw: return the Response itself (a download); opts.signal: an AbortSignal.
export async function api(method, path, body, opts = {}) {
  const headers = { Authorization: `Bearer ${token() || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let r;
  try {
    r = await fetch(path, {
      method, headers, signal: opts.signal, cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, { error: { code: "unreachable", message: "the server cannot be reached",
      detail: String(e.message || e), hint: "check that the server is running" } });
  }
  if (r.ok && opts.raw) return r;
  const text = await r.text();
  let j = null;
  try { j = text ? JSON.parse(text) : null; } catch { j = null; }
  if (!r.ok) {
    const err = new ApiError(r.status, j, text);
    if (r.status === 401) onUnauthorized(err);
    throw err;
  }
  return j;
}

export const enc = encodeURIComponent;
