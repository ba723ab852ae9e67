// Drives infuse's language server over stdio with Microsoft's LSP client
// library (vscode-languageserver-protocol, which brings vscode-jsonrpc), the
// one VS Code's client is built on.
//
// The server is the command in INFUSE_LSP_SERVER (run.sh points it at the
// fakeserve binary: the real server with a deterministic stand-in model).
// With INFUSE_LSP_FAKE=1 the test also checks the stand-in's exact texts;
// without it, only what holds for any model.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const cp = require('node:child_process');
const lsp = require('vscode-languageserver-protocol/node');

const SERVER = process.env.INFUSE_LSP_SERVER;
const FAKE = process.env.INFUSE_LSP_FAKE === '1';
if (!SERVER) {
  throw new Error('set INFUSE_LSP_SERVER to the server command (test/lsp/run.sh does)');
}

// start spawns the server and connects a client to it.
function start() {
  const proc = cp.spawn('/bin/sh', ['-c', `exec ${SERVER}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  const conn = lsp.createProtocolConnection(
    new lsp.StreamMessageReader(proc.stdout),
    new lsp.StreamMessageWriter(proc.stdin),
  );
  const seen = { messages: [], progress: [], tokens: [] };
  conn.onNotification(lsp.ShowMessageNotification.type, (m) => seen.messages.push(m));
  conn.onProgress(lsp.WorkDoneProgress.type, 'infuse/load/0', (v) => seen.progress.push(v.kind));
  conn.onRequest(lsp.WorkDoneProgressCreateRequest.type, (p) => { seen.tokens.push(p.token); return null; });
  conn.listen();
  return { proc, conn, seen, exited, stderr: () => stderr };
}

const capabilities = {
  general: { positionEncodings: ['utf-16'] },
  window: { workDoneProgress: true },
  textDocument: {
    synchronization: { dynamicRegistration: false },
    completion: { completionItem: { snippetSupport: false } },
    inlineCompletion: { dynamicRegistration: false },
    codeAction: {
      codeActionLiteralSupport: { codeActionKind: { valueSet: ['refactor'] } },
      resolveSupport: { properties: ['edit'] },
    },
  },
};

async function expectError(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof lsp.ResponseError, `want a ResponseError, got ${err}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

const URI = 'file:///work/main.go';
// Line 3 holds an astral character: "𐐀" is two UTF-16 units.
const TEXT = 'package main\n\nfunc main() {\n\ts := "𐐀" + \n\t\n}\n';

test('a full session', async () => {
  const s = start();
  const { conn } = s;

  const init = await conn.sendRequest(lsp.InitializeRequest.type, {
    processId: process.pid, rootUri: 'file:///work', capabilities,
    initializationOptions: { infuse: { maxTokens: 48 } },
  });
  assert.equal(init.capabilities.positionEncoding, 'utf-16');
  assert.equal(init.capabilities.inlineCompletionProvider, true);
  assert.ok(init.capabilities.completionProvider);
  assert.equal(init.capabilities.textDocumentSync.change, lsp.TextDocumentSyncKind.Incremental);
  assert.equal(init.serverInfo.name, 'infuse');
  await conn.sendNotification(lsp.InitializedNotification.type, {});

  await conn.sendNotification(lsp.DidOpenTextDocumentNotification.type, {
    textDocument: { uri: URI, languageId: 'go', version: 1, text: TEXT },
  });

  // The end of line 3, after the astral character: a single-line completion.
  const endOfLine3 = { line: 3, character: '\ts := "𐐀" + '.length }; // JS counts UTF-16 units
  const single = await conn.sendRequest(lsp.InlineCompletionRequest.type, {
    textDocument: { uri: URI }, position: endOfLine3,
    context: { triggerKind: lsp.InlineCompletionTriggerKind.Automatic },
  });
  const items = Array.isArray(single) ? single : single.items;
  // A real model may have nothing to add; the stand-in always does.
  assert.ok(items.length === 1 || (!FAKE && items.length === 0), `items ${JSON.stringify(items)}`);
  for (const item of items) {
    assert.ok(!item.insertText.includes('\n'), 'single-line where text precedes the cursor');
    assert.deepEqual(item.range, { start: endOfLine3, end: endOfLine3 });
  }
  if (FAKE) assert.equal(items[0].insertText, 'completion()');

  // An empty line inside the block, invoked: a multi-line suggestion, and
  // its first line as a second candidate.
  const multi = await conn.sendRequest(lsp.InlineCompletionRequest.type, {
    textDocument: { uri: URI }, position: { line: 4, character: 1 },
    context: { triggerKind: lsp.InlineCompletionTriggerKind.Invoked },
  });
  if (FAKE) assert.deepEqual(multi.items.map((i) => i.insertText), ['first()\nsecond()', 'first()']);

  // Type "fir" into the suggestion: the rest comes from the cache.
  await conn.sendNotification(lsp.DidChangeTextDocumentNotification.type, {
    textDocument: { uri: URI, version: 2 },
    contentChanges: [{ range: { start: { line: 4, character: 1 }, end: { line: 4, character: 1 } }, text: 'fir' }],
  });
  const through = await conn.sendRequest(lsp.InlineCompletionRequest.type, {
    textDocument: { uri: URI }, position: { line: 4, character: 4 },
    context: { triggerKind: lsp.InlineCompletionTriggerKind.Automatic },
  });
  if (FAKE) assert.deepEqual(through.items.map((i) => i.insertText), ['st()\nsecond()']);

  // Classic completion, for clients without inline completion: one item
  // whose edit replaces the word typed so far.
  const list = await conn.sendRequest(lsp.CompletionRequest.type, {
    textDocument: { uri: URI }, position: { line: 4, character: 4 },
  });
  assert.equal(list.isIncomplete, true);
  assert.ok(list.items.length === 1 || (!FAKE && list.items.length === 0), `items ${JSON.stringify(list.items)}`);
  for (const item of list.items) {
    assert.deepEqual(item.textEdit.range, { start: { line: 4, character: 1 }, end: { line: 4, character: 4 } });
    assert.ok(item.textEdit.newText.startsWith('fir'));
  }
  if (FAKE) assert.equal(list.items[0].textEdit.newText, 'first()\nsecond()');

  // Cancellation through the client's token: $/cancelRequest, answered with
  // RequestCancelled.
  if (FAKE) {
    await conn.sendNotification(lsp.DidOpenTextDocumentNotification.type, {
      textDocument: { uri: 'file:///work/block.go', languageId: 'go', version: 1, text: 'BLOCK\n' },
    });
    const source = new lsp.CancellationTokenSource();
    const pending = conn.sendRequest(lsp.InlineCompletionRequest.type, {
      textDocument: { uri: 'file:///work/block.go' }, position: { line: 1, character: 0 },
      context: { triggerKind: lsp.InlineCompletionTriggerKind.Invoked },
    }, source.token);
    source.cancel();
    await expectError(pending, lsp.LSPErrorCodes.RequestCancelled);
  }

  // Fill holes: a code action, resolved into one edit.
  await conn.sendNotification(lsp.DidOpenTextDocumentNotification.type, {
    textDocument: { uri: 'file:///work/holes.go', languageId: 'go', version: 1, text: 'x := /*?*/ + /*?*/\n' },
  });
  const actions = await conn.sendRequest(lsp.CodeActionRequest.type, {
    textDocument: { uri: 'file:///work/holes.go' },
    range: { start: { line: 0, character: 0 }, end: { line: 0, character: 18 } },
    context: { diagnostics: [] },
  });
  assert.equal(actions.length, 1);
  assert.equal(actions[0].kind, 'refactor.rewrite');
  const resolved = await conn.sendRequest(lsp.CodeActionResolveRequest.type, actions[0]);
  const edits = resolved.edit.changes['file:///work/holes.go'];
  assert.deepEqual(edits.map((e) => e.range.start.character), [5, 13]);
  if (FAKE) assert.deepEqual(edits.map((e) => e.newText), ['hole1', 'hole2']);

  // Errors leave the server answering.
  await expectError(conn.sendRequest('textDocument/hover', { textDocument: { uri: URI }, position: { line: 0, character: 0 } }),
    lsp.ErrorCodes.MethodNotFound);
  await expectError(conn.sendRequest('textDocument/inlineCompletion', { textDocument: { uri: 5 } }),
    lsp.ErrorCodes.InvalidParams);
  await expectError(conn.sendRequest(lsp.InlineCompletionRequest.type, {
    textDocument: { uri: 'file:///never/opened.go' }, position: { line: 0, character: 0 }, context: { triggerKind: 1 },
  }), lsp.ErrorCodes.InvalidParams);

  // Nothing went wrong that the user should have been told about.
  assert.deepEqual(s.seen.messages, []);

  await conn.sendRequest(lsp.ShutdownRequest.type);
  await expectError(conn.sendRequest(lsp.CompletionRequest.type, { textDocument: { uri: URI }, position: { line: 0, character: 0 } }),
    lsp.ErrorCodes.InvalidRequest);
  await conn.sendNotification(lsp.ExitNotification.type);
  assert.equal(await s.exited, 0, s.stderr());
  conn.dispose();
});

test('requests before initialize', async () => {
  const s = start();
  await expectError(s.conn.sendRequest(lsp.CompletionRequest.type, { textDocument: { uri: URI }, position: { line: 0, character: 0 } }),
    lsp.ErrorCodes.ServerNotInitialized);
  await s.conn.sendRequest(lsp.InitializeRequest.type, { processId: null, rootUri: null, capabilities: {} });
  await expectError(s.conn.sendRequest(lsp.InitializeRequest.type, { processId: null, rootUri: null, capabilities: {} }),
    lsp.ErrorCodes.InvalidRequest);
  // Exit without shutdown: exit code 1, as the specification asks.
  await s.conn.sendNotification(lsp.ExitNotification.type);
  assert.equal(await s.exited, 1, s.stderr());
  s.conn.dispose();
});

test('utf-8 positions when offered', async () => {
  const s = start();
  const init = await s.conn.sendRequest(lsp.InitializeRequest.type, {
    processId: null, rootUri: null,
    capabilities: { general: { positionEncodings: ['utf-8', 'utf-16'] }, textDocument: { inlineCompletion: {} } },
  });
  assert.equal(init.capabilities.positionEncoding, 'utf-8');
  await s.conn.sendNotification(lsp.InitializedNotification.type, {});
  await s.conn.sendNotification(lsp.DidOpenTextDocumentNotification.type, {
    textDocument: { uri: URI, languageId: 'go', version: 1, text: 'é := ' },
  });
  const r = await s.conn.sendRequest(lsp.InlineCompletionRequest.type, {
    textDocument: { uri: URI }, position: { line: 0, character: Buffer.byteLength('é := ') },
    context: { triggerKind: 2 },
  });
  for (const item of r.items) assert.equal(item.range.start.character, 6);
  if (FAKE) assert.equal(r.items.length, 1);
  await s.conn.sendRequest(lsp.ShutdownRequest.type);
  await s.conn.sendNotification(lsp.ExitNotification.type);
  assert.equal(await s.exited, 0, s.stderr());
  s.conn.dispose();
});
