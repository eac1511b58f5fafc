// The console's only way out: the public REST API of this origin (openapi.yaml), with the
// platform's bearer token in the Authorization header. The token lives in sessionStorage only;
// it is never put into a URL, a cookie or localStorage.

const TOKEN_KEY = "dinero-console.token";

export function storedToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function storeToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage unavailable: nothing was kept */
  }
}

/** The token's claims (not verified here: the API verifies every request). */
export function claimsOf(token) {
  const part = (token || "").split(".")[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof claims !== "object" || claims === null) return null;
    if (claims.company_id === undefined || claims.company_id === null) return null;
    return { ...claims, company_id: String(claims.company_id) };
  } catch {
    return null;
  }
}

export class ApiError extends Error {
  constructor(status, problem) {
    const body = problem && typeof problem === "object" ? problem : {};
    super(body.detail || `HTTP ${status}`);
    this.status = status;
    this.problem = body;
    this.code = body.code || (status ? `http_${status}` : "network");
  }
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

async function send(method, url, { token, body, accept = "application/json" } = {}) {
  const headers = { Accept: accept };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      redirect: "error",
    });
  } catch {
    throw new ApiError(0, { code: "network", detail: "" });
  }
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  return response;
}

/** Calls for one company, as the token's holder. `onUnauthorized` signs out on a 401. */
export function createApi(token, company, onUnauthorized) {
  const base = `/v1/companies/${encodeURIComponent(company)}`;

  function url(path, query) {
    const target = new URL(base + path, window.location.origin);
    for (const [key, value] of Object.entries(query || {})) {
      for (const one of [].concat(value)) {
        if (one !== null && one !== undefined && one !== "") target.searchParams.append(key, one);
      }
    }
    return target;
  }

  async function call(method, path, { query, body, accept, raw = false } = {}) {
    let response;
    try {
      response = await send(method, url(path, query), { token, body, accept });
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) onUnauthorized(error);
      throw error;
    }
    if (raw) return response;
    if (response.status === 204) return null;
    return response.json();
  }

  return {
    company,
    get: (path, query) => call("GET", path, { query }),
    put: (path, body) => call("PUT", path, { body }),
    post: (path, body) => call("POST", path, { body }),
    patch: (path, body) => call("PATCH", path, { body }),
    del: (path) => call("DELETE", path),
    fetchRaw: (path, query, accept) => call("GET", path, { query, accept, raw: true }),
  };
}

/** Development only: the service mints a demo admin token (refused in production). */
export async function mintDevToken() {
  const response = await send("POST", new URL("/v1/dev/token", window.location.origin), {
    body: { company_id: "demo", role: "admin" },
  });
  const answer = await response.json();
  return answer.token;
}
