// Scenario 2: the Next.js-style frontend (CONTRACTS.md §3) with the Better Auth
// client SDK. The page is on http://localhost:PAGES, the API on
// http://localhost:API (same site, so the SameSite=Lax session cookie flows),
// and oidc-provider on http://127.0.0.1:OIDC stands in for Google/Twitch as the
// server's generic OIDC provider `local` (and, under a second name `work`, as
// the provider an account is linked with). The browser fills in the
// provider's own login and consent pages.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Harness, freePort } from '../lib/harness.js';

const h = new Harness('oauth');
const PROVIDER = 'local';
const SECOND_PROVIDER = 'work';
let api; let pages; let oidc; let context; let page;

const cookieNamed = (name) => async (ctx = context) => (await ctx.cookies()).find((c) => c.name === name);
const sessionCookie = cookieNamed('tachigo.session_token');
// Binds the pending authorization to this browser; it must survive the
// provider's cross-site top-level redirect back, so SameSite=Lax, not Strict.
const stateCookie = cookieNamed('tachigo.oauth_state');
const onPath = (pathname) => (url) => url.origin === pages.localhost && url.pathname === pathname;

/**
 * Follows a flow started at the provider until it lands on `landed`, clicking
 * through the provider's login and consent pages when it shows them (a browser
 * with a provider session and a grant is sent straight back).
 */
async function throughProvider(p, login, landed) {
  const atInteraction = (url) => url.origin === oidc.issuer && url.pathname.startsWith('/interaction/');
  for (let step = 0; step < 3; step += 1) {
    await p.waitForURL((url) => atInteraction(url) || landed(url));
    if (landed(new URL(p.url()))) return;
    const loginField = p.locator('input[name=login]');
    if (await loginField.count()) {
      await loginField.fill(login);
      await p.locator('input[name=password]').fill('any password');
      await p.locator('button[type=submit]', { hasText: 'Sign-in' }).click();
    } else {
      await p.locator('button[type=submit]', { hasText: 'Continue' }).click();
    }
    await p.waitForLoadState();
  }
  await p.waitForURL(landed);
}

/** Loads the app, waits for its first get-session, and starts social sign-in. */
async function startSignIn(p, options) {
  await p.goto(`${pages.localhost}/app.html`);
  const first = await p.evaluate(() => window.hydrated);
  assert.equal(first.data, null, `no session before sign-in: ${JSON.stringify(first)}`);
  // signIn.social POSTs /sign-in/social and then sets window.location to the
  // provider's authorize URL, so the promise is left to the page.
  await p.evaluate((o) => { window.app.signIn(o).then((r) => { window.signInResult = r; }); }, options);
  await p.waitForURL((url) => url.origin === oidc.issuer && url.pathname.startsWith('/interaction/'));
}

before(async () => {
  const apiPort = await freePort();
  const apiUrl = `http://localhost:${apiPort}`;
  pages = await h.startPages({
    routes: { '/env.js': { type: 'text/javascript', body: `window.NEXT_PUBLIC_API_URL = ${JSON.stringify(apiUrl)};` } },
  });
  oidc = await h.startOidcProvider({
    port: await freePort(),
    redirectUris: [PROVIDER, SECOND_PROVIDER].map((name) => `${apiUrl}/api/auth/callback/${name}`),
  });
  api = await h.startServer({
    port: apiPort,
    env: {
      TACHIGO__SERVER__TRUSTED_ORIGINS: JSON.stringify([pages.localhost]),
      TACHIGO__OAUTH__FRONTEND_URL: pages.localhost,
      TACHIGO__OAUTH__PROVIDERS__LOCAL__ISSUER: oidc.issuer,
      TACHIGO__OAUTH__PROVIDERS__LOCAL__CLIENT_ID: oidc.clientId,
      TACHIGO__OAUTH__PROVIDERS__LOCAL__CLIENT_SECRET: oidc.clientSecret,
      TACHIGO__OAUTH__PROVIDERS__WORK__ISSUER: oidc.issuer,
      TACHIGO__OAUTH__PROVIDERS__WORK__CLIENT_ID: oidc.clientId,
      TACHIGO__OAUTH__PROVIDERS__WORK__CLIENT_SECRET: oidc.clientSecret,
    },
  });
  await h.launchBrowser();
  context = await h.newContext();
  page = await context.newPage();
}, { timeout: 90_000 });

