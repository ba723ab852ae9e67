// The extension's settings and what they become for the server. This module
// does not import 'vscode', so that its tests run under plain Node: the
// extension hands it a getter over the `infuse` configuration section.

import * as path from 'node:path';

/** Reads one key of the `infuse` section (VS Code's WorkspaceConfiguration.get). */
export type Getter = (key: string) => unknown;

/** The `infuse` section as the extension uses it, with bad values dropped. */
export interface Settings {
  path: string;
  args: string[];
  model: string;
  device: string;
  mode: string;
  maxTokens: number | null;
  enable: Record<string, boolean>;
  debounceMs: number | null;
  timeoutMs: number | null;
  prefixChars: number | null;
  suffixChars: number | null;
  holeMarkers: string[] | null;
  completionItems: boolean;
}

/**
 * The server's `infuse` configuration (lsp/README.md). A field left out keeps
 * the value from the command line or the server's default.
 */
export interface ServerSettings {
  model?: string;
  device?: string;
  mode?: string;
  maxTokens?: number;
  enable?: Record<string, boolean>;
  debounceMs?: number;
  timeoutMs?: number;
  prefixChars?: number;
  suffixChars?: number;
  holeMarkers?: string[];
}

const devices = ['', 'auto', 'cpu', 'cuda'];
const modes = ['auto', 'single-line', 'multi-line'];

/**
 * readSettings reads the `infuse` section through get. A value of the wrong
 * type or out of range is replaced by its default and named in problems, so
 * that one bad entry in settings.json does not stop the others from applying.
 */
export function readSettings(get: Getter): { settings: Settings; problems: string[] } {
  const problems: string[] = [];
  const bad = (key: string, value: unknown, want: string) =>
    problems.push(`infuse.${key}: ${JSON.stringify(value)} is not ${want}; using the default`);

  const str = (key: string, allowed?: string[], fallback = ''): string => {
    const v = get(key);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string' || (allowed && !allowed.includes(v))) {
      bad(key, v, allowed ? `one of ${allowed.filter((a) => a !== '').join(', ')}` : 'a string');
      return fallback;
    }
    return v;
  };
  // count reads an optional integer ≥ min; null means "the server's default".
  const count = (key: string, min: number): number | null => {
    const v = get(key);
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      bad(key, v, `an integer ≥ ${min}`);
      return null;
    }
    return v;
  };
  const strings = (key: string): string[] | null => {
    const v = get(key);
    if (v === undefined || v === null) return null;
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) {
      bad(key, v, 'a list of strings');
      return null;
    }
    return v as string[];
  };

  const enable: Record<string, boolean> = {};
  const rawEnable = get('enable');
  if (typeof rawEnable === 'boolean') {
    enable['*'] = rawEnable;
  } else if (rawEnable !== undefined && rawEnable !== null) {
    if (typeof rawEnable !== 'object' || Array.isArray(rawEnable)) {
      bad('enable', rawEnable, 'an object of language ids to true or false');
    } else {
      for (const [language, on] of Object.entries(rawEnable as Record<string, unknown>)) {
        if (typeof on === 'boolean') enable[language] = on;
        else bad(`enable.${language}`, on, 'true or false');
      }
    }
  }

  const completionItems = get('completionItems');
  if (completionItems !== undefined && completionItems !== null && typeof completionItems !== 'boolean') {
    bad('completionItems', completionItems, 'true or false');
  }

  return {
    settings: {
      path: str('path').trim(),
      args: strings('args') ?? [],
      model: str('model').trim(),
      device: str('device', devices),
      mode: str('mode', modes, 'auto'),
      maxTokens: count('maxTokens', 0),
      enable,
      debounceMs: count('debounceMs', 0),
      timeoutMs: count('timeoutMs', 1),
      prefixChars: count('prefixChars', 0),
      suffixChars: count('suffixChars', 0),
      holeMarkers: strings('holeMarkers'),
      completionItems: completionItems === true,
    },
    problems,
  };
}

