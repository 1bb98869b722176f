// The one way the UI talks to the server: the public REST API, same origin, session cookie.
// Writes carry the session's CSRF token; errors come back as ApiError with the envelope's
// type, message and param (the field a validation error names).

let csrf = null;

export class ApiError extends Error {
  constructor(status, error) {
    super((error && error.message) || `HTTP ${status}`);
    this.status = status;
    this.type = (error && error.type) || "error";
    this.param = (error && error.param) || null;
    this.requestId = (error && error.request_id) || null;
  }
}

export async function session() {
  const r = await fetch("/auth/session", { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (r.status === 401) return null;
  if (!r.ok) throw new ApiError(r.status, null);
  const info = await r.json();
  csrf = info.csrf_token;
  return info;
}

export async function signOut() {
  await fetch("/auth/logout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf || "" } });
  csrf = null;
}

function url(path, query) {
  const u = new URL(path.startsWith("/") ? path : `/v1/${path}`, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) v.forEach((item) => u.searchParams.append(k, item));
    else u.searchParams.set(k, v);
  }
  return u.pathname + u.search;
}

export async function api(method, path, body, { query } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrf || "";
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const r = await fetch(url(path, query), { method, headers, body: payload, credentials: "same-origin" });
  if (r.status === 401) {
    location.assign("/login");
    throw new ApiError(401, { type: "unauthorized", message: "Signed out" });
  }
  if (r.status === 204 || r.status === 202 && r.headers.get("content-length") === "0") return null;
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) throw new ApiError(r.status, data && data.error);
  return data;
}

export const get = (path, query) => api("GET", path, undefined, { query });
export const post = (path, body) => api("POST", path, body === undefined ? {} : body);
export const patch = (path, body) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);

// Every item of a paged list (limit/offset), up to `max`.
export async function all(path, query = {}, max = 2000) {
  const out = [];
  for (let offset = 0; offset < max; offset += 200) {
    const page = await get(path, { ...query, limit: 200, offset });
    out.push(...page.data);
    if (out.length >= page.total || page.data.length === 0) break;
  }
  return out;
}
