// Two language servers, as two editor windows start them, share one warm
// engine process: the real `infuse serve --shared-engine` (INFUSE_BIN),
// the embedded model, and `infuse engine status` to see it.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const cp = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const lsp = require('vscode-languageserver-protocol/node');

const BIN = process.env.INFUSE_BIN;

function serve(env) {
  const proc = cp.spawn(BIN, ['serve', '--shared-engine'], { stdio: ['pipe', 'pipe', 'pipe'], env });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  const conn = lsp.createProtocolConnection(
    new lsp.StreamMessageReader(proc.stdout), new lsp.StreamMessageWriter(proc.stdin));
  conn.listen();
  return { proc, conn, exited, stderr: () => stderr };
}

async function completeOnce(s, uri) {
  await s.conn.sendRequest(lsp.InitializeRequest.type, {
    processId: process.pid, rootUri: null,
    capabilities: { textDocument: { inlineCompletion: {} } },
  });
  await s.conn.sendNotification(lsp.InitializedNotification.type, {});
  const text = 'def add(a, b):\n    return \n';
  await s.conn.sendNotification(lsp.DidOpenTextDocumentNotification.type, {
    textDocument: { uri, languageId: 'python', version: 1, text },
  });
  return s.conn.sendRequest(lsp.InlineCompletionRequest.type, {
    textDocument: { uri }, position: { line: 1, character: 11 },
    context: { triggerKind: lsp.InlineCompletionTriggerKind.Invoked },
  });
}

test('two serve processes share one engine', { skip: !BIN && 'INFUSE_BIN is not set' }, async () => {
  // A short runtime directory: socket paths are limited to 108 bytes.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ie'));
  const env = { ...process.env, XDG_RUNTIME_DIR: dir };
  const a = serve(env);
  const b = serve(env);
  let enginePID = 0;
  try {
    const [ra, rb] = await Promise.all([completeOnce(a, 'file:///a.py'), completeOnce(b, 'file:///b.py')]);
    for (const r of [ra, rb]) assert.ok(Array.isArray(r.items), `result ${JSON.stringify(r)}`);

    const st = JSON.parse(cp.execFileSync(BIN, ['engine', 'status', '--json'], { env }).toString());
    enginePID = st.pid;
    assert.equal(st.clients, 2, `status ${JSON.stringify(st)}`);
    assert.ok(st.served >= 2, `status ${JSON.stringify(st)}`);
    assert.ok(st.pid !== a.proc.pid && st.pid !== b.proc.pid, 'the engine is a process of its own');
    assert.ok(st.workers >= 1);
    assert.match(st.weights, /^(F32|Q8_0|BF16-AMX)×25$/, `the embedded model computed as ${st.weights}`);
  } finally {
    for (const s of [a, b]) {
      try {
        await s.conn.sendRequest(lsp.ShutdownRequest.type);
        await s.conn.sendNotification(lsp.ExitNotification.type);
      } catch { s.proc.kill(); }
    }
    const codes = await Promise.all([a.exited, b.exited]);
    assert.deepEqual(codes, [0, 0], `exit codes; stderr:\n${a.stderr()}\n${b.stderr()}`);
    if (enginePID) process.kill(enginePID, 'SIGTERM'); // it would idle for 30 minutes
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
