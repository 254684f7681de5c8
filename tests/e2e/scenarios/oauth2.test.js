// Scenario: the OAuth 2.1 authorization server (`/oauth2/*`,
// docs/contracts/oauth2.md) driven by the real `openid-client` (v6) as a native
// app would use it, with Debian's Chromium as the system browser.
//
//   - the API (issuer) on http://localhost:API, one native client `e2e-cli`
//     registered with the loopback redirect http://127.0.0.1/callback;
//   - the frontend's sign-in page (`oauth2.sign_in_url`) on http://localhost:PAGES,
//     signing in with the real Better Auth client, then following `callbackURL`;
//   - the app's loopback redirect receiver on http://127.0.0.1:<random port>/callback.
//
// One server for the file; the tests run in order and share the user, the
// signed-in browser and the tokens of the first flow.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';

import { Harness, freePort, sleep, withTimeout } from '../lib/harness.js';

const h = new Harness('oauth2');
const CLIENT_ID = 'e2e-cli';
const CLIENT_NAME = 'tachigo e2e command line';
const EMAIL = 'ada@example.test';
const PASSWORD = 'analytical engine notes';
const NAME = 'Ada Lovelace';
const SCOPE = 'openid profile email offline_access';
// 8 characters of BCDFGHJKLMNPQRSTVWXZ, shown as XXXX-XXXX.
const USER_CODE = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/;

let api; let pages; let app; let config;
// Set by the code flow, used by the tests after it.
let signedIn; let page; let userId; let codeTokens;

const sessionCookie = async (ctx) => (await ctx.cookies()).find((c) => c.name === 'tachigo.session_token');
const sortedParams = (url) => [...url.searchParams.entries()].sort(([a], [b]) => a.localeCompare(b));
/** `{ok, value}` or `{ok: false, error}`: a promise nobody awaits yet must not reject unhandled. */
const settle = (p) => p.then((value) => ({ ok: true, value }), (error) => ({ ok: false, error }));
/** For assert.rejects: an openid-client error carrying the OAuth error code `code`. */
const oauthError = (code) => (err) => {
  assert.equal(err?.error, code,
    `expected the OAuth error ${code}, got ${err?.name}: ${err?.error ?? ''} ${err?.message}${err?.cause ? ` (cause: ${err.cause.message ?? JSON.stringify(err.cause)})` : ''}`);
  return true;
};
const refresh = (refreshToken) => withTimeout(oidc.refreshTokenGrant(config, refreshToken), 15_000, 'refresh_token grant');

before(async () => {
  const apiPort = await freePort();
  const apiUrl = `http://localhost:${apiPort}`;
  pages = await h.startPages({
    routes: { '/env.js': { type: 'text/javascript', body: `window.NEXT_PUBLIC_API_URL = ${JSON.stringify(apiUrl)};` } },
  });
  app = await h.startLoopbackReceiver();
  api = await h.startServer({
    port: apiPort,
    env: {
      TACHIGO__SERVER__TRUSTED_ORIGINS: JSON.stringify([pages.localhost]),
      TACHIGO__OAUTH__FRONTEND_URL: pages.localhost,
    },
    // JSON string literals are TOML basic strings.
    config: `
[oauth2]
sign_in_url = ${JSON.stringify(`${pages.localhost}/oauth2-sign-in.html`)}
device_poll_interval = "1s"

[[clients]]
id = ${JSON.stringify(CLIENT_ID)}
name = ${JSON.stringify(CLIENT_NAME)}
kind = "native"
redirect_uris = ["http://127.0.0.1/callback"]
scopes = ["openid", "profile", "email", "offline_access"]
`,
  });
  await h.launchBrowser();
}, { timeout: 90_000 });

after(() => h.stop(), { timeout: 30_000 });

