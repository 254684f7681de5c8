// The dashboard's auth layer as seed 000 describes it: the access token lives in
// memory only; the refresh token is the backend's httpOnly cookie; axios sends
// `withCredentials: true`; a 401 triggers one silent refresh, shared by every
// request that failed at the same time, and the request is retried once.
// Session restore on page load is a call to /refresh before "rendering".
import axios from 'axios';

const api = new URLSearchParams(location.search).get('api');
let accessToken = null; // memory only: gone on reload, by design

const client = axios.create({ baseURL: `${api}/api/v1/auth`, withCredentials: true });

client.interceptors.request.use((config) => {
  if (accessToken && !config.skipAuthRefresh) {
    config.headers.Authorization = `Bearer ${accessToken}`;
    config.sentToken = accessToken;
  }
  return config;
});

// The one refresh in flight; every 401 that arrives while it runs waits for it.
let refreshing = null;
function refreshOnce() {
  refreshing ??= client
    .post('/refresh', null, { skipAuthRefresh: true })
    .then((res) => { accessToken = res.data.access_token; return accessToken; })
    .finally(() => { refreshing = null; });
  return refreshing;
}

client.interceptors.response.use(undefined, async (error) => {
  const config = error.config;
  if (error.response?.status !== 401 || !config || config.skipAuthRefresh || config.retried) throw error;
  config.retried = true;
  // A 401 for a token that has already been replaced (its answer came back
  // after the refresh finished) needs no second refresh: just retry.
  if (!(config.sentToken && config.sentToken !== accessToken)) await refreshOnce();
  return client(config);
});

async function login(email, password) {
  const res = await client.post('/login', { email, password }, { skipAuthRefresh: true });
  accessToken = res.data.access_token;
  return res.data;
}

async function logout() {
  try {
    await client.post('/logout', null, { skipAuthRefresh: true });
  } finally {
    accessToken = null;
  }
}

async function restoreSession() {
  try {
    await refreshOnce();
    return (await client.get('/me')).data;
  } catch {
    accessToken = null;
    return null;
  }
}

// What the test drives and reads. Errors are returned as data so that
// page.evaluate gets the status and the server's error body.
const asResult = (p) => p.then(
  (data) => ({ ok: true, data }),
  (e) => ({ ok: false, status: e.response?.status ?? null, data: e.response?.data ?? String(e) }),
);
window.dashboard = {
  login: (email, password) => asResult(login(email, password)),
  logout: () => asResult(logout()),
  me: () => asResult(client.get('/me').then((r) => r.data)),
  hasAuthToken: () => accessToken !== null,
};

const status = document.getElementById('status');
window.restored = restoreSession().then((me) => {
  status.textContent = me ? `signed in as ${me.user.email}` : 'signed out';
  return me;
});
