// Scenario: email and password with the real Better Auth client SDK
// (CONTRACTS.md §3, docs/contracts/oauth.md "Email and password"). The page is
// on http://localhost:PAGES, the API on http://localhost:API (same site, so the
// SameSite=Lax session cookie flows), and a real SMTP server (aiosmtpd) on
// 127.0.0.1 receives the mails, which the test reads from its Maildir and opens
// in the browser as a user would.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Harness, freePort } from '../lib/harness.js';

const h = new Harness('email-password');
const EMAIL = 'grace@example.test';
const PASSWORD = 'correct horse battery staple';
const NEW_PASSWORD = 'a brand new passphrase';
const NEWER_PASSWORD = 'yet another fine passphrase';
let api; let pages; let smtp; let context; let page;

// Password attempts are rate limited per client IP (10 a minute) and sign-ins
// per account (5 a minute), and every request here comes from 127.0.0.1: the
// scenario spends 9 and 5 of them, so it stays within both.
const sessionCookie = async (ctx = context) => (await ctx.cookies()).find((c) => c.name === 'tachigo.session_token');
const onPath = (pathname) => (url) => url.origin === pages.localhost && url.pathname === pathname;

/** A second browser (its own cookie jar) signed in as the user with `password`. */
async function secondBrowser(password) {
  const ctx = await h.newContext();
  const p = await ctx.newPage();
  await p.goto(`${pages.localhost}/email.html`);
  const r = await p.evaluate((b) => window.app.signIn(b), { email: EMAIL, password });
  assert.equal(r.error, null, `second browser sign-in: ${JSON.stringify(r.error)}`);
  return p;
}

before(async () => {
  const apiPort = await freePort();
  const apiUrl = `http://localhost:${apiPort}`;
  pages = await h.startPages({
    routes: { '/env.js': { type: 'text/javascript', body: `window.NEXT_PUBLIC_API_URL = ${JSON.stringify(apiUrl)};` } },
  });
  smtp = await h.startSmtp();
  api = await h.startServer({
    port: apiPort,
    env: {
      TACHIGO__SERVER__TRUSTED_ORIGINS: JSON.stringify([pages.localhost]),
      TACHIGO__OAUTH__FRONTEND_URL: pages.localhost,
      TACHIGO__EMAIL__SMTP_URL: smtp.url,
      TACHIGO__EMAIL__FROM: 'tachigo e2e <auth@tachigo.test>',
      TACHIGO__EMAIL__RETRY_BASE: '200ms',
      // Several mails to one address within the scenario's seconds.
      TACHIGO__EMAIL__PER_ADDRESS_INTERVAL: '1ms',
    },
  });
  await h.launchBrowser();
  context = await h.newContext();
  page = await context.newPage();
}, { timeout: 90_000 });

after(() => h.stop(), { timeout: 30_000 });

test('signUp.email signs in at once and mails a link that verifies the address', { timeout: 30_000 }, h.guard(async () => {
  await page.goto(`${pages.localhost}/email.html`);
  assert.equal((await page.evaluate(() => window.hydrated)).data, null, 'no session before sign-up');

  const r = await page.evaluate((b) => window.app.signUp(b), {
    email: EMAIL, password: PASSWORD, name: 'Grace Hopper', callbackURL: '/email.html?verified=1',
  });
  assert.equal(r.error, null, `sign-up: ${JSON.stringify(r.error)}`);
  assert.equal(r.data.user.email, EMAIL);
  assert.equal(r.data.user.name, 'Grace Hopper');
  assert.equal(r.data.user.emailVerified, false);
  assert.equal(typeof r.data.token, 'string');

  const cookie = await sessionCookie();
  assert.ok(cookie, 'the browser stored tachigo.session_token');
  assert.deepEqual(
    { httpOnly: cookie.httpOnly, sameSite: cookie.sameSite, path: cookie.path, secure: cookie.secure, domain: cookie.domain },
    { httpOnly: true, sameSite: 'Lax', path: '/', secure: false, domain: 'localhost' },
  );
  assert.ok(cookie.expires > Date.now() / 1000 + 6 * 86_400, 'Max-Age is the 7-day session ttl');
  assert.ok(!JSON.stringify(r.data).includes(cookie.value), 'the session secret is never in a JSON body');

  const session = await page.evaluate(() => window.app.getSession());
  assert.equal(session.data.user.id, r.data.user.id);
  assert.equal(session.data.session.id, r.data.token, '`token` names the session');

  const mail = await smtp.waitForMail(EMAIL, 1);
  assert.ok(mail.link.startsWith(`${api.url}/api/auth/verify-email?token=`), mail.link);
  await page.goto(mail.link);
  await page.waitForURL(onPath('/email.html'));
  assert.equal(new URL(page.url()).searchParams.get('verified'), '1');
  const verified = await page.evaluate(() => window.hydrated);
  assert.equal(verified.data.user.emailVerified, true);
}));