/**
 * serverSettings is the `infuse` object sent to the server for s. Unset
 * values are left out, so that the server keeps its command-line flags and
 * defaults for them. When paused, every language is switched off.
 */
export function serverSettings(s: Settings, paused: boolean): ServerSettings {
  const out: ServerSettings = { mode: s.mode };
  if (s.model !== '') out.model = s.model;
  if (s.device !== '') out.device = s.device;
  if (s.maxTokens !== null) out.maxTokens = s.maxTokens;
  if (s.debounceMs !== null) out.debounceMs = s.debounceMs;
  if (s.timeoutMs !== null) out.timeoutMs = s.timeoutMs;
  if (s.prefixChars !== null) out.prefixChars = s.prefixChars;
  if (s.suffixChars !== null) out.suffixChars = s.suffixChars;
  if (s.holeMarkers !== null) out.holeMarkers = s.holeMarkers;
  if (paused) out.enable = { '*': false };
  else if (Object.keys(s.enable).length > 0) out.enable = { ...s.enable };
  return out;
}

/** enabledFor reports whether completions are on for languageId (the server's rule). */
export function enabledFor(enable: Record<string, boolean>, languageId: string): boolean {
  if (languageId in enable) return enable[languageId];
  if ('*' in enable) return enable['*'];
  return true;
}

/**
 * toggleLanguage returns the `infuse.enable` object with languageId flipped.
 * An entry that would only restate the default ("*") is removed instead.
 */
export function toggleLanguage(enable: Record<string, boolean>, languageId: string): Record<string, boolean> {
  const next = { ...enable };
  const on = !enabledFor(enable, languageId);
  const fallback = '*' in enable ? enable['*'] : true;
  if (on === fallback) delete next[languageId];
  else next[languageId] = on;
  return next;
}

/** The process to start: `infuse serve` plus the user's arguments. */
export interface ServerCommand {
  command: string;
  args: string[];
}

/** What serverCommand needs to know about the machine. */
export interface Host {
  env: Record<string, string | undefined>;
  platform: string; // process.platform
  isFile: (p: string) => boolean;
}

/**
 * serverCommand resolves the executable: `infuse.path` when set (it must
 * exist), else `infuse` found on PATH. The error says what to do.
 */
export function serverCommand(s: Settings, host: Host): ServerCommand | { error: string } {
  const args = ['serve', ...s.args];
  if (s.path !== '') {
    const p = expandHome(s.path, host.env);
    if (!host.isFile(p)) {
      return { error: `infuse.path is ${JSON.stringify(s.path)}, which is not a file. Build infuse (go build -o bin/infuse ./cmd/infuse) and point infuse.path at it.` };
    }
    return { command: p, args };
  }
  const found = findOnPath('infuse', host);
  if (found === undefined) {
    return { error: 'infuse is not on PATH. Install it (go install github.com/infuse-lsp/infuse/cmd/infuse@latest) or set infuse.path to the binary.' };
  }
  return { command: found, args };
}

function expandHome(p: string, env: Record<string, string | undefined>): string {
  const home = env.HOME ?? env.USERPROFILE;
  if (home && (p === '~' || p.startsWith('~/'))) return path.join(home, p.slice(1));
  return p;
}

/** findOnPath looks name up in PATH the way a shell would (PATHEXT on Windows). */
export function findOnPath(name: string, host: Host): string | undefined {
  const windows = host.platform === 'win32';
  const pathVar = host.env.PATH ?? host.env.Path ?? '';
  const sep = windows ? ';' : ':';
  const exts = windows ? (host.env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';').filter((e) => e !== '') : [''];
  const join = windows ? path.win32.join : path.posix.join;
  for (const dir of pathVar.split(sep)) {
    if (dir === '') continue;
    for (const ext of exts) {
      const candidate = join(dir, name + ext.toLowerCase());
      if (host.isFile(candidate)) return candidate;
    }
  }
  return undefined;
}

