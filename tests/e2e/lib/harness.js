// The shared harness of the browser suite: the real server binary, the pages on
// their own origins, a real OpenID provider, and Debian's Chromium driven by
// playwright-core. Every scenario file makes one Harness, starts what it needs in
// `before`, and calls `stop()` in `after`; everything it starts is torn down there,
// and killed on process exit if `after` never ran.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';

export const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = path.resolve(E2E_DIR, '../..');
export const RESULTS_DIR = path.join(E2E_DIR, 'test-results');
const PAGES_DIR = path.join(E2E_DIR, 'pages');
// TACHIGO_BIN (relative to the repository) overrides the release binary.
const SERVER_BIN = path.resolve(REPO_DIR, process.env.TACHIGO_BIN ?? 'target/release/tachigo-auth');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// run.sh kills whatever is still listed here when the suite ends, however it ended.
const PID_FILE = path.join(RESULTS_DIR, '.pids');

// The flags this closed network needs: without the background-networking ones
// Chromium keeps trying to reach Google and gets refused. Playwright adds
// --headless and a fresh temporary --user-data-dir itself.
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Rejects after `ms` with `what` in the message: nothing in the suite waits forever. */
export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const givenPorts = new Set();

/** Whether 127.0.0.1:`port` can be listened on right now. */
function canListen(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A port that was free a moment ago (the server's public URL must be known
 * before it starts). It comes from below the kernel's ephemeral range (32768
 * and up), which port-0 listeners and every outgoing connection draw from, so
 * none of them can take it before the server binds; never the same twice.
 */
export async function freePort() {
  let end = 32768;
  try {
    const start = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]);
    if (start > 16000) end = start;
  } catch {
    // not Linux: keep the default
  }
  for (let i = 0; i < 10000; i++) {
    const port = 15000 + Math.floor(Math.random() * (end - 15000));
    if (givenPorts.has(port)) continue;
    if (await canListen(port)) {
      givenPorts.add(port);
      return port;
    }
  }
  throw new Error(`no free loopback port below ${end}`);
}

const isLoopback = (url) => ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);

/** Starts an http.Server on 127.0.0.1 (port 0 = any) and resolves with its port. */
function listen(server, port = 0) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server.address().port));
  });
}

function closeServer(server) {
  server.closeAllConnections?.();
  return withTimeout(new Promise((r) => server.close(() => r())), 5000, 'closing a test http server');
}

// The client pages import npm packages (axios, better-auth/client); esbuild turns
// each entry into one browser ES module the first time a page asks for it.
const bundles = new Map();
function bundle(entry) {
  if (!bundles.has(entry)) {
    bundles.set(entry, esbuild.build({
      entryPoints: [path.join(PAGES_DIR, entry)],
      bundle: true, write: false, format: 'esm', platform: 'browser', target: 'chrome120',
      define: { 'process.env.NODE_ENV': '"production"' },
      logLevel: 'silent',
    }).then((r) => r.outputFiles[0].text));
  }
  return bundles.get(entry);
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };

