// Scenario: the client snippets of docs/contracts/*.md, run as written. Each
// block is read from its markdown file at run time (lib/snippets.js): the
// dashboard's axios instance and the Twitch panel run in Chromium, the watch
// service's `jose` check and the Next.js middleware and get-session call run
// in Node, all against one real server. Pages are on http://localhost:PAGES;
// the panel iframe is on http://127.0.0.1:PAGES, another site, as
// https://<client-id>.ext-twitch.tv is.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';

import { SignJWT, decodeJwt, decodeProtectedHeader, generateKeyPair } from 'jose';

import { Harness, freePort, sleep, withTimeout } from '../lib/harness.js';
import { browserSnippet, importSnippet } from '../lib/snippets.js';
import { mintExtensionJwt } from '../lib/twitch.js';

const h = new Harness('doc-snippets');
const ALICE = { email: 'alice@example.test', password: 'correct horse battery staple', name: 'Alice' };
const SECRET_B64 = randomBytes(32).toString('base64');
const CLIENT_ID = 'e2edocsclient';
// Real expiry: access and extension tokens die after 4 s (long enough for the
// panel test on a loaded machine, short enough to wait for).
const ACCESS_TTL_SECS = 4;
// The `clockTolerance` of the watch-service-node snippet.
const WATCH_TOLERANCE_SECS = 5;
const routes = {
  '/sign-in': '<!doctype html><html><head><meta charset="utf-8"><title>sign in</title></head><body>sign in</body></html>',
};
let api; let pages; let context; let page;

/** Counts the requests of every frame of `p` matching `method path` from now on, with their statuses. */
function watchRequests(p, method, pathname) {
  const seen = { requests: [], statuses: [] };
  const matches = (req) => req.method() === method && new URL(req.url()).pathname === pathname;
  const onRequest = (req) => { if (matches(req)) seen.requests.push(req); };
  const onResponse = (res) => { if (matches(res.request())) seen.statuses.push(res.status()); };
  p.on('request', onRequest);
  p.on('response', onResponse);
  seen.stop = () => { p.off('request', onRequest); p.off('response', onResponse); };
  return seen;
}

const refreshCookie = async () => (await context.cookies()).find((c) => c.name === 'tachigo_refresh');

async function openDashboard() {
  await page.goto(`${pages.localhost}/doc-dashboard.html`);
  await page.waitForFunction(() => window.snippet !== undefined);
}

/** Five concurrent GET /me through the snippet's `api`; resolves with each outcome. */
const fiveConcurrentMe = () => page.evaluate(() => Promise.all([1, 2, 3, 4, 5].map(
  () => window.snippet.api.get('/me').then((r) => ({ ok: true, email: r.data.user.email }), (e) => ({ ok: false, status: e.response?.status })),
)));

before(async () => {
  pages = await h.startPages({ routes });
  api = await h.startServer({
    port: await freePort(),
    users: [ALICE],
    env: {
      // The panel's stand-in origin is a trusted origin here (the real one is
      // https://<client-id>.ext-twitch.tv, which the browser cannot be).
      TACHIGO__SERVER__TRUSTED_ORIGINS: JSON.stringify([pages.localhost, pages.ip]),
      TACHIGO__OAUTH__FRONTEND_URL: pages.localhost,
      TACHIGO__TOKENS__ACCESS_TTL: `${ACCESS_TTL_SECS}s`,
      TACHIGO__EXTENSION__SECRETS: `[{ secret = "${SECRET_B64}" }]`,
      TACHIGO__EXTENSION__CLIENT_IDS: JSON.stringify([CLIENT_ID]),
    },
  });
  // The browser snippets read the API's origin as a build-time constant.
  const define = { 'process.env.TACHIGO_API_URL': JSON.stringify(api.url) };
  const script = async (doc, name) => ({ type: 'text/javascript; charset=utf-8', body: await browserSnippet(doc, name, define) });
  routes['/snippets/dashboard-axios.js'] = await script('dashboard.md', 'dashboard-axios');
  routes['/snippets/twitch-panel.js'] = await script('extension.md', 'twitch-panel');
  await h.launchBrowser();
  context = await h.newContext();
  page = await context.newPage();
}, { timeout: 90_000 });

after(() => h.stop(), { timeout: 30_000 });

// ----- extension.md: watch-service-node (first: its token expires while the rest runs) -----

let watch; let extensionToken;

