// Loads the packaged extension the way VS Code would, outside this folder
// (so that only the .vsix's own node_modules can satisfy its requires), with
// a stand-in for the 'vscode' module: a .vsix that misses a runtime
// dependency fails here instead of in the user's editor.
// Usage: node check-vsix.js FILE.vsix
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Module = require('node:module');

const vsix = path.resolve(process.argv[2] || '');
if (!process.argv[2] || !fs.existsSync(vsix)) {
  console.error(`check-vsix: no such file: ${process.argv[2] || '(none given)'}`);
  process.exit(2);
}
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infuse-vsix-'));
try {
  try {
    execFileSync('unzip', ['-q', vsix, '-d', dir]);
  } catch {
    execFileSync('python3', ['-c', 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])', vsix, dir]);
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'extension', 'package.json'), 'utf8'));
  const files = fs.readdirSync(path.join(dir, 'extension')).map((f) => f.toLowerCase());
  if (!files.includes('readme.md')) throw new Error('the .vsix has no README.md');
  if (!fs.existsSync(path.join(dir, 'extension', pkg.main))) throw new Error(`the .vsix has no ${pkg.main}`);
  const stub = new Proxy(function () {}, {
    get: (_, k) => (k === Symbol.toPrimitive ? () => '' : stub),
    construct: () => stub,
    apply: () => stub,
  });
  const load = Module._load;
  Module._load = function (request, ...rest) {
    return request === 'vscode' ? stub : load.call(this, request, ...rest);
  };
  const ext = require(path.join(dir, 'extension', pkg.main));
  if (typeof ext.activate !== 'function' || typeof ext.deactivate !== 'function') {
    throw new Error('the packaged extension does not export activate and deactivate');
  }
  console.log(`check-vsix: ${path.basename(vsix)} loads (${pkg.name} ${pkg.version}, main ${pkg.main})`);
} catch (err) {
  console.error(`check-vsix: ${err.message}`);
  process.exitCode = 1;
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