export class Harness {
  constructor(name) {
    this.name = name;
    this.children = [];
    this.servers = [];
    this.browser = null;
    this.contexts = [];
    fs.mkdirSync(RESULTS_DIR, { recursive: true });
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), `tachigo-e2e-${name}-`));
    // Last resort when `after` never ran (a crash, a signal from the runner or
    // run.sh's timeout): kill the server synchronously. Chromium exits by itself
    // when its pipe to Playwright closes.
    const killChildren = () => {
      for (const child of this.children) if (child.exitCode === null) child.kill('SIGKILL');
      fs.rmSync(this.tmp, { recursive: true, force: true });
    };
    process.once('exit', killChildren);
    for (const signal of ['SIGINT', 'SIGTERM']) {
      process.once(signal, () => { killChildren(); process.exit(128 + os.constants.signals[signal]); });
    }
  }

  /**
   * The real server binary over a fresh data directory, configured through
   * `TACHIGO__*` environment variables only, on 127.0.0.1:`port`. The browser
   * reaches it as http://localhost:`port` (the `public_url`).
   * `users` are created with the CLI before the server opens the database.
   * `config` (TOML text, optional) is written to a file passed as `--config`,
   * for what environment variables cannot say well (`[[clients]]` tables).
   */
  async startServer({ port, env = {}, users = [], config }) {
    const dataDir = path.join(this.tmp, 'data');
    const configArgs = [];
    if (config !== undefined) {
      const configPath = path.join(this.tmp, 'config.toml');
      fs.writeFileSync(configPath, config, { mode: 0o600 });
      configArgs.push('--config', configPath);
    }
    const baseEnv = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('TACHIGO__')),
    );
    const fullEnv = {
      ...baseEnv,
      RUST_LOG: process.env.RUST_LOG ?? 'info',
      NO_COLOR: '1', // plain text in test-results/*-server.log
      TACHIGO__SERVER__PUBLIC_URL: `http://localhost:${port}`,
      TACHIGO__COOKIES__SECURE: 'false',
      ...env,
    };
    if (!fs.existsSync(SERVER_BIN)) throw new Error(`${SERVER_BIN} is missing: cargo build --release -p tachigo-auth`);
    for (const user of users) {
      const args = ['user', 'create', ...configArgs, '--data', dataDir, '--email', user.email, '--password-stdin'];
      if (user.name) args.push('--name', user.name);
      const r = spawnSync(SERVER_BIN, args, { input: `${user.password}\n`, env: fullEnv, timeout: 30_000, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`user create ${user.email} failed: ${r.stderr || r.error}`);
    }
    const logPath = path.join(RESULTS_DIR, `${this.name}-server.log`);
    const log = fs.openSync(logPath, 'w');
    const child = spawn(SERVER_BIN, ['serve', ...configArgs, '--listen', `127.0.0.1:${port}`, '--data', dataDir], {
      env: fullEnv, stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    this.children.push(child);
    fs.appendFileSync(PID_FILE, `${child.pid}\n`);
    const url = `http://localhost:${port}`;
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) {
        throw new Error(`the server exited (${child.exitCode}) at start:\n${fs.readFileSync(logPath, 'utf8').slice(-3000)}`);
      }
      try {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) });
        if (res.ok) break;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) throw new Error(`the server was not ready in 20 s; log: ${logPath}`);
      await sleep(100);
    }
    this.server = { url, port, logPath, child };
    return this.server;
  }

  /** The tail of the server's log, for failure messages. */
  serverLog(chars = 4000) {
    return this.server ? fs.readFileSync(this.server.logPath, 'utf8').slice(-chars) : '';
  }

  /**
   * Serves tests/e2e/pages/ on 127.0.0.1:`port`; `/bundles/NAME.js` is
   * pages/NAME.js bundled with its npm imports. The same listener is one origin
   * as http://localhost:PORT and a different, cross-site one as http://127.0.0.1:PORT.
   * `routes` maps extra paths to HTML, or to `{ type, body }` (e.g. a probe page
   * under /api/v1/auth/, or the page's environment as a script).
   */
  async startPages({ port = 0, routes = {} } = {}) {
    const server = http.createServer(async (req, res) => {
      try {
        const { pathname } = new URL(req.url, 'http://pages');
        let body; let type;
        if (routes[pathname] !== undefined) {
          const route = routes[pathname];
          ({ body, type } = typeof route === 'string' ? { body: route, type: TYPES['.html'] } : route);
        } else if (pathname.startsWith('/bundles/')) {
          body = await bundle(path.basename(pathname)); type = TYPES['.js'];
        } else {
          const file = path.join(PAGES_DIR, path.normalize(pathname).replace(/^(\.\.[/\\])+/, ''));
          if (!file.startsWith(PAGES_DIR) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
            res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
            return;
          }
          body = fs.readFileSync(file); type = TYPES[path.extname(file)] ?? 'application/octet-stream';
        }
        res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
      } catch (e) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(String(e?.stack ?? e));
      }
    });
    const bound = await listen(server, port);
    this.servers.push(server);
    return { port: bound, localhost: `http://localhost:${bound}`, ip: `http://127.0.0.1:${bound}` };
  }

  /**
   * A native app's loopback redirect receiver (RFC 8252 §7.3) on
   * http://127.0.0.1:<any free port>: it records every request it gets (as a
   * URL with the port, the way the app sees it) and answers a small HTML page.
   * `waitFor(pathname, from)` resolves with the first request for `pathname`
   * at index `from` or later of `requests`.
   */
  async startLoopbackReceiver() {
    const requests = [];
    const server = http.createServer((req, res) => {
      requests.push(new URL(req.url, `http://127.0.0.1:${server.address().port}`));
      res.writeHead(200, { 'content-type': TYPES['.html'], 'cache-control': 'no-store' })
        .end('<!doctype html><html><head><meta charset="utf-8"><title>e2e app</title></head>'
          + '<body><h1>Done: you can close this window.</h1></body></html>');
    });
    const port = await listen(server);
    this.servers.push(server);
    const origin = `http://127.0.0.1:${port}`;
    return {
      port,
      origin,
      requests,
      async waitFor(pathname, from = 0, ms = 15_000) {
        const end = Date.now() + ms;
        for (;;) {
          const hit = requests.slice(from).find((u) => u.pathname === pathname);
          if (hit) return hit;
          if (Date.now() > end) {
            throw new Error(`no request for ${origin}${pathname} within ${ms} ms; got: ${requests.slice(from).map(String).join(', ') || 'none'}`);
          }
          await sleep(25);
        }
      },
    };
  }

  /**
   * `oidc-provider` on http://127.0.0.1:`port`, the stand-in for Google and Twitch:
   * one confidential client whose redirect URI is the server's callback, accounts
   * `<login>@example.test` with a verified email, and the package's own
   * development login and consent pages (devInteractions) for the browser to fill in.
   */
  async startOidcProvider({ port, redirectUris }) {
    const { default: Provider } = await import('oidc-provider');
    const { generateKeyPair, exportJWK } = await import('jose');
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    const issuer = `http://127.0.0.1:${port}`;
    const client = { clientId: 'tachigo-e2e', clientSecret: randomBytes(24).toString('hex') };
    const provider = new Provider(issuer, {
      clients: [{
        client_id: client.clientId,
        client_secret: client.clientSecret,
        redirect_uris: redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
      }],
      jwks: { keys: [{ ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'e2e' }] },
      cookies: { keys: [randomBytes(16).toString('hex')] },
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
      findAccount: (ctx, id) => ({
        accountId: id,
        claims: () => ({ sub: id, email: `${id}@example.test`, email_verified: true, name: `E2E ${id}` }),
      }),
      features: { devInteractions: { enabled: true } },
      pkce: { required: () => true },
      ttl: { Interaction: 600, Session: 3600, Grant: 3600, AuthorizationCode: 60, AccessToken: 600, IdToken: 600 },
    });
    const server = http.createServer(provider.callback());
    await listen(server, port);
    this.servers.push(server);
    return { issuer, ...client, provider };
  }

  /**
   * A real SMTP server: aiosmtpd (Python) on 127.0.0.1:`port`, keeping every
   * mail it accepts in a Maildir that `mails()` reads back and parses. Point
   * the server at it with `TACHIGO__EMAIL__SMTP_URL: smtp.url`. Installs
   * aiosmtpd with pip when Python cannot import it.
   */
  async startSmtp({ port } = {}) {
    const importable = () => spawnSync('python3', ['-c', 'import aiosmtpd'], { timeout: 30_000 }).status === 0;
    if (!importable()) {
      spawnSync('python3', ['-m', 'pip', 'install', '--quiet', 'aiosmtpd==1.4.6'], { stdio: 'inherit', timeout: 180_000 });
      if (!importable()) throw new Error('the SMTP server needs aiosmtpd: python3 -m pip install aiosmtpd');
    }
    const smtpPort = port ?? await freePort();
    const maildir = path.join(this.tmp, 'maildir');
    const child = spawn('python3', ['-m', 'aiosmtpd', '-n', '-l', `127.0.0.1:${smtpPort}`,
      '-c', 'aiosmtpd.handlers.Mailbox', maildir], { stdio: 'ignore' });
    this.children.push(child);
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`aiosmtpd exited (${child.exitCode}) at start`);
      const open = await new Promise((resolve) => {
        const socket = net.connect(smtpPort, '127.0.0.1', () => { socket.end(); resolve(true); });
        socket.on('error', () => resolve(false));
      });
      if (open) break;
      if (Date.now() > deadline) throw new Error('aiosmtpd did not listen within 20 s');
      await sleep(50);
    }
    const mails = () => ['new', 'cur'].flatMap((sub) => {
      const dir = path.join(maildir, sub);
      if (!fs.existsSync(dir)) return [];
      // Python's Maildir names start `<seconds>.M<microseconds>P…`, the
      // microseconds not zero-padded: order by both as numbers.
      const when = (file) => {
        const m = /^(\d+)\.M(\d+)P/.exec(file);
        return m ? Number(m[1]) * 1e6 + Number(m[2]) : 0;
      };
      return fs.readdirSync(dir)
        .sort((a, b) => when(a) - when(b) || a.localeCompare(b))
        .map((file) => parseMail(fs.readFileSync(path.join(dir, file), 'utf8')));
    });
    const mailsTo = (to) => mails().filter((m) => m.to.toLowerCase() === to.toLowerCase());
    return {
      port: smtpPort,
      // tls=none: allowed for loopback SMTP servers only.
      url: `smtp://127.0.0.1:${smtpPort}?tls=none`,
      mails,
      mailsTo,
      /** Waits for the `n`th mail (1-based) to `to` and returns it. */
      async waitForMail(to, n = 1, ms = 15_000) {
        const end = Date.now() + ms;
        for (;;) {
          const got = mailsTo(to);
          if (got.length >= n) return got[n - 1];
          if (Date.now() > end) throw new Error(`${n} mail(s) to ${to} within ${ms} ms; got ${got.length}`);
          await sleep(50);
        }
      },
    };
  }

  /** Debian's Chromium, headless, with the flags above. */
  async launchBrowser() {
    this.browser = await withTimeout(chromium.launch({
      executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000,
    }), 40_000, 'launching chromium');
    return this.browser;
  }

  /**
   * A fresh browser context (its own cookie jar). Anything not on loopback is
   * aborted at once (oidc-provider's pages @import a web font; there is no
   * network here), and console errors are kept for failure messages.
   */
  async newContext() {
    const context = await this.browser.newContext();
    context.setDefaultTimeout(15_000);
    context.setDefaultNavigationTimeout(15_000);
    await context.route((url) => !isLoopback(url), (route) => route.abort());
    this.contexts.push(context);
    context.consoleLines = [];
    context.on('console', (m) => context.consoleLines.push(`[${m.type()}] ${m.text()}`));
    context.on('weberror', (e) => context.consoleLines.push(`[pageerror] ${e.error()}`));
    return context;
  }

  /**
   * Wraps a test body: on failure, every open page is screenshotted into
   * test-results/ and the browser console and server log tail are attached.
   */
  guard(fn) {
    return async (t) => {
      try {
        await fn(t);
      } catch (err) {
        const slug = `${this.name}-${t.name}`.replace(/[^a-z0-9]+/gi, '-').toLowerCase().slice(0, 80);
        const shots = [];
        let n = 0;
        for (const context of this.contexts) {
          for (const page of context.pages()) {
            const file = path.join(RESULTS_DIR, `${slug}-${n++}.png`);
            try {
              await page.screenshot({ path: file, fullPage: true, timeout: 5000 });
              shots.push(`${path.relative(REPO_DIR, file)} (${page.url()})`);
            } catch { /* the page may be gone */ }
          }
        }
        const consoleLines = this.contexts.flatMap((c) => c.consoleLines).slice(-20);
        err.message += `\n  screenshots: ${shots.join(', ') || 'none'}`
          + `\n  browser console:\n    ${consoleLines.join('\n    ') || '(empty)'}`
          + `\n  server log tail (${this.server ? path.relative(REPO_DIR, this.server.logPath) : 'no server'}):\n${this.serverLog(1500)}`;
        throw err;
      }
    };
  }

  /** Tears everything down, each step bounded; safe to call twice. */
  async stop() {
    const steps = [];
    if (this.browser) {
      const browser = this.browser;
      this.browser = null;
      steps.push(withTimeout(browser.close(), 10_000, 'closing chromium').catch(() => {}));
    }
    for (const server of this.servers.splice(0)) steps.push(closeServer(server).catch(() => {}));
    for (const child of this.children) {
      if (child.exitCode !== null) continue;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      steps.push(withTimeout(exited, 5000, 'server shutdown').catch(() => child.kill('SIGKILL')));
    }
    await Promise.all(steps);
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}

