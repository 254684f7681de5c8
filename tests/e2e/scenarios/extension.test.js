// Scenario 3: the Twitch panel (CONTRACTS.md §2). The channel page is on
// http://localhost:PAGES; the panel iframe is on http://127.0.0.1:PAGES, another
// site, standing in for https://<client-id>.ext-twitch.tv. The harness mints the
// Twitch Extension JWT with jose and the parent hands it to the panel by
// postMessage, as Twitch's onAuthorized does; the panel calls the API with fetch.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';

import { createRemoteJWKSet, jwtVerify } from 'jose';

import { Harness, freePort, withTimeout } from '../lib/harness.js';
import { mintExtensionJwt as mintTwitchJwt } from '../lib/twitch.js';

const h = new Harness('extension');
// Twitch shows the extension secret base64-encoded; it signs with the decoded bytes.
const SECRET_B64 = randomBytes(32).toString('base64');
const CLIENT_ID = 'e2eclientid';
let api; let pages; let context; let page;

/** A Twitch-style Extension JWT signed with this run's secret, or `secretB64`. */
const mintExtensionJwt = (claims = {}) => mintTwitchJwt({ secretB64: SECRET_B64, ...claims });

/** Loads the channel page, hands the panel `token`, and returns the panel's report. */
async function runPanel(token) {
  await page.goto(`${pages.localhost}/panel-host.html?panel=${encodeURIComponent(`${pages.ip}/panel.html`)}&api=${encodeURIComponent(api.url)}`);
  await page.evaluate(([t, c]) => window.authorize({ token: t, channelId: '9001', clientId: c }), [token, CLIENT_ID]);
  await withTimeout(page.waitForFunction(() => window.panelReports.length > 0), 15_000, 'the panel report');
  return page.evaluate(() => window.panelReports[0]);
}

before(async () => {
  pages = await h.startPages();
  api = await h.startServer({
    port: await freePort(),
    env: {
      TACHIGO__EXTENSION__SECRETS: `[{ secret = "${SECRET_B64}" }]`,
      TACHIGO__EXTENSION__CLIENT_IDS: JSON.stringify([CLIENT_ID]),
      // Extension CORS allows https://<client-id>.ext-twitch.tv plus
      // server.trusted_origins. The browser cannot be that https origin here, so
      // for this run the panel's stand-in origin is made a trusted origin.
      TACHIGO__SERVER__TRUSTED_ORIGINS: JSON.stringify([pages.localhost, pages.ip]),
      TACHIGO__OAUTH__FRONTEND_URL: pages.localhost,
    },
  });
  await h.launchBrowser();
  context = await h.newContext();
  page = await context.newPage();
}, { timeout: 90_000 });

after(() => h.stop(), { timeout: 30_000 });

test('the panel in a cross-site iframe logs in with the Extension JWT, then makes a bearer request', { timeout: 60_000 }, h.guard(async () => {
  const report = await runPanel(await mintExtensionJwt());
  assert.equal(report.error, undefined, `the panel's fetch failed: ${report.error}`);
  assert.equal(report.origin, pages.ip, 'the panel ran on its own (cross-site) origin');
  assert.equal(report.parentOrigin, pages.localhost);

  const { login, me } = report;
  assert.equal(login.status, 200, `login: ${JSON.stringify(login.body)}`);
  assert.equal(login.body.token_type, 'Bearer');
  assert.ok(login.body.expires_in > 0);
  assert.deepEqual(login.body.twitch, { channel_id: '9001', role: 'viewer', opaque_user_id: 'U4242e2e' });
  assert.equal(me.status, 200, `me: ${JSON.stringify(me.body)}`);
  assert.equal(me.body.user.id, login.body.user.id, '/me names the user the login made');
  assert.equal(me.body.twitch.channel_id, '9001');
  await page.frameLocator('#panel').locator('#status', { hasText: `hello ${login.body.user.id}` }).waitFor();

  // What the watch services do: verify the tachigo token offline with the JWKS.
  const jwks = createRemoteJWKSet(new URL(`${api.url}/.well-known/jwks.json`));
  const { payload } = await jwtVerify(login.body.access_token, jwks, { audience: 'extension' });
  assert.equal(payload.sub, login.body.user.id);

  assert.deepEqual(await context.cookies(), [], 'the extension contract sets no cookies');
}));

test('refusals reach the panel as readable JSON errors', { timeout: 60_000 }, h.guard(async () => {
  const forged = await runPanel(await mintExtensionJwt({ secretB64: randomBytes(32).toString('base64') }));
  assert.equal(forged.error, undefined, `the panel's fetch failed: ${forged.error}`);
  assert.equal(forged.login.status, 401);
  assert.equal(forged.login.body?.error?.code, 'invalid_extension_token');
  assert.equal(forged.me, undefined);

  const unshared = await runPanel(await mintExtensionJwt({ userId: null, opaque: 'A0anonymous' }));
  assert.equal(unshared.login.status, 403);
  assert.equal(unshared.login.body?.error?.code, 'identity_share_required');
}));