test('discovery: openid-client reads the metadata at the issuer', { timeout: 30_000 }, h.guard(async () => {
  config = await withTimeout(
    oidc.discovery(new URL(api.url), CLIENT_ID, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests], timeout: 10 }),
    15_000, 'openid-client discovery',
  );
  const meta = config.serverMetadata();
  assert.equal(meta.issuer, api.url, 'the issuer is public_url without a trailing slash');
  assert.equal(meta.authorization_endpoint, `${api.url}/oauth2/authorize`);
  assert.equal(meta.token_endpoint, `${api.url}/oauth2/token`);
  assert.equal(meta.device_authorization_endpoint, `${api.url}/oauth2/device_authorization`);
  assert.equal(meta.userinfo_endpoint, `${api.url}/oauth2/userinfo`);
  assert.equal(meta.jwks_uri, `${api.url}/.well-known/jwks.json`);
  assert.deepEqual(meta.code_challenge_methods_supported, ['S256'], 'S256 only, no plain');
  // Without it openid-client would expect RS256 ID tokens.
  assert.ok(meta.id_token_signing_alg_values_supported?.includes('EdDSA'),
    `id_token_signing_alg_values_supported: ${JSON.stringify(meta.id_token_signing_alg_values_supported)}`);
}));

test('authorization code + PKCE: sign-in page, loopback redirect, openid-client redeems the code', { timeout: 60_000 }, h.guard(async () => {
  assert.ok(config, 'needs the discovered configuration');
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const authUrl = oidc.buildAuthorizationUrl(config, {
    redirect_uri: `${app.origin}/callback`,
    scope: SCOPE,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });

  // A fresh browser profile: no session, so the server sends it to the frontend.
  signedIn = await h.newContext();
  page = await signedIn.newPage();
  const mark = app.requests.length;
  await page.goto(authUrl.href);
  await page.waitForURL((url) => url.origin === pages.localhost && url.pathname === '/oauth2-sign-in.html');
  const callbackURL = new URL(new URL(page.url()).searchParams.get('callbackURL'));
  assert.equal(`${callbackURL.origin}${callbackURL.pathname}`, `${api.url}/oauth2/authorize`, 'callbackURL leads back to authorize');
  assert.deepEqual(sortedParams(callbackURL), sortedParams(authUrl), 'callbackURL is the authorization request itself');
  assert.equal(await page.evaluate(() => window.signInPage?.callbackURL), callbackURL.href, 'the page accepted the callbackURL');
  assert.equal(await sessionCookie(signedIn), undefined, 'no session yet');
  assert.equal(app.requests.length, mark, 'nothing reached the app before sign-in');

  await page.getByLabel('Name').fill(NAME);
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password').fill(PASSWORD);
  const signUp = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/auth/sign-up/email');
  await page.getByRole('button', { name: 'Create account' }).click();
  // (Its body is gone once the page has navigated on.)
  assert.equal((await signUp).status(), 200, 'sign-up');

  const callback = await app.waitFor('/callback', mark);
  await page.waitForURL((url) => url.origin === app.origin && url.pathname === '/callback');
  assert.ok(await sessionCookie(signedIn), 'the browser holds the web session now');
  // Who signed up, as the Better Auth contract tells this browser.
  const session = await signedIn.request.get(`${api.url}/api/auth/get-session`, { timeout: 10_000 });
  userId = (await session.json())?.user?.id;
  assert.ok(userId, 'get-session names the user');
  assert.equal(callback.searchParams.get('error'), null, `authorize failed: ${callback}`);
  assert.ok(callback.searchParams.get('code'), 'a code');
  assert.equal(callback.searchParams.get('state'), state);
  assert.equal(callback.searchParams.get('iss'), api.url, 'RFC 9207 iss');

  // State, iss, PKCE, nonce and the ID token signature (JWKS) are openid-client's checks.
  codeTokens = await withTimeout(oidc.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  }), 15_000, 'authorization_code grant');
  assert.equal(codeTokens.token_type.toLowerCase(), 'bearer');
  assert.ok(codeTokens.expires_in > 0, 'expires_in');
  assert.ok(codeTokens.refresh_token, 'a refresh token');
  const granted = codeTokens.scope.split(' ');
  for (const scope of ['openid', 'profile', 'email']) assert.ok(granted.includes(scope), `scope ${codeTokens.scope}`);
  assert.ok(granted.every((scope) => SCOPE.split(' ').includes(scope)), `scope ${codeTokens.scope}`);

  const claims = codeTokens.claims();
  assert.equal(claims.iss, api.url);
  assert.equal(claims.sub, userId);
  assert.deepEqual([].concat(claims.aud), [CLIENT_ID], 'the ID token is for the client');
  assert.equal(claims.nonce, nonce);
  assert.equal(claims.email, EMAIL);
  assert.equal(typeof claims.email_verified, 'boolean');
  assert.equal(claims.name, NAME);
  assert.ok(claims.sid, 'sid');
  assert.equal(typeof claims.auth_time, 'number');

  const access = decodeJwt(codeTokens.access_token);
  assert.equal(access.iss, api.url);
  assert.equal(access.sub, userId);
  assert.deepEqual([].concat(access.aud), [CLIENT_ID], 'the audience defaults to the client id');
  assert.equal(access.client_id, CLIENT_ID);
  assert.equal(access.sid, claims.sid, 'the access token and the ID token name the same session');

  const info = await withTimeout(oidc.fetchUserInfo(config, codeTokens.access_token, userId), 15_000, 'userinfo');
  assert.equal(info.sub, userId);
  assert.equal(info.email, EMAIL);
  assert.equal(info.name, NAME);
}));