// ----- mail, as the SMTP server stored it -----

function splitHeadBody(text) {
  const gap = /\r?\n\r?\n/.exec(text);
  const head = gap ? text.slice(0, gap.index) : text;
  const body = gap ? text.slice(gap.index + gap[0].length) : '';
  const headers = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { headers, body };
}

function decodeTransfer(body, encoding = '7bit') {
  switch (encoding.toLowerCase()) {
    case 'base64':
      return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    case 'quoted-printable':
      return Buffer.from(
        body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, hex) => String.fromCharCode(parseInt(hex, 16))),
        'latin1',
      ).toString('utf8');
    default:
      return body;
  }
}

function collectBodies(text, out) {
  const { headers, body } = splitHeadBody(text);
  const type = (headers['content-type'] ?? 'text/plain').toLowerCase();
  const boundary = /boundary="?([^";]+)"?/i.exec(headers['content-type'] ?? '')?.[1];
  if (type.startsWith('multipart/') && boundary) {
    for (const part of body.split(`--${boundary}`).slice(1)) {
      if (part.startsWith('--')) break;
      collectBodies(part.replace(/^\r?\n/, ''), out);
    }
  } else if (type.startsWith('text/html')) {
    out.html += decodeTransfer(body, headers['content-transfer-encoding']);
  } else {
    out.text += decodeTransfer(body, headers['content-transfer-encoding']);
  }
  return headers;
}

/**
 * One stored mail: `{to, subject, text, html, link}`, where `link` is the
 * first http(s) URL of the plain-text body (the verification or reset link).
 */
export function parseMail(raw) {
  const out = { text: '', html: '' };
  const headers = collectBodies(raw, out);
  const to = headers.to ?? '';
  const link = /https?:\/\/\S+/.exec(out.text)?.[0] ?? null;
  return { to: (/<([^>]+)>/.exec(to)?.[1] ?? to).trim(), subject: headers.subject ?? '', ...out, link };
}
