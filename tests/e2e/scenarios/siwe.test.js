// Scenario: Sign-In with Ethereum (docs/contracts/siwe.md) with Better Auth's
// `siweClient` and viem in Chromium: viem's createSiweMessage writes the
// EIP-4361 message, a viem private-key account signs it (EIP-191), and the
// frontend code is the snippet of the doc itself, read out of the markdown
// here and bundled into the page, so the documented code is what runs. The
// page is on http://localhost:PAGES, the API on http://localhost:API.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import * as esbuild from 'esbuild';

import { E2E_DIR, Harness, REPO_DIR, freePort } from '../lib/harness.js';

const h = new Harness('siwe');
const DOC = path.join(REPO_DIR, 'docs/contracts/siwe.md');
let api; let pages;

/** The one ```js block under "## SIWE from the browser" in the doc. */
function docSnippet() {
  const doc = fs.readFileSync(DOC, 'utf8');
  const section = doc.split(/^## /m).find((s) => s.startsWith('SIWE from the browser'));
  assert.ok(section, 'docs/contracts/siwe.md has a "SIWE from the browser" section');
  const blocks = [...section.matchAll(/```js\n([\s\S]*?)```/g)];
  assert.equal(blocks.length, 1, 'the section has exactly one js block');
  return blocks[0][1];
}

/** pages/siwe.js with `doc:siwe-snippet` resolved to the doc's block, as Next.js would inline the API URL. */
async function bundlePage(apiUrl) {
  const snippet = docSnippet();
  const result = await esbuild.build({
    entryPoints: [path.join(E2E_DIR, 'pages/siwe.js')],
    bundle: true, write: false, format: 'esm', platform: 'browser', target: 'chrome120',
    define: { 'process.env.NODE_ENV': '"production"', 'process.env.NEXT_PUBLIC_API_URL': JSON.stringify(apiUrl) },
    logLevel: 'silent',
    plugins: [{
      name: 'doc-snippet',
      setup(build) {
        build.onResolve({ filter: /^doc:siwe-snippet$/ }, () => ({ path: DOC, namespace: 'doc' }));
        build.onLoad({ filter: /.*/, namespace: 'doc' }, () => ({ contents: snippet, loader: 'js', resolveDir: E2E_DIR }));
      },
    }],
  });
  return result.outputFiles[0].text;
}

/** `tachigo_oauth_siwe_total{step="verify", outcome}` from /metrics (0 before the first). */
async function verifyCount(outcome) {
  const text = await (await fetch(`http://127.0.0.1:${api.port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('tachigo_oauth_siwe_total{')
    && l.includes('step="verify"') && l.includes(`outcome="${outcome}"`));
  return line ? Number(line.split(' ').pop()) : 0;
}

const sessionCookie = async (ctx) => (await ctx.cookies()).find((c) => c.name === 'tachigo.session_token');

/** A fresh browser on the app page. */
async function openApp() {
  const context = await h.newContext();
  const page = await context.newPage();
  await page.goto(`${pages.localhost}/siwe.html`);
  assert.equal((await page.evaluate(() => window.hydrated)).data, null, 'no session yet');
  return { context, page };
}

before(async () => {
  const apiPort = await freePort();
  const apiUrl = `http://localhost:${apiPort}`;
  const bundled = await bundlePage(apiUrl);
  pages = await h.startPages({
    routes: { '/bundles/siwe.js': { type: 'text/javascript; charset=utf-8', body: bundled } },
  });
  api = await h.startServer({
    port: apiPort,
    env: {
      TACHIGO__SERVER__TRUSTED_ORIGINS: JSON.stringify([pages.localhost]),
      TACHIGO__OAUTH__FRONTEND_URL: pages.localhost,
    },
  });
  await h.launchBrowser();
}, { timeout: 90_000 });

after(() => h.stop(), { timeout: 30_000 });

test('the documented snippet signs a private-key wallet in through siweClient', { timeout: 30_000 }, h.guard(async () => {
  const { context, page } = await openApp();
  const wallet = await page.evaluate(() => window.siwe.newWallet());
  const r = await page.evaluate(({ key }) => window.siwe.signIn(key, 1), wallet);
  assert.equal(r.error, null, `verify: ${JSON.stringify(r.error)}`);
  assert.equal(r.data.success, true);
  assert.deepEqual({ walletAddress: r.data.user.walletAddress, chainId: r.data.user.chainId },
    { walletAddress: wallet.address, chainId: 1 });
  assert.equal(typeof r.data.token, 'string');

  const cookie = await sessionCookie(context);
  assert.ok(cookie, 'the browser stored tachigo.session_token');
  assert.deepEqual({ httpOnly: cookie.httpOnly, sameSite: cookie.sameSite, path: cookie.path },
    { httpOnly: true, sameSite: 'Lax', path: '/' });
  const session = await page.evaluate(() => window.siwe.getSession());
  assert.equal(session.data.user.id, r.data.user.id);
  assert.equal(session.data.user.name, wallet.address);
  assert.equal(session.data.user.email, null);
  const accounts = await page.evaluate(() => window.siwe.listAccounts());
  assert.deepEqual(accounts.data.map((a) => [a.providerId, a.accountId]), [['siwe', `eip155:1:${wallet.address}`]]);

  // Reloaded, the app is signed in; another browser with the same wallet is the same user.
  await page.reload();
  assert.equal((await page.evaluate(() => window.hydrated)).data.user.id, r.data.user.id);
  const other = await openApp();
  const again = await other.page.evaluate(({ key }) => window.siwe.signIn(key, 1), wallet);
  assert.equal(again.error, null);
  assert.equal(again.data.user.id, r.data.user.id);
  assert.notEqual(again.data.token, r.data.token);
}));

test('wrong domain, replayed nonce, expired message, another address\'s and a malformed signature are refused, nothing stored', { timeout: 60_000 }, h.guard(async () => {
  const signedUpBefore = await verifyCount('signed_up');
  const signedInBefore = await verifyCount('signed_in');
  const { context, page } = await openApp();
  const wallet = await page.evaluate(() => window.siwe.newWallet());
  const mallory = await page.evaluate(() => window.siwe.newWallet());
  const now = Date.now();
  const cases = [
    ['wrong domain', { domain: 'evil.example' }, 401, 'UNAUTHORIZED_SIWE_MESSAGE_MISMATCH'],
    ['URI of another site', { uri: 'https://evil.example/login' }, 401, 'UNAUTHORIZED_SIWE_MESSAGE_MISMATCH'],
    ['expired message', { issuedAt: now - 2000, expirationTime: now - 1000 }, 401, 'UNAUTHORIZED_SIWE_MESSAGE_EXPIRED'],
    ['not valid yet', { notBefore: now + 3_600_000 }, 401, 'UNAUTHORIZED_SIWE_MESSAGE_NOT_YET_VALID'],
    ['another address\'s signature', { signKey: mallory.key }, 401, 'UNAUTHORIZED_INVALID_SIWE_SIGNATURE'],
    ['malformed signature', { signature: '0xnot-a-signature' }, 400, 'INVALID_SIWE_SIGNATURE_FORMAT'],
    ['contract wallet signature', { signature: `0x${'ab'.repeat(97)}` }, 400, 'SIWE_CONTRACT_WALLET_UNSUPPORTED'],
  ];
  for (const [what, overrides, status, code] of cases) {
    const r = await page.evaluate((a) => window.siwe.attempt(a), { key: wallet.key, ...overrides });
    assert.equal(r.data, null, what);
    assert.deepEqual({ status: r.error.status, code: r.error.code }, { status, code }, `${what}: ${JSON.stringify(r.error)}`);
    // Spent: the same message, now signed by its own wallet, finds no nonce.
    const retry = await page.evaluate((a) => window.siwe.signAndVerify(a), { key: wallet.key, message: r.message });
    assert.deepEqual({ status: retry.error.status, code: retry.error.code },
      { status: 401, code: 'UNAUTHORIZED_INVALID_OR_EXPIRED_NONCE' }, `${what}: retry`);
    assert.equal(await sessionCookie(context), undefined, `${what}: no session cookie`);
  }

  // Replayed: a message that signed in once, sent again from another browser.
  const first = await openApp();
  const ok = await first.page.evaluate((a) => window.siwe.attempt(a), { key: wallet.key });
  assert.equal(ok.error, null, `the honest attempt: ${JSON.stringify(ok.error)}`);
  const replay = await page.evaluate((b) => window.siwe.verify(b), { message: ok.message, signature: ok.signature });
  assert.deepEqual({ status: replay.error.status, code: replay.error.code },
    { status: 401, code: 'UNAUTHORIZED_INVALID_OR_EXPIRED_NONCE' });
  assert.equal(await sessionCookie(context), undefined, 'replay: no session cookie');
  assert.equal((await page.evaluate(() => window.siwe.getSession())).data, null);

  // Nothing stored by any refusal: the one honest attempt made the one user.
  assert.equal(await verifyCount('signed_up'), signedUpBefore + 1);
  assert.equal(await verifyCount('signed_in'), signedInBefore);
  const accounts = await first.page.evaluate(() => window.siwe.listAccounts());
  assert.deepEqual(accounts.data.map((a) => a.accountId), [`eip155:1:${wallet.address}`]);
}));