test('refresh rotates; a token two generations back is reuse and revokes the family', { timeout: 60_000 }, h.guard(async () => {
  assert.ok(codeTokens, 'needs the tokens of the code flow');
  const first = codeTokens.refresh_token;
  const second = await refresh(first);
  assert.ok(second.refresh_token, 'a successor refresh token');
  assert.notEqual(second.refresh_token, first, 'rotation: a new refresh token');
  assert.notEqual(second.access_token, codeTokens.access_token);
  const info = await withTimeout(oidc.fetchUserInfo(config, second.access_token, userId), 15_000, 'userinfo');
  assert.equal(info.email, EMAIL);

  const third = await refresh(second.refresh_token);
  assert.ok(third.refresh_token);
  assert.notEqual(third.refresh_token, second.refresh_token);
  assert.equal(decodeJwt(third.access_token).sid, decodeJwt(codeTokens.access_token).sid, 'the same session throughout');

  // `first` is two generations back: no grace, reuse revokes the whole family ...
  await assert.rejects(refresh(first), oauthError('invalid_grant'));
  // ... including the current token.
  await assert.rejects(refresh(third.refresh_token), oauthError('invalid_grant'));
}));

/**
 * A device flow: openid-client starts it and polls, while the signed-in
 * browser opens `verification_uri_complete`, sees the client and clicks
 * `button` (Approve or Deny). Resolves with the settled poll.
 */
async function deviceFlow(button) {
  const da = await withTimeout(oidc.initiateDeviceAuthorization(config, { scope: 'openid profile email' }), 15_000, 'device authorization');
  assert.match(da.user_code, USER_CODE);
  assert.equal(da.verification_uri, `${api.url}/oauth2/device`);
  assert.equal(new URL(da.verification_uri_complete).searchParams.get('user_code'), da.user_code);
  assert.equal(da.interval, 1, 'oauth2.device_poll_interval');
  assert.ok(da.expires_in > 0 && da.expires_in <= 600, `expires_in ${da.expires_in}`);
  assert.ok(da.device_code);

  // The app polls while the user decides in the browser; a failed test leaves no poll running.
  const abort = new AbortController();
  const polled = settle(oidc.pollDeviceAuthorizationGrant(config, da, undefined, { signal: abort.signal }));
  try {
    const shown = await page.goto(da.verification_uri_complete);
    assert.equal(shown.status(), 200, 'the device page');
    assert.equal(new URL(page.url()).origin, api.url, 'the signed-in browser stays on the server');
    await page.getByText(CLIENT_NAME).first().waitFor();

    const posted = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/oauth2/device');
    await page.getByRole('button', { name: button }).click();
    const decided = await posted;
    if (decided.status() >= 400) {
      const origin = await decided.request().headerValue('origin');
      const referer = await decided.request().headerValue('referer');
      const text = await page.locator('body').innerText().catch(() => '(no page)');
      assert.fail(`${button}: POST /oauth2/device answered ${decided.status()} (the browser sent Origin: ${origin}, Referer: ${referer}): ${text}`);
    }
    return await withTimeout(polled, 25_000, 'device code poll');
  } finally {
    abort.abort();
  }
}