test('signOut, then signIn.email: a wrong password is refused, callbackURL is followed', { timeout: 30_000 }, h.guard(async () => {
  const out = await page.evaluate(() => window.app.signOut());
  assert.deepEqual(out.data, { success: true });
  assert.equal(await sessionCookie(), undefined, 'sign-out expired the cookie');
  assert.equal((await page.evaluate(() => window.app.getSession())).data, null);

  const wrong = await page.evaluate((b) => window.app.signIn(b), { email: EMAIL, password: 'not the password' });
  assert.equal(wrong.data, null);
  assert.equal(wrong.error.status, 401);
  assert.equal(wrong.error.code, 'INVALID_EMAIL_OR_PASSWORD');
  assert.equal(wrong.error.message, 'Invalid email or password');

  // The SDK's redirect plugin follows `{redirect: true, url}`.
  await page.evaluate((b) => { window.app.signIn(b).then((r) => { window.signInResult = r; }); },
    { email: EMAIL.toUpperCase(), password: PASSWORD, callbackURL: '/email.html?signedin=1' });
  await page.waitForURL((url) => onPath('/email.html')(url) && url.searchParams.get('signedin') === '1');
  const { data } = await page.evaluate(() => window.hydrated);
  assert.equal(data.user.email, EMAIL);
}));

test('changePassword with revokeOtherSessions replaces the session cookie and ends the others', { timeout: 30_000 }, h.guard(async () => {
  const other = await secondBrowser(PASSWORD);
  const before = await sessionCookie();
  const wrong = await page.evaluate((b) => window.app.changePassword(b), { currentPassword: 'not it at all', newPassword: NEW_PASSWORD });
  assert.equal(wrong.error.status, 400);
  assert.equal(wrong.error.code, 'INVALID_PASSWORD');

  const r = await page.evaluate((b) => window.app.changePassword(b), {
    currentPassword: PASSWORD, newPassword: NEW_PASSWORD, revokeOtherSessions: true,
  });
  assert.equal(r.error, null, `change-password: ${JSON.stringify(r.error)}`);
  assert.equal(r.data.user.email, EMAIL);
  const after = await sessionCookie();
  assert.notEqual(after.value, before.value, 'a new session cookie');
  const session = await page.evaluate(() => window.app.getSession());
  assert.equal(session.data.session.id, r.data.token);
  assert.equal((await other.evaluate(() => window.app.getSession())).data, null, 'the other browser is out');

  const renamed = await page.evaluate((b) => window.app.updateUser(b), { name: 'Rear Admiral Hopper' });
  assert.deepEqual(renamed.data, { status: true });
  assert.equal((await page.evaluate(() => window.app.getSession())).data.user.name, 'Rear Admiral Hopper');
}));

test('requestPasswordReset mails a link; resetPassword on the app page ends the sessions', { timeout: 30_000 }, h.guard(async () => {
  const unknown = await page.evaluate((b) => window.app.requestPasswordReset(b), { email: 'nobody@example.test', redirectTo: '/reset.html' });
  const known = await page.evaluate((b) => window.app.requestPasswordReset(b), { email: EMAIL, redirectTo: '/reset.html' });
  assert.equal(known.error, null, `request-password-reset: ${JSON.stringify(known.error)}`);
  assert.deepEqual(known.data, unknown.data, 'the same answer for known and unknown addresses');
  assert.equal(known.data.status, true);

  const mail = await smtp.waitForMail(EMAIL, 2);
  assert.ok(mail.link.startsWith(`${api.url}/api/auth/reset-password/`), mail.link);
  assert.equal(smtp.mailsTo('nobody@example.test').length, 0);
  await page.goto(mail.link);
  await page.waitForURL(onPath('/reset.html'));
  const token = new URL(page.url()).searchParams.get('token');
  assert.ok(token, 'the reset page received ?token=');
  assert.equal(await page.locator('#token').textContent(), token);

  const short = await page.evaluate((b) => window.app.resetPassword(b), { newPassword: 'short', token });
  assert.equal(short.error.code, 'PASSWORD_TOO_SHORT');
  const done = await page.evaluate((b) => window.app.resetPassword(b), { newPassword: NEWER_PASSWORD, token });
  assert.equal(done.error, null, `reset-password: ${JSON.stringify(done.error)}`);
  assert.deepEqual(done.data, { status: true });
  const replay = await page.evaluate((b) => window.app.resetPassword(b), { newPassword: 'one more passphrase', token });
  assert.equal(replay.error.code, 'INVALID_TOKEN');

  // The session this page held (the one change-password made) ended with the reset.
  assert.equal((await page.evaluate(() => window.app.getSession())).data, null, 'the reset signed this browser out');
  const fresh = await page.evaluate((b) => window.app.signIn(b), { email: EMAIL, password: NEWER_PASSWORD });
  assert.equal(fresh.error, null);
}));

test('deleteUser with the password removes the account', { timeout: 30_000 }, h.guard(async () => {
  const r = await page.evaluate((b) => window.app.deleteUser(b), { password: NEWER_PASSWORD });
  assert.equal(r.error, null, `delete-user: ${JSON.stringify(r.error)}`);
  assert.deepEqual(r.data, { success: true, message: 'User deleted' });
  assert.equal(await sessionCookie(), undefined);
  assert.equal((await page.evaluate(() => window.app.getSession())).data, null);
  const gone = await page.evaluate((b) => window.app.signIn(b), { email: EMAIL, password: NEWER_PASSWORD });
  assert.equal(gone.error.code, 'INVALID_EMAIL_OR_PASSWORD');
}));
