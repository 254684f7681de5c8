// Scenario 1: the dashboard (CONTRACTS.md §1) through axios in a real browser.
// The page is on http://localhost:PAGES and the API on http://localhost:API:
// two origins of one site, as dashboard.example and api.example are in
// production, so the SameSite=Lax refresh cookie flows with credentialed CORS.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Harness, freePort, sleep } from '../lib/harness.js';

const h = new Harness('dashboard');
const ALICE = { email: 'alice@example.test', password: 'correct horse battery staple', name: 'Alice' };
const ACCESS_TTL_SECS = 2;
let api; let pages; let context; let page;

// A page on the dashboard's host under the cookie's path: were the refresh
// cookie not HttpOnly, document.cookie here would show it (cookies ignore ports).
const PROBE = `<!doctype html><script>
  document.cookie = 'e2e_probe=1; path=/api/v1/auth';
  window.seen = document.cookie;
</script>`;

// All of the jar: context.cookies(url) would filter by the URL's path as well.
const refreshCookie = async () => (await context.cookies()).find((c) => c.name === 'tachigo_refresh');

/** Counts the page's requests matching `method path` from now on. */
function countRequests(method, pathname) {
  const counter = { count: 0 };
  const listener = (req) => {
    if (req.method() === method && new URL(req.url()).pathname === pathname) counter.count += 1;
  };
  page.on('request', listener);
  counter.stop = () => page.off('request', listener);
  return counter;
}

const dashboardUrl = (origin = pages.localhost) => `${origin}/dashboard.html?api=${encodeURIComponent(api.url)}`;

before(async () => {
  pages = await h.startPages({ routes: { '/api/v1/auth/cookie-probe.html': PROBE } });
  api = await h.startServer({
    port: await freePort(),
    users: [ALICE],
    env: {
      TACHIGO__SERVER__TRUSTED_ORIGINS: JSON.stringify([pages.localhost]),
      TACHIGO__OAUTH__FRONTEND_URL: pages.localhost,
      // Real expiry instead of a doctored token: access tokens die after 2 s.
      TACHIGO__TOKENS__ACCESS_TTL: `${ACCESS_TTL_SECS}s`,
    },
  });
  await h.launchBrowser();
  context = await h.newContext();
  page = await context.newPage();
}, { timeout: 90_000 });

after(() => h.stop(), { timeout: 30_000 });

test('login works and sets an HttpOnly SameSite=Lax refresh cookie on /api/v1/auth', { timeout: 60_000 }, h.guard(async () => {
  await page.goto(dashboardUrl());
  assert.equal(await page.evaluate(() => window.restored), null, 'no session before login');

  const wrong = await page.evaluate(([e]) => window.dashboard.login(e, 'not the password'), [ALICE.email]);
  assert.equal(wrong.status, 401, 'a wrong password is a readable 401 (CORS headers on errors too)');
  assert.equal(wrong.data?.error?.code, 'invalid_credentials');

  const res = await page.evaluate(([e, p]) => window.dashboard.login(e, p), [ALICE.email, ALICE.password]);
  assert.ok(res.ok, `login failed: ${JSON.stringify(res)}`);
  assert.equal(res.data.token_type, 'Bearer');
  assert.equal(res.data.user.email, ALICE.email);
  assert.ok(!('refresh_token' in res.data), 'the refresh token is not in the login body');

  const cookie = await refreshCookie();
  assert.ok(cookie, 'the browser stored tachigo_refresh');
  assert.equal(cookie.httpOnly, true, 'HttpOnly');
  assert.equal(cookie.sameSite, 'Lax', 'SameSite=Lax');
  assert.equal(cookie.path, '/api/v1/auth', 'Path=/api/v1/auth');
  assert.equal(cookie.secure, false, 'no Secure with cookies.secure=false');
  assert.equal(cookie.domain, 'localhost', 'host-only (no Domain configured)');
  assert.ok(cookie.expires > Date.now() / 1000 + 13 * 86_400, 'Max-Age is the 14-day refresh idle ttl');

  const me = await page.evaluate(() => window.dashboard.me());
  assert.ok(me.ok, `GET /me failed: ${JSON.stringify(me)}`);
  assert.equal(me.data.user.email, ALICE.email);
}));

