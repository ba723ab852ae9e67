// The VS Code side of infuse: starts `infuse serve`, maps the settings onto
// the server's configuration, and shows what the server is doing in the
// status bar. Ghost text comes from vscode-languageclient's built-in inline
// completion feature (LSP 3.18 textDocument/inlineCompletion).

import * as fs from 'node:fs';
import * as vscode from 'vscode';
import {
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
  TransportKind,
} from 'vscode-languageclient/node';

import {
  ServerSettings,
  Settings,
  StatusState,
  enabledFor,
  needsRestart,
  parseStats,
  readSettings,
  serverCommand,
  serverSettings,
  statsLine,
  statusText,
  toggleLanguage,
} from './config';

const pausedKey = 'infuse.paused';

// How often the status bar's counters may be refreshed after completions.
const statsEveryMs = 5000;

class Infuse implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private settings: Settings;
  private readonly log: vscode.LogOutputChannel;
  private readonly item: vscode.StatusBarItem;
  private readonly status: StatusState;
  private lastStats = 0;
  private statsTimer: NodeJS.Timeout | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly context: vscode.ExtensionContext) {
    this.log = vscode.window.createOutputChannel('infuse', { log: true });
    this.item = vscode.window.createStatusBarItem('infuse.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'infuse';
    this.item.command = 'infuse.menu';
    this.settings = this.read();
    this.status = {
      running: false,
      paused: context.globalState.get<boolean>(pausedKey, false),
      languageEnabled: true,
      model: this.settings.model,
      device: this.settings.device,
      args: this.settings.args,
    };
    this.disposables.push(
      this.log,
      this.item,
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('infuse')) void this.configurationChanged();
      }),
      vscode.window.onDidChangeActiveTextEditor(() => this.render()),
    );
    this.render();
    this.item.show();
  }

  // read takes the `infuse` section and logs what was wrong with it.
  private read(): Settings {
    const section = vscode.workspace.getConfiguration('infuse');
    const { settings, problems } = readSettings((key) => section.get(key));
    for (const p of problems) this.log.warn(p);
    if (problems.length > 0) {
      void vscode.window.showWarningMessage(problems.join('\n'));
    }
    return settings;
  }

  private server(): ServerSettings {
    return serverSettings(this.settings, this.status.paused);
  }

  async start(): Promise<void> {
    this.status.error = undefined;
    const cmd = serverCommand(this.settings, {
      env: process.env,
      platform: process.platform,
      isFile: (p) => {
        try {
          return fs.statSync(p).isFile();
        } catch {
          return false;
        }
      },
    });
    if ('error' in cmd) {
      this.fail(cmd.error, true);
      return;
    }
    this.log.info(`starting ${cmd.command} ${cmd.args.join(' ')}`);
    const serverOptions: ServerOptions = {
      command: cmd.command,
      args: cmd.args,
      transport: TransportKind.stdio,
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      outputChannel: this.log,
      traceOutputChannel: this.log,
      initializationOptions: () => ({ infuse: this.server() }),
      middleware: {
        provideInlineCompletionItems: async (document, position, context, token, next) => {
          if (this.status.paused || !enabledFor(this.settings.enable, document.languageId)) {
            return null; // no round trip while off
          }
          const start = performance.now();
          const result = await next(document, position, context, token);
          if (!token.isCancellationRequested) {
            this.status.lastLatencyMs = performance.now() - start;
            this.render();
            this.refreshStatsSoon();
          }
          return result;
        },
        provideCompletionItem: (document, position, context, token, next) => {
          // The suggestion already shows as ghost text; in the popup too
          // only when asked for.
          if (!this.settings.completionItems || this.status.paused || !enabledFor(this.settings.enable, document.languageId)) {
            return undefined;
          }
          return next(document, position, context, token);
        },
        workspace: {
          // The server asks for the `infuse` section when a configuration
          // change reaches it without one; answer with the mapped settings,
          // not the raw section (which holds client-only keys like `path`).
          configuration: (params, token, next) => {
            if (params.items.every((it) => it.section === 'infuse')) {
              return params.items.map(() => this.server());
            }
            return next(params, token);
          },
        },
      },
    };
    const client = new LanguageClient('infuse', 'infuse', serverOptions, clientOptions);
    this.client = client;
    client.onDidChangeState((e) => {
      if (client !== this.client) return;
      this.status.running = e.newState === State.Running;
      this.render();
    });
    try {
      await client.start();
      this.log.info('server running');
    } catch (err) {
      if (client === this.client) {
        this.fail(`the server did not start: ${errorText(err)}`, true);
      }
    }
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.status.running = false;
    this.status.lastLatencyMs = undefined;
    this.status.stats = undefined;
    if (client) {
      try {
        await client.stop(2000);
      } catch (err) {
        this.log.warn(`stopping the server: ${errorText(err)}`);
      }
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    this.settings = this.read();
    this.syncStatusSettings();
    await this.start();
  }

  private async configurationChanged(): Promise<void> {
    const next = this.read();
    const restart = needsRestart(this.settings, next);
    this.settings = next;
    this.syncStatusSettings();
    if (restart || !this.client) {
      await this.stop();
      await this.start();
      return;
    }
    await this.push();
  }

  // push sends the current settings to the running server.
  private async push(): Promise<void> {
    this.render();
    const client = this.client;
    if (!client || !client.isRunning()) return;
    try {
      await client.sendNotification('workspace/didChangeConfiguration', { settings: { infuse: this.server() } });
    } catch (err) {
      this.log.warn(`sending the configuration: ${errorText(err)}`);
    }
  }

  async toggle(): Promise<void> {
    this.status.paused = !this.status.paused;
    await this.context.globalState.update(pausedKey, this.status.paused);
    this.log.info(`completions ${this.status.paused ? 'off' : 'on'}`);
    await this.push();
  }

  async toggleLanguage(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage('infuse: open a file to toggle its language.');
      return;
    }
    const languageId = editor.document.languageId;
    const section = vscode.workspace.getConfiguration('infuse');
    const next = toggleLanguage(this.settings.enable, languageId);
    // The change event that follows pushes the new settings to the server.
    await section.update('enable', next, vscode.ConfigurationTarget.Global);
    void vscode.window.showInformationMessage(
      `infuse: completions ${enabledFor(next, languageId) ? 'on' : 'off'} for ${languageId}.`,
    );
  }

  showLog(): void {
    this.log.show();
  }

  async stats(): Promise<void> {
    const client = this.client;
    if (!client || !client.isRunning()) {
      void vscode.window.showWarningMessage('infuse: the server is not running.');
      return;
    }
    try {
      const stats = parseStats(await client.sendRequest('infuse/stats'));
      if (!stats) throw new Error('the server answered infuse/stats with something else');
      this.status.stats = stats;
      this.render();
      const line = statsLine(stats);
      this.log.info(line);
      void vscode.window.showInformationMessage(`infuse: ${line}`);
    } catch (err) {
      this.log.error(`infuse/stats: ${errorText(err)}`);
      void vscode.window.showErrorMessage(`infuse: infuse/stats failed: ${errorText(err)}`);
    }
  }

  async menu(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    const languageId = editor?.document.languageId;
    type Pick = vscode.QuickPickItem & { run: () => Promise<void> | void };
    const picks: Pick[] = [
      { label: this.status.paused ? 'Turn completions on' : 'Turn completions off', run: () => this.toggle() },
    ];
    if (languageId !== undefined) {
      const on = enabledFor(this.settings.enable, languageId);
      picks.push({ label: `${on ? 'Turn off' : 'Turn on'} for ${languageId}`, run: () => this.toggleLanguage() });
    }
    picks.push(
      { label: 'Show statistics', run: () => this.stats() },
      { label: 'Restart the server', run: () => this.restart() },
      { label: 'Show log', run: () => this.log.show() },
      { label: 'Open settings', run: () => void vscode.commands.executeCommand('workbench.action.openSettings', 'infuse.') },
    );
    const chosen = await vscode.window.showQuickPick(picks, { title: 'infuse' });
    if (chosen) await chosen.run();
  }

  // refreshStatsSoon fetches the counters for the tooltip, at most every
  // statsEveryMs, so that a burst of completions costs one request.
  private refreshStatsSoon(): void {
    if (this.statsTimer) return;
    const wait = Math.max(0, this.lastStats + statsEveryMs - Date.now());
    this.statsTimer = setTimeout(async () => {
      this.statsTimer = undefined;
      this.lastStats = Date.now();
      const client = this.client;
      if (!client || !client.isRunning()) return;
      try {
        const stats = parseStats(await client.sendRequest('infuse/stats'));
        if (stats) {
          this.status.stats = stats;
          this.render();
        }
      } catch (err) {
        this.log.debug(`infuse/stats: ${errorText(err)}`);
      }
    }, wait);
  }

  private syncStatusSettings(): void {
    this.status.model = this.settings.model;
    this.status.device = this.settings.device;
    this.status.args = this.settings.args;
  }

  private fail(message: string, openSettings: boolean): void {
    this.status.error = message;
    this.status.running = false;
    this.log.error(message);
    this.render();
    const actions = openSettings ? ['Open settings', 'Show log'] : ['Show log'];
    void vscode.window.showErrorMessage(`infuse: ${message}`, ...actions).then((choice) => {
      if (choice === 'Open settings') void vscode.commands.executeCommand('workbench.action.openSettings', 'infuse.path');
      if (choice === 'Show log') this.log.show();
    });
  }

  private render(): void {
    const languageId = vscode.window.activeTextEditor?.document.languageId;
    this.status.languageEnabled = languageId === undefined || enabledFor(this.settings.enable, languageId);
    const { text, tooltip } = statusText(this.status);
    this.item.text = text;
    this.item.tooltip = tooltip;
  }

  dispose(): void {
    if (this.statsTimer) clearTimeout(this.statsTimer);
    for (const d of this.disposables) d.dispose();
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

let infuse: Infuse | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const ext = new Infuse(context);
  infuse = ext;
  context.subscriptions.push(
    ext,
    vscode.commands.registerCommand('infuse.toggle', () => ext.toggle()),
    vscode.commands.registerCommand('infuse.toggleLanguage', () => ext.toggleLanguage()),
    vscode.commands.registerCommand('infuse.restart', () => ext.restart()),
    vscode.commands.registerCommand('infuse.showLog', () => ext.showLog()),
    vscode.commands.registerCommand('infuse.showStats', () => ext.stats()),
    vscode.commands.registerCommand('infuse.menu', () => ext.menu()),
  );
  await ext.start();
}

export async function deactivate(): Promise<void> {
  await infuse?.stop();
  infuse = undefined;
}