after(() => h.stop(), { timeout: 30_000 });

test('signIn.social goes through the provider login and consent, and lands back signed in', { timeout: 60_000 }, h.guard(async () => {
  await startSignIn(page, { callbackURL: '/app.html?from=signin', errorCallbackURL: `${pages.localhost}/auth-error.html` });
  const state = await stateCookie();
  assert.ok(state, 'sign-in left a state cookie in the browser');
  assert.deepEqual(
    { httpOnly: state.httpOnly, sameSite: state.sameSite, path: state.path, secure: state.secure },
    { httpOnly: true, sameSite: 'Lax', path: '/api/auth', secure: false },
  );

  await page.locator('input[name=login]').fill('carol');
  await page.locator('input[name=password]').fill('any password');
  await page.locator('button[type=submit]', { hasText: 'Sign-in' }).click();
  await page.locator('button[type=submit]', { hasText: 'Continue' }).click();

  await page.waitForURL(onPath('/app.html'));
  const landed = new URL(page.url());
  assert.equal(landed.searchParams.get('from'), 'signin', 'the relative callbackURL resolved on the frontend');
  for (const leaked of ['code', 'state', 'error']) assert.ok(!landed.searchParams.has(leaked), `?${leaked} reached the frontend`);

  const { data, error } = await page.evaluate(() => window.hydrated);
  assert.equal(error, null, `get-session failed: ${JSON.stringify(error)}`);
  assert.ok(data, 'get-session shows a session after the callback');
  assert.equal(data.user.email, 'carol@example.test');
  assert.equal(data.user.name, 'E2E carol');
  assert.equal(data.session.userId, data.user.id);
  await page.locator('#status', { hasText: 'signed in as carol@example.test' }).waitFor();
  assert.equal(await stateCookie(), undefined, 'the callback cleared the state cookie');

  const cookie = await sessionCookie();
  assert.ok(cookie, 'the browser stored tachigo.session_token');
  assert.equal(cookie.httpOnly, true, 'HttpOnly');
  assert.equal(cookie.sameSite, 'Lax', 'SameSite=Lax');
  assert.equal(cookie.path, '/', 'Path=/');
  assert.equal(cookie.secure, false, 'no Secure with cookies.secure=false');
  assert.equal(cookie.domain, 'localhost', 'host-only (no Domain configured)');
  assert.ok(cookie.expires > Date.now() / 1000 + 6 * 86_400, 'Max-Age is the 7-day session ttl');
  assert.ok(!(await page.evaluate(() => document.cookie)).includes('tachigo.session_token'));
  assert.ok(!JSON.stringify(data).includes(cookie.value), 'the session token is never in a JSON body');
}));