test('watch-service-node: accepts a token the server issued; refuses forged, re-signed, unknown-key and dashboard tokens', { timeout: 60_000 }, h.guard(async () => {
  process.env.TACHIGO_URL = api.url;
  watch = await importSnippet('extension.md', 'watch-service-node');
  const login = await fetch(`${api.url}/api/v1/extension/auth/login`, {
    method: 'POST', headers: { authorization: `Bearer ${await mintExtensionJwt({ secretB64: SECRET_B64, userId: '5151', opaque: 'U5151' })}` },
  });
  assert.equal(login.status, 200);
  const body = await login.json();
  extensionToken = body.access_token;

  const payload = await watch.verifyTachigoToken(extensionToken);
  assert.equal(payload.sub, body.user.id);
  assert.equal(payload.iss, api.url);
  assert.equal(payload.aud, 'extension');
  assert.equal(payload.channel_id, '9001');
  assert.equal(payload.opaque_user_id, 'U5151');

  // The payload changed after signing.
  const [head, , signature] = extensionToken.split('.');
  const edited = Buffer.from(JSON.stringify({ ...payload, twitch_role: 'broadcaster' })).toString('base64url');
  await assert.rejects(watch.verifyTachigoToken(`${head}.${edited}.${signature}`), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });

  // The same claims signed by someone else's Ed25519 key, under the server's kid or another.
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const { kid } = decodeProtectedHeader(extensionToken);
  const resign = (header) => new SignJWT(decodeJwt(extensionToken)).setProtectedHeader(header).sign(privateKey);
  await assert.rejects(watch.verifyTachigoToken(await resign({ alg: 'EdDSA', kid })), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
  await assert.rejects(watch.verifyTachigoToken(await resign({ alg: 'EdDSA', kid: 'not-a-tachigo-key' })), { code: 'ERR_JWKS_NO_MATCHING_KEY' });

  // A genuine dashboard access token is for another audience.
  const dashboard = await fetch(`${api.url}/api/v1/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: ALICE.email, password: ALICE.password }),
  });
  assert.equal(dashboard.status, 200);
  await assert.rejects(watch.verifyTachigoToken((await dashboard.json()).access_token), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'aud' });
}));

// ----- dashboard.md: dashboard-axios -----

test('dashboard-axios: five concurrent requests with an expired access token cause one /refresh and all succeed', { timeout: 60_000 }, h.guard(async () => {
  await openDashboard();
  const user = await page.evaluate(([e, p]) => window.snippet.login(e, p), [ALICE.email, ALICE.password]);
  assert.equal(user.email, ALICE.email);
  assert.ok(await refreshCookie(), 'login set the refresh cookie (withCredentials)');

  // JWT expiry has one-second granularity: wait the TTL plus a margin.
  await sleep((ACCESS_TTL_SECS + 1.5) * 1000);
  // A slow network for one of the five: its 401 arrives after the refresh has
  // finished, and must be retried without a second refresh.
  let seen = 0;
  const slowFirst = async (route) => {
    if (++seen === 1) await sleep(1000);
    await route.continue();
  };
  await page.route(`${api.url}/api/v1/auth/me`, slowFirst);
  const refreshes = watchRequests(page, 'POST', '/api/v1/auth/refresh');
  const me = watchRequests(page, 'GET', '/api/v1/auth/me');
  const results = await fiveConcurrentMe();
  refreshes.stop(); me.stop();
  await page.unroute(`${api.url}/api/v1/auth/me`, slowFirst);

  assert.deepEqual(results, Array(5).fill({ ok: true, email: ALICE.email }));
  assert.equal(refreshes.requests.length, 1, 'exactly one /refresh for five 401s');
  assert.deepEqual(refreshes.statuses, [200]);
  assert.equal(me.statuses.filter((s) => s === 401).length, 5, `each first saw 401 (${me.statuses})`);
  assert.equal(me.statuses.filter((s) => s === 200).length, 5, `each retried once with success (${me.statuses})`);
  const bearers = new Set(me.requests.slice(-5).map((r) => r.headers().authorization));
  assert.equal(bearers.size, 1, 'the retries all carry the one refreshed token');
}));

test('dashboard-axios: after a reload (no access token) five concurrent requests cause one /refresh', { timeout: 60_000 }, h.guard(async () => {
  await openDashboard();
  const refreshes = watchRequests(page, 'POST', '/api/v1/auth/refresh');
  const me = watchRequests(page, 'GET', '/api/v1/auth/me');
  const results = await fiveConcurrentMe();
  refreshes.stop(); me.stop();

  assert.deepEqual(results, Array(5).fill({ ok: true, email: ALICE.email }));
  assert.equal(refreshes.requests.length, 1, 'exactly one /refresh restores the session');
  assert.deepEqual(refreshes.statuses, [200]);
  assert.ok(me.requests.slice(0, 5).every((r) => r.headers().authorization === undefined), 'the first five went out without a token');
  assert.equal(me.statuses.filter((s) => s === 200).length, 5);
}));

test('dashboard-axios: a refused refresh, and logout, end on the sign-in page', { timeout: 60_000 }, h.guard(async () => {
  // The session ends elsewhere (another device logs this family out): the
  // browser still holds its cookie, and the server refuses it.
  const cookie = await refreshCookie();
  const out = await fetch(`${api.url}/api/v1/auth/logout`, {
    method: 'POST', headers: { cookie: `${cookie.name}=${cookie.value}`, origin: pages.localhost },
  });
  assert.equal(out.status, 204);

  await openDashboard();
  const refreshes = watchRequests(page, 'POST', '/api/v1/auth/refresh');
  const signInPage = page.waitForURL(`${pages.localhost}/sign-in`);
  await page.evaluate(() => { window.snippet.api.get('/me').catch(() => {}); });
  await signInPage;
  refreshes.stop();
  assert.equal(refreshes.requests.length, 1);
  assert.deepEqual(refreshes.statuses, [401]);

  // The snippet's logout: the server ends the session, the page signs out.
  await openDashboard();
  await page.evaluate(([e, p]) => window.snippet.login(e, p), [ALICE.email, ALICE.password]);
  const signedOut = page.waitForURL(`${pages.localhost}/sign-in`);
  await page.evaluate(() => { window.snippet.logout(); });
  await signedOut;
  assert.equal(await refreshCookie(), undefined, 'logout cleared the refresh cookie');
}));

// ----- extension.md: twitch-panel -----

/** Loads the channel page with the docs' panel in its cross-site iframe. */
async function openChannelPage() {
  const panel = encodeURIComponent(`${pages.ip}/doc-panel.html`);
  await page.goto(`${pages.localhost}/panel-host.html?panel=${panel}&api=${encodeURIComponent(api.url)}`);
  await page.evaluate(() => window.panelLoaded);
  return page.frames().find((f) => f.url().startsWith(`${pages.ip}/doc-panel.html`));
}

/** What Twitch.ext.onAuthorized hands the panel, through the channel page. */
const authorize = (token) => page.evaluate(([t, c]) => window.authorize({ token: t, channelId: '9001', clientId: c, userId: 'U4242e2e' }), [token, CLIENT_ID]);

test('twitch-panel: onAuthorized logs in with the Extension JWT, then calls /me with the tachigo token', { timeout: 60_000 }, h.guard(async () => {
  const frame = await openChannelPage();
  assert.ok(frame, 'the panel iframe is on its own origin');
  const logins = watchRequests(page, 'POST', '/api/v1/extension/auth/login');
  const me = watchRequests(page, 'GET', '/api/v1/extension/me');
  const twitchJwt = await mintExtensionJwt({ secretB64: SECRET_B64 });
  await authorize(twitchJwt);
  const status = frame.locator('#status', { hasText: 'signed in as' });
  await status.waitFor();

  assert.equal(logins.requests.length, 1);
  assert.equal(logins.requests[0].headers().authorization, `Bearer ${twitchJwt}`, 'login carries the Twitch JWT as a bearer token');
  const login = await (await logins.requests[0].response()).json();
  assert.equal(me.requests.length, 1);
  assert.equal(me.requests[0].headers().authorization, `Bearer ${login.access_token}`, '/me carries the tachigo token');
  assert.deepEqual(me.statuses, [200]);
  assert.equal(await status.textContent(), `signed in as ${login.user.id} (viewer in channel 9001)`);

  // A follow-up bearer call through the snippet's helper.
  const again = await frame.evaluate(() => window.snippet.tachigo('/api/v1/extension/me'));
  assert.equal(again.user.id, login.user.id);
  assert.deepEqual(again.twitch, { channel_id: '9001', role: 'viewer', opaque_user_id: 'U4242e2e' });

  // Twitch renews the JWT: the panel logs in again and moves to the new token.
  const renewed = await mintExtensionJwt({ secretB64: SECRET_B64, role: 'moderator' });
  await authorize(renewed);
  await frame.locator('#status', { hasText: '(moderator in channel 9001)' }).waitFor();
  logins.stop(); me.stop();
  assert.equal(logins.requests.length, 2);
  assert.equal(logins.requests[1].headers().authorization, `Bearer ${renewed}`);
  const second = await (await logins.requests[1].response()).json();
  assert.equal(me.requests.length, 3, 'a /me after each login, and the follow-up call');
  assert.equal(me.requests[2].headers().authorization, `Bearer ${second.access_token}`);
  assert.equal(second.user.id, login.user.id, 'the same Twitch viewer is the same user');
  assert.deepEqual(await context.cookies(pages.ip), [], 'the panel holds no cookies');
}));

test('twitch-panel: an unshared identity asks Twitch for the id share; a forged JWT is refused', { timeout: 60_000 }, h.guard(async () => {
  let frame = await openChannelPage();
  await authorize(await mintExtensionJwt({ secretB64: SECRET_B64, userId: null, opaque: 'A0anonymous' }));
  await frame.locator('#status', { hasText: 'not signed in: identity_share_required' }).waitFor();
  assert.equal(await frame.evaluate(() => window.twitchStandIn.idShareRequests), 1);

  frame = await openChannelPage();
  const me = watchRequests(page, 'GET', '/api/v1/extension/me');
  await authorize(await mintExtensionJwt({ secretB64: randomBytes(32).toString('base64') }));
  await frame.locator('#status', { hasText: 'not signed in: invalid_extension_token' }).waitFor();
  me.stop();
  assert.equal(me.requests.length, 0, 'no bearer call without a tachigo token');
  assert.equal(await frame.evaluate(() => window.twitchStandIn.idShareRequests), 0);
}));

// ----- oauth.md: nextjs-middleware and nextjs-get-session -----

test('nextjs-middleware and nextjs-get-session: redirect without the cookie, read the session with it', { timeout: 60_000 }, h.guard(async () => {
  process.env.API_URL = api.url;
  const { middleware, config } = await importSnippet('oauth.md', 'nextjs-middleware');
  const { getSession } = await importSnippet('oauth.md', 'nextjs-get-session');
  assert.deepEqual(config.matcher, ['/dashboard/:path*', '/settings/:path*']);

  // A real session cookie, from the server's own sign-up.
  const email = 'nextjs@example.test';
  const signUp = await fetch(`${api.url}/api/auth/sign-up/email`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: pages.localhost },
    body: JSON.stringify({ name: 'Next', email, password: 'a long enough passphrase' }),
  });
  assert.equal(signUp.status, 200, await signUp.clone().text());
  const { user } = await signUp.json();
  const sessionCookie = signUp.headers.getSetCookie().map((c) => c.split(';')[0]).find((c) => c.startsWith('tachigo.session_token='));
  assert.ok(sessionCookie, `sign-up set tachigo.session_token: ${signUp.headers.getSetCookie()}`);
  // What the browser sends to the frontend's host (cookies.domain shared).
  const browserCookies = `theme=dark; ${sessionCookie}`;
  const app = 'http://localhost:3000';

  const away = await middleware(new Request(`${app}/dashboard/stats?tab=1`));
  assert.ok(away instanceof Response, 'no cookie: the middleware answers');
  assert.equal(away.status, 307);
  assert.equal(away.headers.get('location'), `${app}/sign-in?next=%2Fdashboard%2Fstats`);
  const otherPrefix = await middleware(new Request(`${app}/dashboard`, { headers: { cookie: `better-auth.${sessionCookie.slice('tachigo.'.length)}` } }));
  assert.equal(otherPrefix?.status, 307, 'only the tachigo prefix counts');
  assert.equal(await middleware(new Request(`${app}/dashboard`, { headers: { cookie: browserCookies } })), undefined, 'with the cookie: on to the page');

  const session = await getSession(new Headers({ cookie: browserCookies }));
  assert.equal(session.user.id, user.id);
  assert.equal(session.session.userId, user.id);
  assert.equal(await getSession(new Headers()), null, 'no cookie: signed out');
  assert.equal(await getSession(new Headers({ cookie: `tachigo.session_token=${randomBytes(32).toString('base64url')}` })), null, 'a forged cookie: signed out');

  // After sign-out the stale cookie still passes the middleware's quick look,
  // and the page's get-session says signed out.
  const out = await fetch(`${api.url}/api/auth/sign-out`, { method: 'POST', headers: { cookie: sessionCookie, origin: pages.localhost } });
  assert.equal(out.status, 200);
  assert.equal(await middleware(new Request(`${app}/dashboard`, { headers: { cookie: browserCookies } })), undefined);
  assert.equal(await getSession(new Headers({ cookie: browserCookies })), null);
}));

// ----- extension.md: watch-service-node, once the token has expired -----

test('watch-service-node: refuses the token once it has expired', { timeout: 60_000 }, h.guard(async () => {
  assert.ok(watch && extensionToken, 'the first watch-service test ran');
  const { exp } = decodeJwt(extensionToken);
  const waitMs = (exp + WATCH_TOLERANCE_SECS + 1.5) * 1000 - Date.now();
  if (waitMs > 0) await sleep(waitMs);
  await withTimeout(
    assert.rejects(watch.verifyTachigoToken(extensionToken), { code: 'ERR_JWT_EXPIRED' }),
    10_000, 'verifying an expired token',
  );
}));