/** needsRestart reports whether going from a to b changes the server process. */
export function needsRestart(a: Settings, b: Settings): boolean {
  return a.path !== b.path || a.args.length !== b.args.length || a.args.some((x, i) => x !== b.args[i]);
}

/**
 * The server's session counters, as `infuse/stats` returns them
 * (lsp/schedule.go Stats).
 */
export interface Stats {
  requests: number;
  cacheHits: number;
  completed: number;
  empty: number;
  superseded: number;
  cancelled: number;
  timedOut: number;
  failed: number;
}

/** parseStats checks an `infuse/stats` result; undefined when it is not one. */
export function parseStats(v: unknown): Stats | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const keys: (keyof Stats)[] = ['requests', 'cacheHits', 'completed', 'empty', 'superseded', 'cancelled', 'timedOut', 'failed'];
  const out = {} as Stats;
  for (const k of keys) {
    const n = o[k] ?? 0; // the server omits nothing today, but a zero may be left out by a future encoder
    if (typeof n !== 'number' || !Number.isFinite(n)) return undefined;
    out[k] = n;
  }
  return out;
}

/** What the status bar shows. */
export interface StatusState {
  running: boolean;
  paused: boolean;
  languageEnabled: boolean; // for the active editor's language
  model: string;
  device: string;
  args: string[];
  lastLatencyMs?: number;
  error?: string;
  stats?: Stats;
}

/** modelLabel names the model in a few characters: the directory's name, or "embedded". */
export function modelLabel(model: string, args: string[]): string {
  let m = model;
  if (m === '') m = flagValue(args, 'model') ?? '';
  if (m === '') return 'embedded';
  return path.basename(m.replace(/[\\/]+$/, '')) || m;
}

/** deviceLabel is the device the settings ask for: the setting, --device, else auto. */
export function deviceLabel(device: string, args: string[]): string {
  return device !== '' ? device : (flagValue(args, 'device') ?? 'auto');
}

// flagValue finds -name V, --name V, -name=V or --name=V in args (Go's flag syntax).
function flagValue(args: string[], name: string): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    for (const dash of ['-', '--']) {
      if (a === dash + name && i + 1 < args.length) found = args[i + 1];
      else if (a.startsWith(dash + name + '=')) found = a.slice(dash.length + name.length + 1);
    }
  }
  return found;
}

/** statusText is the status bar item's text and tooltip. */
export function statusText(st: StatusState): { text: string; tooltip: string } {
  const model = modelLabel(st.model, st.args);
  const device = deviceLabel(st.device, st.args);
  if (st.error !== undefined) {
    return { text: '$(error) infuse', tooltip: `infuse: ${st.error}\nClick for the menu.` };
  }
  if (!st.running) {
    return { text: '$(sync~spin) infuse', tooltip: 'infuse: starting the server' };
  }
  const off = st.paused || !st.languageEnabled;
  const parts = [model, device];
  if (!off && st.lastLatencyMs !== undefined) parts.push(`${Math.round(st.lastLatencyMs)} ms`);
  const text = `${off ? '$(circle-slash)' : '$(sparkle)'} infuse ${parts.join(' · ')}`;
  const lines = [
    `infuse: ${st.paused ? 'off' : st.languageEnabled ? 'on' : 'off for this language'}`,
    `model: ${model}`,
    `device: ${device}`,
  ];
  if (st.lastLatencyMs !== undefined) lines.push(`last completion: ${Math.round(st.lastLatencyMs)} ms (request to answer)`);
  if (st.stats) lines.push(statsLine(st.stats));
  lines.push('Click for the menu.');
  return { text, tooltip: lines.join('\n') };
}

/** statsLine sums up the counters in one line. */
export function statsLine(s: Stats): string {
  return (
    `${s.requests} requests: ${s.completed} from the model, ${s.cacheHits} from the cache, ` +
    `${s.empty} empty, ${s.superseded} superseded, ${s.cancelled} cancelled, ${s.timedOut} timed out, ${s.failed} failed`
  );
}
