// Talking to the public API: the OAuth2 password login, tokens kept in sessionStorage (gone
// with the tab), the access token refreshed a minute before it expires, one retry after a 401.

const KEY = 'gridgov.dashboard.tokens';
// The API root: the page lives at <root>/dashboard/, so a reverse-proxy prefix keeps working.
export const ROOT = new URL('../', new URL('.', location.href)).href.replace(/\/$/, '');

let timer = null;
let refreshing = null;
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `请求失败（${status}）`);
    this.status = status;
    this.problem = problem;
  }
}

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || 'null');
  } catch {
    return null;
  }
}

function save(body) {
  const tokens = {
    access: body.access_token,
    refresh: body.refresh_token,
    expiresAt: Date.now() + body.expires_in * 1000,
  };
  sessionStorage.setItem(KEY, JSON.stringify(tokens));
  schedule(tokens);
  return tokens;
}

function schedule(tokens) {
  clearTimeout(timer);
  if (!tokens) return;
  const wait = Math.max(5_000, tokens.expiresAt - Date.now() - 60_000);
  timer = setTimeout(() => refresh().catch(() => expire()), wait);
}

function expire() {
  clearTimeout(timer);
  sessionStorage.removeItem(KEY);
  listeners.forEach((fn) => fn());
}

/** Called when the session ends (logout, refresh refused). */
export function onLogout(fn) {
  listeners.add(fn);
}

export function accessToken() {
  const tokens = load();
  return tokens ? tokens.access : null;
}

export function loggedIn() {
  const tokens = load();
  if (tokens) schedule(tokens);
  return Boolean(tokens);
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

export async function login(username, password) {
  const response = await fetch(`${ROOT}/api/v1/auth/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password, grant_type: 'password' }),
  });
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  return save(await response.json());
}

export function refresh() {
  // One refresh at a time: refresh tokens rotate, a second use of the old one would fail.
  if (refreshing) return refreshing;
  const tokens = load();
  if (!tokens) return Promise.reject(new ApiError(401, null));
  refreshing = fetch(`${ROOT}/api/v1/auth/refresh`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ refresh_token: tokens.refresh }),
  })
    .then(async (response) => {
      if (!response.ok) throw new ApiError(response.status, await problemOf(response));
      return save(await response.json());
    })
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

export function logout() {
  expire();
}

function url(path, params) {
  const u = new URL(path.startsWith('http') ? path : ROOT + path);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, v);
  }
  return u.href;
}

/** GET (or other) a path of the API with the user's token; retried once after a refresh. */
export async function request(path, params, { raw = false, retried = false } = {}) {
  const response = await fetch(url(path, params), {
    headers: { Authorization: `Bearer ${accessToken()}`, Accept: 'application/json' },
  });
  if (response.status === 401 && !retried) {
    try {
      await refresh();
    } catch {
      expire();
      throw new ApiError(401, null);
    }
    return request(path, params, { raw, retried: true });
  }
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  return raw ? response : response.json();
}

/** Whether the map may send the token with a URL (only to this server). */
export function ours(u) {
  return u.startsWith(ROOT + '/');
}
