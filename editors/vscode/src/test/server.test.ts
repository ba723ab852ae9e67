// The settings the extension produces, sent to the real `infuse serve` over
// stdio with the LSP library vscode-languageclient is built on: the server
// must accept them without a warning, and answer inline completion and
// infuse/stats the way the extension reads them. The binary is $INFUSE_BIN,
// else bin/infuse at the repository root; without one the test is skipped.

import { strict as assert } from 'node:assert';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  ProtocolConnection,
  StreamMessageReader,
  StreamMessageWriter,
  createProtocolConnection,
} from 'vscode-languageserver-protocol/node';

import { parseStats, readSettings, serverSettings } from '../config';

const root = path.resolve(__dirname, '../../../..');
const bin = process.env.INFUSE_BIN || path.join(root, 'bin', 'infuse');
const haveBin = fs.existsSync(bin);

const manifest = require('../../package.json');
const properties: Record<string, { default: unknown }> = manifest.contributes.configuration.properties;
const defaults = (overrides: Record<string, unknown>) => (key: string) =>
  key in overrides ? overrides[key] : properties[`infuse.${key}`]?.default;

interface Session {
  proc: ChildProcess;
  conn: ProtocolConnection;
  messages: { type: number; message: string }[];
  stderr: string[];
}

async function startServer(initializationOptions: unknown): Promise<Session> {
  const proc = spawn(bin, ['serve'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  proc.stderr!.on('data', (d) => stderr.push(String(d)));
  const conn = createProtocolConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
  const messages: { type: number; message: string }[] = [];
  conn.onNotification('window/showMessage', (p: { type: number; message: string }) => {
    messages.push(p);
  });
  conn.onRequest('window/workDoneProgress/create', () => null);
  conn.onNotification('$/progress', () => {});
  conn.listen();
  const init = (await conn.sendRequest('initialize', {
    processId: process.pid,
    rootUri: null,
    capabilities: {
      window: { workDoneProgress: true },
      workspace: { configuration: true },
      textDocument: { inlineCompletion: {}, completion: {} },
    },
    initializationOptions,
  })) as { capabilities: Record<string, unknown> };
  assert.ok(init.capabilities.inlineCompletionProvider, 'the server offers inline completion');
  await conn.sendNotification('initialized', {});
  return { proc, conn, messages, stderr };
}

async function stop(s: Session): Promise<void> {
  const exited = new Promise<number | null>((resolve) => s.proc.on('exit', (code) => resolve(code)));
  await s.conn.sendRequest('shutdown');
  await s.conn.sendNotification('exit');
  assert.equal(await exited, 0, `the server exited cleanly (stderr: ${s.stderr.join('')})`);
  s.conn.dispose();
}

test('the server takes the extension settings without a warning and completes', { skip: haveBin ? false : `no infuse binary at ${bin} (go build -o bin/infuse ./cmd/infuse, or set INFUSE_BIN)` }, async () => {
  const initial = readSettings(defaults({}));
  assert.deepEqual(initial.problems, []);
  const s = await startServer({ infuse: serverSettings(initial.settings, false) });
  try {
    const uri = 'file:///tmp/infuse-vscode-test/main.go';
    const text = 'package main\n\nfunc add(a, b int) int {\n\treturn \n}\n';
    await s.conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'go', version: 1, text } });

    // Every setting set, then paused: what the extension sends on a change.
    const full = readSettings(
      defaults({
        device: 'cpu',
        mode: 'single-line',
        maxTokens: 16,
        enable: { '*': true, markdown: false },
        debounceMs: 0,
        timeoutMs: 30000,
        prefixChars: 2000,
        suffixChars: 500,
        holeMarkers: ['/*?*/', '<HOLE>'],
      }),
    );
    assert.deepEqual(full.problems, []);
    await s.conn.sendNotification('workspace/didChangeConfiguration', { settings: { infuse: serverSettings(full.settings, false) } });

    const result = (await s.conn.sendRequest('textDocument/inlineCompletion', {
      textDocument: { uri },
      position: { line: 3, character: 8 },
      context: { triggerKind: 1 },
    })) as unknown;
    if (process.env.INFUSE_TEST_VERBOSE) console.log('inline completion:', JSON.stringify(result));
    const items = Array.isArray(result) ? result : (result as { items?: unknown[] } | null)?.items;
    assert.ok(Array.isArray(items), `a well-formed inline completion result: ${JSON.stringify(result)}`);
    for (const it of items as { insertText: unknown }[]) {
      assert.equal(typeof it.insertText, 'string');
      assert.ok(!(it.insertText as string).includes('\n'), 'single-line mode holds');
    }

    await s.conn.sendNotification('workspace/didChangeConfiguration', { settings: { infuse: serverSettings(full.settings, true) } });
    const paused = (await s.conn.sendRequest('textDocument/inlineCompletion', {
      textDocument: { uri },
      position: { line: 3, character: 8 },
      context: { triggerKind: 1 },
    })) as unknown;
    const pausedItems = Array.isArray(paused) ? paused : (paused as { items?: unknown[] } | null)?.items ?? [];
    assert.equal(pausedItems.length, 0, 'paused: no suggestion');

    const stats = parseStats(await s.conn.sendRequest('infuse/stats'));
    assert.ok(stats, 'infuse/stats has the shape the status bar reads');
    assert.equal(stats.requests, 2);
    assert.equal(stats.empty >= 1, true, 'the paused request was answered empty without the model');
    assert.deepEqual(s.messages, [], 'the server warned about the settings');

    // The check above can fail: a key the server does not know is reported.
    await s.conn.sendNotification('workspace/didChangeConfiguration', { settings: { infuse: { path: '/usr/bin/infuse' } } });
    await s.conn.sendRequest('infuse/stats');
    const warnings = s.messages as { type: number; message: string }[];
    assert.equal(warnings.length, 1, 'a raw client-only key is warned about');
    assert.match(warnings[0].message, /path/);
  } finally {
    await stop(s);
  }
});