test('listSessions, revokeSession, revokeOtherSessions, listAccounts, linkSocial, unlinkAccount through the SDK', { timeout: 90_000 }, h.guard(async () => {
  // A second browser (a fresh profile each time) signed in as the same user.
  let otherContext; let other;
  const signInOther = async () => {
    otherContext = await h.newContext();
    other = await otherContext.newPage();
    await startSignIn(other, { callbackURL: '/app.html' });
    await throughProvider(other, 'carol', onPath('/app.html'));
    const { data } = await other.evaluate(() => window.hydrated);
    assert.equal(data?.user.email, 'carol@example.test', 'the second browser is signed in');
  };
  await signInOther();

  const listed = await page.evaluate(() => window.app.listSessions());
  assert.equal(listed.error, null, `listSessions: ${JSON.stringify(listed.error)}`);
  assert.equal(listed.data.length, 2, 'both browsers\' sessions are listed');
  const cookieValues = [(await sessionCookie()).value, (await sessionCookie(otherContext)).value];
  for (const s of listed.data) {
    assert.equal(typeof s.token, 'string', 'each session carries a `token` handle');
    assert.ok(!cookieValues.includes(s.token), 'the handle is not a session credential');
  }
  const current = (await page.evaluate(() => window.app.getSession())).data.session;
  const theOther = listed.data.find((s) => s.id !== current.id);
  const revoked = await page.evaluate((token) => window.app.revokeSession(token), theOther.token);
  assert.deepEqual(revoked.data, { status: true }, `revokeSession: ${JSON.stringify(revoked)}`);
  assert.equal((await other.evaluate(() => window.app.getSession())).data, null, 'the other browser is signed out');
  await otherContext.close();
  assert.ok((await page.evaluate(() => window.app.getSession())).data, 'this browser is still signed in');

  await signInOther();
  const others = await page.evaluate(() => window.app.revokeOtherSessions());
  assert.deepEqual(others.data, { status: true }, `revokeOtherSessions: ${JSON.stringify(others)}`);
  assert.equal((await other.evaluate(() => window.app.getSession())).data, null, 'revokeOtherSessions ended the other one');
  const left = await page.evaluate(() => window.app.listSessions());
  assert.deepEqual(left.data.map((s) => s.id), [current.id], 'only this session is left');
  await otherContext.close();

  const providers = async () => (await page.evaluate(() => window.app.listAccounts())).data.map((a) => a.providerId).sort();
  assert.deepEqual(await providers(), [PROVIDER]);
  await page.evaluate((provider) => { window.app.linkSocial({ provider, callbackURL: '/app.html?linked=1' }); }, SECOND_PROVIDER);
  await throughProvider(page, 'carol', (url) => onPath('/app.html')(url) && url.searchParams.get('linked') === '1');
  assert.equal((await page.evaluate(() => window.hydrated)).data?.session.id, current.id, 'linking kept the session');
  assert.deepEqual(await providers(), [PROVIDER, SECOND_PROVIDER].sort(), 'linkSocial added the account');

  const unlinked = await page.evaluate((providerId) => window.app.unlinkAccount(providerId), SECOND_PROVIDER);
  assert.deepEqual(unlinked.data, { status: true }, `unlinkAccount: ${JSON.stringify(unlinked)}`);
  assert.deepEqual(await providers(), [PROVIDER], 'unlinkAccount removed it');
  const last = await page.evaluate((providerId) => window.app.unlinkAccount(providerId), PROVIDER);
  assert.equal(last.error?.code, 'FAILED_TO_UNLINK_LAST_ACCOUNT', `the last account stays: ${JSON.stringify(last)}`);
  assert.deepEqual(await providers(), [PROVIDER]);
}));

test('signOut ends the session', { timeout: 60_000 }, h.guard(async () => {
  const out = await page.evaluate(() => window.app.signOut());
  assert.deepEqual(out.data, { success: true }, `sign-out: ${JSON.stringify(out)}`);
  const after = await page.evaluate(() => window.app.getSession());
  assert.equal(after.data, null, 'get-session is null after sign-out');
  assert.equal(await sessionCookie(), undefined, 'the session cookie was expired in the browser');
  await page.reload();
  assert.equal((await page.evaluate(() => window.hydrated)).data, null, 'a reload stays signed out');
}));

test('cancelling at the provider lands on the error callback with ?error=', { timeout: 60_000 }, h.guard(async () => {
  // A fresh browser profile: no provider session, so the login page shows again.
  const ctx = await h.newContext();
  const p = await ctx.newPage();
  const callbacks = [];
  p.on('response', (r) => {
    if (new URL(r.url()).pathname === `/api/auth/callback/${PROVIDER}`) callbacks.push(r.status());
  });
  await startSignIn(p, { callbackURL: '/app.html', errorCallbackURL: `${pages.localhost}/auth-error.html` });
  await p.getByText('[ Cancel ]').click();

  await p.waitForURL(onPath('/auth-error.html'));
  const error = new URL(p.url()).searchParams.get('error');
  assert.ok(error, 'the error callback carries ?error=');
  assert.match(error, /^[a-z0-9_]+$/i, 'an error code, not a message');
  assert.deepEqual(callbacks, [302], 'the backend callback redirected at once (no intermediate page)');
  assert.equal(await sessionCookie(ctx), undefined, 'no session cookie after a cancelled sign-in');
  assert.equal(await stateCookie(ctx), undefined, 'the failed callback cleared the state cookie too');
}));
