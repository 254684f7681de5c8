// The client snippets of docs/contracts/*.md, read from the markdown when a
// scenario runs, so that the code a reader copies is the code the suite runs.
// A snippet is the fenced code block right after a `<!-- snippet: NAME -->`
// line. Browser snippets are bundled with their npm imports by esbuild; Node
// snippets are compiled to a module under test-results/snippets/ (TypeScript
// loses its types, nothing else changes) and imported, their npm imports
// resolved from the suite's node_modules.

import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import * as esbuild from 'esbuild';

import { E2E_DIR, REPO_DIR, RESULTS_DIR } from './harness.js';

const CONTRACTS_DIR = path.join(REPO_DIR, 'docs', 'contracts');

/**
 * The code of snippet `name` in docs/contracts/`doc` and its fence's language.
 * Throws when the marker is missing, appears twice, or is not followed by a fence.
 */
export function docSnippet(doc, name) {
  const text = fs.readFileSync(path.join(CONTRACTS_DIR, doc), 'utf8');
  const lines = text.split('\n');
  const marker = `<!-- snippet: ${name} -->`;
  const at = lines.flatMap((line, i) => (line.trim() === marker ? [i] : []));
  if (at.length !== 1) throw new Error(`${doc}: ${at.length} "${marker}" lines (want exactly one)`);
  let open = at[0] + 1;
  while (open < lines.length && lines[open].trim() === '') open += 1;
  const fence = /^(`{3,})(\w*)/.exec(lines[open] ?? '');
  if (!fence) throw new Error(`${doc}: no code fence after "${marker}"`);
  const close = lines.findIndex((line, i) => i > open && line.trim() === fence[1]);
  if (close < 0) throw new Error(`${doc}: the fence after "${marker}" is never closed`);
  return { lang: fence[2], code: `${lines.slice(open + 1, close).join('\n')}\n` };
}

const LOADERS = { js: 'js', javascript: 'js', ts: 'ts', typescript: 'ts' };

/** Bundles snippet `name` of `doc` into one ES module; `entry` may import it as `snippet:NAME`. */
async function bundleSnippet(doc, name, { platform, define = {}, entry }) {
  const { lang, code } = docSnippet(doc, name);
  const loader = LOADERS[lang];
  if (!loader) throw new Error(`${doc} ${name}: a \`${lang}\` block is not JavaScript or TypeScript`);
  const fromDoc = {
    name: 'doc-snippet',
    setup(build) {
      build.onResolve({ filter: /^snippet:/ }, (args) => ({ path: args.path, namespace: 'doc-snippet' }));
      build.onLoad({ filter: /.*/, namespace: 'doc-snippet' }, () => ({ contents: code, loader, resolveDir: E2E_DIR }));
    },
  };
  const result = await esbuild.build({
    stdin: { contents: entry ?? `export * from 'snippet:${name}';`, resolveDir: E2E_DIR, loader: 'js' },
    bundle: true, write: false, format: 'esm', platform,
    packages: platform === 'node' ? 'external' : undefined,
    target: platform === 'browser' ? 'chrome120' : 'node20',
    define, plugins: [fromDoc], logLevel: 'silent',
  });
  return result.outputFiles[0].text;
}

/**
 * A browser script for a page: snippet `name` of `doc` with its imports
 * bundled and `define` applied (build-time constants such as
 * `process.env.TACHIGO_API_URL`), its exports on `window.snippet`.
 */
export function browserSnippet(doc, name, define = {}) {
  return bundleSnippet(doc, name, {
    platform: 'browser',
    define: { 'process.env.NODE_ENV': '"production"', ...define },
    entry: `import * as exported from 'snippet:${name}'; window.snippet = exported;`,
  });
}

/**
 * Snippet `name` of `doc` as a Node module, imported; resolves with its
 * exports. A snippet that reads `process.env` reads it here, once.
 */
export async function importSnippet(doc, name) {
  const dir = path.join(RESULTS_DIR, 'snippets');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.mjs`);
  fs.writeFileSync(file, await bundleSnippet(doc, name, { platform: 'node' }));
  return import(pathToFileURL(file).href);
}
