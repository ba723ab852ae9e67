// Unit tests for the settings mapping, under plain Node (node --test): no
// VS Code instance is needed because config.ts does not import 'vscode'.

import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import {
  Host,
  Settings,
  deviceLabel,
  enabledFor,
  findOnPath,
  modelLabel,
  needsRestart,
  parseStats,
  readSettings,
  serverCommand,
  serverSettings,
  statusText,
  toggleLanguage,
} from '../config';

// The defaults VS Code reports for every key, read from package.json so that
// the tests follow the manifest.
const manifest = require('../../package.json');
const properties: Record<string, { default: unknown }> = manifest.contributes.configuration.properties;

function getter(overrides: Record<string, unknown> = {}): (key: string) => unknown {
  return (key) => {
    if (key in overrides) return overrides[key];
    const p = properties[`infuse.${key}`];
    return p === undefined ? undefined : p.default;
  };
}

function read(overrides: Record<string, unknown> = {}): Settings {
  const { settings, problems } = readSettings(getter(overrides));
  assert.deepEqual(problems, [], 'no problems expected');
  return settings;
}

// The keys the server accepts in its `infuse` section (lsp/config.go
// settings); anything else makes it warn.
const serverKeys = ['model', 'device', 'mode', 'maxTokens', 'enable', 'debounceMs', 'timeoutMs', 'prefixChars', 'suffixChars', 'holeMarkers'];

test('the defaults leave the server its own defaults', () => {
  assert.deepEqual(serverSettings(read(), false), { mode: 'auto', enable: { '*': true } });
});

test('every manifest setting is either sent to the server or used by the client', () => {
  const clientOnly = ['path', 'args', 'completionItems', 'trace.server'];
  for (const key of Object.keys(properties)) {
    const name = key.replace(/^infuse\./, '');
    assert.ok(serverKeys.includes(name) || clientOnly.includes(name), `${key} is neither a server key nor a client key`);
  }
  for (const k of serverKeys) {
    assert.ok(`infuse.${k}` in properties, `the server key ${k} has no setting`);
  }
});

test('set values map one to one onto the server keys', () => {
  const s = read({
    model: ' /models/dream-7b/ ',
    device: 'cuda',
    mode: 'multi-line',
    maxTokens: 48,
    enable: { '*': true, markdown: false },
    debounceMs: 0,
    timeoutMs: 2500,
    prefixChars: 0,
    suffixChars: 800,
    holeMarkers: ['/*?*/', '???'],
  });
  const got = serverSettings(s, false);
  assert.deepEqual(got, {
    model: '/models/dream-7b/',
    device: 'cuda',
    mode: 'multi-line',
    maxTokens: 48,
    enable: { '*': true, markdown: false },
    debounceMs: 0,
    timeoutMs: 2500,
    prefixChars: 0,
    suffixChars: 800,
    holeMarkers: ['/*?*/', '???'],
  });
  for (const k of Object.keys(got)) assert.ok(serverKeys.includes(k), `unknown server key ${k}`);
});

test('client-only settings never reach the server', () => {
  const s = read({ path: '/opt/infuse', args: ['-v'], completionItems: true });
  const got = serverSettings(s, false) as Record<string, unknown>;
  for (const k of ['path', 'args', 'completionItems', 'trace']) assert.ok(!(k in got), `${k} was sent`);
});

test('paused switches every language off and keeps the other settings', () => {
  const s = read({ enable: { python: true }, maxTokens: 16 });
  assert.deepEqual(serverSettings(s, true), { mode: 'auto', maxTokens: 16, enable: { '*': false } });
});

test('enable: true or false stands for every language', () => {
  assert.deepEqual(serverSettings(read({ enable: false }), false).enable, { '*': false });
  assert.deepEqual(serverSettings(read({ enable: true }), false).enable, { '*': true });
  assert.deepEqual(serverSettings(read({ enable: {} }), false).enable, undefined);
});

test('bad values fall back to defaults and are named', () => {
  const { settings, problems } = readSettings(
    getter({
      device: 'tpu',
      mode: 'paragraph',
      maxTokens: -1,
      debounceMs: 7.5,
      timeoutMs: 0,
      prefixChars: '4000',
      holeMarkers: 'TODO',
      enable: { go: 'yes', python: false },
      args: '-v',
    }),
  );
  assert.equal(settings.device, '');
  assert.equal(settings.mode, 'auto');
  assert.equal(settings.maxTokens, null);
  assert.equal(settings.debounceMs, null);
  assert.equal(settings.timeoutMs, null);
  assert.equal(settings.prefixChars, null);
  assert.equal(settings.holeMarkers, null);
  assert.deepEqual(settings.args, []);
  assert.deepEqual(settings.enable, { python: false });
  const joined = problems.join('\n');
  for (const key of ['device', 'mode', 'maxTokens', 'debounceMs', 'timeoutMs', 'prefixChars', 'holeMarkers', 'enable.go', 'args']) {
    assert.match(joined, new RegExp(`infuse\\.${key.replace('.', '\\.')}:`), `${key} not reported`);
  }
  assert.equal(problems.length, 9);
  assert.match(joined, /"tpu" is not one of auto, cpu, cuda/);
});

