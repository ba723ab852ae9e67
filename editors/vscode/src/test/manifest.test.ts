// The manifest and the code agree: every command the manifest contributes is
// registered by the extension, and the extension registers no other.

import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

const manifest = require('../../package.json');

test('contributed commands are exactly the registered ones', () => {
  const code = fs.readFileSync(path.join(__dirname, '..', 'extension.js'), 'utf8');
  const registered = [...code.matchAll(/registerCommand\('([^']+)'/g)].map((m) => m[1]).sort();
  const contributed = (manifest.contributes.commands as { command: string }[]).map((c) => c.command).sort();
  assert.deepEqual(registered, contributed);
});

test('the engine matches the typings and the client library', () => {
  const modules = path.join(__dirname, '..', '..', 'node_modules');
  const read = (name: string) => JSON.parse(fs.readFileSync(path.join(modules, name, 'package.json'), 'utf8'));
  const lib = read('vscode-languageclient');
  const types = read('@types/vscode');
  assert.equal(manifest.engines.vscode, lib.engines.vscode, 'engines.vscode is what vscode-languageclient needs');
  assert.equal(`^${types.version}`, manifest.engines.vscode, '@types/vscode is the oldest supported VS Code');
  assert.match(lib.version, /^10\./, 'vscode-languageclient 10 (inline completion built in)');
});