test('the refresh cookie is not readable from document.cookie', { timeout: 60_000 }, h.guard(async () => {
  assert.ok(!(await page.evaluate(() => document.cookie)).includes('tachigo_refresh'));
  // The dashboard page's path alone would hide a Path=/api/v1/auth cookie, so
  // look from a page under that path too, where only HttpOnly can hide it.
  const probe = await context.newPage();
  try {
    await probe.goto(`${pages.localhost}/api/v1/auth/cookie-probe.html`);
    const seen = await probe.evaluate(() => window.seen);
    assert.match(seen, /e2e_probe=1/, 'the probe page can read cookies on /api/v1/auth');
    assert.ok(!seen.includes('tachigo_refresh'), `document.cookie showed the refresh cookie: ${seen}`);
  } finally {
    await probe.close();
  }
}));

test('a page reload restores the session through /refresh', { timeout: 60_000 }, h.guard(async () => {
  const refreshes = countRequests('POST', '/api/v1/auth/refresh');
  await page.reload();
  const me = await page.evaluate(() => window.restored);
  refreshes.stop();
  assert.equal(me?.user?.email, ALICE.email, 'the reloaded page is signed in again');
  assert.equal(await page.evaluate(() => window.dashboard.hasAuthToken()), true);
  assert.equal(refreshes.count, 1, 'restore is one /refresh');
  await page.locator('#status', { hasText: `signed in as ${ALICE.email}` }).waitFor();
}));

test('five concurrent requests with an expired access token cause exactly one /refresh', { timeout: 60_000 }, h.guard(async () => {
  const previous = (await refreshCookie()).value;
  // JWT expiry has one-second granularity: wait the TTL plus a margin.
  await sleep((ACCESS_TTL_SECS + 1.5) * 1000);
  const refreshes = countRequests('POST', '/api/v1/auth/refresh');
  const meStatuses = [];
  const onResponse = (r) => {
    if (r.request().method() === 'GET' && new URL(r.url()).pathname === '/api/v1/auth/me') meStatuses.push(r.status());
  };
  page.on('response', onResponse);
  const results = await page.evaluate(() => Promise.all([1, 2, 3, 4, 5].map(() => window.dashboard.me())));
  page.off('response', onResponse);
  refreshes.stop();

  for (const r of results) assert.ok(r.ok, `a request failed after the refresh: ${JSON.stringify(r)}`);
  assert.equal(refreshes.count, 1, 'exactly one /refresh for five 401s');
  assert.deepEqual(meStatuses.filter((s) => s === 401).length, 5, `each of the five first saw 401 (${meStatuses})`);
  assert.deepEqual(meStatuses.filter((s) => s === 200).length, 5, `each of the five retried once with success (${meStatuses})`);
  assert.notEqual((await refreshCookie()).value, previous, 'the refresh rotated the cookie');
}));

test('logout ends the session and a reload no longer restores it', { timeout: 60_000 }, h.guard(async () => {
  const retired = await refreshCookie();
  const out = await page.evaluate(() => window.dashboard.logout());
  assert.ok(out.ok, `logout failed: ${JSON.stringify(out)}`);
  assert.equal(await refreshCookie(), undefined, 'logout cleared the cookie in the browser');
  const me = await page.evaluate(() => window.dashboard.me());
  assert.equal(me.status, 401, 'no session after logout');

  await page.reload();
  assert.equal(await page.evaluate(() => window.restored), null, 'a reload does not restore');
  await page.locator('#status', { hasText: 'signed out' }).waitFor();

  // The server revoked the family: the cookie the browser held before logout,
  // put back by hand, no longer restores anything.
  await context.addCookies([retired]);
  await page.reload();
  assert.equal(await page.evaluate(() => window.restored), null, 'the pre-logout cookie is dead');
}));

test('a page on an untrusted origin cannot read the API', { timeout: 60_000 }, h.guard(async () => {
  // http://127.0.0.1:PAGES is not in trusted_origins: no CORS headers, so the
  // browser hides the answer from axios (a network error, no status).
  const jar = await refreshCookie();
  const other = await context.newPage();
  try {
    await other.goto(dashboardUrl(pages.ip));
    const res = await other.evaluate(([e, p]) => window.dashboard.login(e, p), [ALICE.email, ALICE.password]);
    assert.equal(res.ok, false);
    assert.equal(res.status, null, `the response was readable: ${JSON.stringify(res)}`);
    assert.deepEqual(await refreshCookie(), jar, 'an untrusted origin got no refresh cookie');
  } finally {
    await other.close();
  }
}));