test('enabledFor follows the server rule: language, then "*", then on', () => {
  assert.equal(enabledFor({}, 'go'), true);
  assert.equal(enabledFor({ '*': false }, 'go'), false);
  assert.equal(enabledFor({ '*': false, go: true }, 'go'), true);
  assert.equal(enabledFor({ go: false }, 'python'), true);
});

test('toggleLanguage flips one language and drops entries equal to the default', () => {
  assert.deepEqual(toggleLanguage({ '*': true }, 'markdown'), { '*': true, markdown: false });
  assert.deepEqual(toggleLanguage({ '*': true, markdown: false }, 'markdown'), { '*': true });
  assert.deepEqual(toggleLanguage({ '*': false }, 'go'), { '*': false, go: true });
  assert.deepEqual(toggleLanguage({}, 'go'), { go: false });
});

function host(files: string[], env: Record<string, string> = { PATH: '/usr/local/bin:/usr/bin', HOME: '/home/u' }, platform = 'linux'): Host {
  return { env, platform, isFile: (p) => files.includes(p) };
}

test('serverCommand: infuse.path when it exists, with the user arguments after serve', () => {
  const s = read({ path: '~/go/bin/infuse', args: ['-v', '--threshold', '0.8'] });
  assert.deepEqual(serverCommand(s, host(['/home/u/go/bin/infuse'])), {
    command: '/home/u/go/bin/infuse',
    args: ['serve', '-v', '--threshold', '0.8'],
  });
  const missing = serverCommand(read({ path: '/nope/infuse' }), host([]));
  assert.ok('error' in missing);
  assert.match(missing.error, /infuse\.path is "\/nope\/infuse", which is not a file/);
});

test('serverCommand: infuse on PATH, first match wins; a clear error when absent', () => {
  assert.deepEqual(serverCommand(read(), host(['/usr/bin/infuse', '/usr/local/bin/infuse'])), {
    command: '/usr/local/bin/infuse',
    args: ['serve'],
  });
  const none = serverCommand(read(), host([]));
  assert.ok('error' in none);
  assert.match(none.error, /not on PATH/);
});

test('findOnPath uses PATHEXT on Windows', () => {
  const h = host(['C:\\tools\\infuse.exe'], { Path: 'C:\\Windows;C:\\tools', PATHEXT: '.COM;.EXE' }, 'win32');
  assert.equal(findOnPath('infuse', h), 'C:\\tools\\infuse.exe');
});

test('needsRestart only for the process: path and args', () => {
  const a = read();
  assert.equal(needsRestart(a, read({ model: '/m', maxTokens: 3 })), false);
  assert.equal(needsRestart(a, read({ path: '/bin/infuse' })), true);
  assert.equal(needsRestart(read({ args: ['-v'] }), read({ args: ['-v'] })), false);
  assert.equal(needsRestart(read({ args: ['-v'] }), read({ args: ['--v'] })), true);
});

test('parseStats accepts the server counters and rejects other shapes', () => {
  const raw = { requests: 5, cacheHits: 1, completed: 3, empty: 0, superseded: 1, cancelled: 0, timedOut: 0, failed: 0 };
  assert.deepEqual(parseStats(raw), raw);
  assert.equal(parseStats(null), undefined);
  assert.equal(parseStats({ requests: 'five' }), undefined);
});

test('status bar: model, device and last latency; off states and errors', () => {
  const base = { running: true, paused: false, languageEnabled: true, model: '', device: '', args: [] as string[] };
  assert.equal(statusText({ ...base }).text, '$(sparkle) infuse embedded · auto');
  assert.equal(statusText({ ...base, model: '/m/Dream-Coder-7B/', device: 'cuda', lastLatencyMs: 84.4 }).text, '$(sparkle) infuse Dream-Coder-7B · cuda · 84 ms');
  assert.equal(statusText({ ...base, paused: true, lastLatencyMs: 84 }).text, '$(circle-slash) infuse embedded · auto');
  assert.match(statusText({ ...base, languageEnabled: false }).tooltip, /off for this language/);
  assert.equal(statusText({ ...base, running: false }).text, '$(sync~spin) infuse');
  const err = statusText({ ...base, error: 'infuse is not on PATH' });
  assert.equal(err.text, '$(error) infuse');
  assert.match(err.tooltip, /not on PATH/);
  const withStats = statusText({ ...base, stats: { requests: 4, cacheHits: 1, completed: 2, empty: 1, superseded: 0, cancelled: 0, timedOut: 0, failed: 0 } });
  assert.match(withStats.tooltip, /4 requests: 2 from the model, 1 from the cache/);
});

test('labels read --model and --device from the extra arguments', () => {
  assert.equal(modelLabel('', ['--model', '/x/llada-8b']), 'llada-8b');
  assert.equal(modelLabel('', ['-model=/x/dream']), 'dream');
  assert.equal(modelLabel('/y/own', ['--model', '/x/dream']), 'own');
  assert.equal(deviceLabel('', ['--device=cpu']), 'cpu');
  assert.equal(deviceLabel('cuda', ['--device=cpu']), 'cuda');
});