test('device authorization: Approve in the signed-in browser, the poll gets tokens', { timeout: 60_000 }, h.guard(async () => {
  assert.ok(config && page && userId, 'needs the signed-in browser of the code flow');
  const result = await deviceFlow('Approve');
  assert.ok(result.ok, `the poll failed: ${result.error?.error ?? ''} ${result.error?.message}`);
  const tokens = result.value;
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.ok(tokens.access_token);
  assert.ok(tokens.refresh_token);
  const claims = tokens.claims();
  assert.equal(claims.sub, userId);
  assert.deepEqual([].concat(claims.aud), [CLIENT_ID]);
  assert.equal(decodeJwt(tokens.access_token).client_id, CLIENT_ID);
  const info = await withTimeout(oidc.fetchUserInfo(config, tokens.access_token, userId), 15_000, 'userinfo');
  assert.equal(info.email, EMAIL);
}));

test('device authorization: Deny makes the poll fail with access_denied', { timeout: 60_000 }, h.guard(async () => {
  assert.ok(config && page, 'needs the signed-in browser of the code flow');
  const result = await deviceFlow('Deny');
  assert.equal(result.ok, false, 'the poll must not yield tokens');
  oauthError('access_denied')(result.error);
}));

test('PKCE is required: an authorize request without code_challenge ends at the app with error=invalid_request', { timeout: 30_000 }, h.guard(async () => {
  assert.ok(config && page, 'needs the signed-in browser of the code flow');
  const state = oidc.randomState();
  const url = new URL(`${api.url}/oauth2/authorize`);
  url.search = new URLSearchParams({
    response_type: 'code', client_id: CLIENT_ID, redirect_uri: `${app.origin}/callback`, scope: 'openid', state,
  }).toString();
  const mark = app.requests.length;
  await page.goto(url.href);
  const callback = await app.waitFor('/callback', mark);
  await page.waitForURL((u) => u.origin === app.origin && u.pathname === '/callback');
  assert.equal(callback.searchParams.get('error'), 'invalid_request', `callback: ${callback}`);
  assert.equal(callback.searchParams.get('code'), null, 'no code');
  assert.equal(callback.searchParams.get('state'), state, 'the caller\'s state comes back');
  assert.equal(callback.searchParams.get('iss'), api.url);
  // And the app's library reads it as the authorization error it is.
  await assert.rejects(
    withTimeout(oidc.authorizationCodeGrant(config, callback, { expectedState: state, pkceCodeVerifier: oidc.randomPKCECodeVerifier() }), 15_000, 'authorization_code grant'),
    oauthError('invalid_request'),
  );
}));

test('an unregistered redirect_uri or unknown client: 400 on the server, never a redirect', { timeout: 30_000 }, h.guard(async () => {
  assert.ok(config && page, 'needs the signed-in browser of the code flow');
  const request = async (clientId, redirectUri) => {
    const url = oidc.buildAuthorizationUrl(config, {
      client_id: clientId,
      redirect_uri: redirectUri,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      state: oidc.randomState(),
    });
    const mark = app.requests.length;
    const response = await page.goto(url.href);
    await sleep(300); // room for any late (script or meta) redirect to show
    return { response, seen: app.requests.slice(mark) };
  };

  // The registered path is /callback: another path on the same loopback is not registered.
  const other = await request(CLIENT_ID, `${app.origin}/elsewhere`);
  assert.equal(other.response.status(), 400);
  assert.equal(new URL(page.url()).origin, api.url, 'the browser stays on the server');
  assert.equal(new URL(page.url()).pathname, '/oauth2/authorize');
  assert.match(await page.locator('body').innerText(), /redirect/i, 'the page names the problem');
  assert.deepEqual(other.seen.map(String), [], 'nothing reached the unregistered URI');

  const unknown = await request('no-such-client', `${app.origin}/callback`);
  assert.equal(unknown.response.status(), 400);
  assert.equal(new URL(page.url()).origin, api.url, 'the browser stays on the server');
  assert.match(await page.locator('body').innerText(), /client/i, 'the page names the problem');
  assert.deepEqual(unknown.seen.map(String), [], 'an unknown client is never redirected');
}));
