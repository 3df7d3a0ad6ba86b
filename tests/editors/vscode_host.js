// A stand-in for the VS Code extension host, for tests/editors/test_vscode_extension.py: it loads
// editors/vscode/extension.js with the real vscode-languageclient (from the package's
// node_modules) and a `vscode` module that implements only what the client touches, opens the
// documents named on the command line and writes what happens as JSON lines on stdout:
// {"event": "watch", glob}, {"event": "spawn", command, args, cwd}, {"event": "sent", method,
// uri} for each message to the server, {"event": "started"}, {"event": "diagnostics", uri,
// items}, {"event": "stopped"}, {"event": "server-exited", code, signal}. Once every .flow
// document has its diagnostics, it deactivates the extension and ends.
// Usage: node vscode_host.js EXTENSION_DIR WORKSPACE_DIR [FILE...]
// FLOWLANG_COMMAND (JSON) stands for the user's `flowlang.command` setting.
"use strict";
const Module = require("module");
const childProcess = require("child_process");
const fs = require("fs");
const path = require("path");

const [extensionDir, workspaceDir, ...files] = process.argv.slice(2);
const emit = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");

let serverExited = false;
let onDiagnostics = () => {};
let onServerExit = () => {};
const spawn = childProcess.spawn;
childProcess.spawn = (command, args, options) => {
  emit("spawn", { command, args, cwd: options && options.cwd });
  const child = spawn(command, args, options);
  const write = child.stdin.write.bind(child.stdin);
  child.stdin.write = (data, ...rest) => {
    const text = String(data);
    if (text.startsWith("{")) {
      const message = JSON.parse(text);
      const doc = message.params && message.params.textDocument;
      if (message.method) emit("sent", { method: message.method, uri: doc ? doc.uri : undefined });
    }
    return write(data, ...rest);
  };
  child.on("exit", (code, signal) => {
    emit("server-exited", { code, signal });
    serverExited = true;
    onServerExit();
  });
  return child;
};

// Anything the client reads that this host does not model: a callable, constructible object
// whose every property is another such object (never a thenable, iterable as empty).
function anything(name) {
  return new Proxy(function () {}, {
    get(target, prop) {
      if (prop === "then") return undefined;
      if (prop === Symbol.iterator) return function* () {};
      if (prop === Symbol.toPrimitive) return () => `<${name}>`;
      if (prop === "length") return 0;
      if (!(prop in target)) target[prop] = anything(`${name}.${String(prop)}`);
      return target[prop];
    },
    apply: () => anything(`${name}()`),
    construct: () => anything(`new ${name}`),
  });
}
const withRest = (known, name) => new Proxy(known, { get: (t, p) => (p in t ? t[p] : anything(`${name}.${String(p)}`)[p]) });

class Disposable {
  constructor(onDispose) { this.onDispose = onDispose; }
  static from(...items) { return new Disposable(() => items.forEach((d) => d && d.dispose && d.dispose())); }
  dispose() { if (this.onDispose) this.onDispose(); }
}
class EventEmitter {
  constructor() { this.listeners = []; this.event = (f) => { this.listeners.push(f); return new Disposable(); }; }
  fire(value) { this.listeners.forEach((f) => f(value)); }
  dispose() {}
}
const noEvent = () => new Disposable();
class Uri {
  constructor(scheme, fsPath) { this.scheme = scheme; this.fsPath = fsPath; this.path = fsPath; }
  static file(p) { return new Uri("file", p); }
  static parse(s) { return s.startsWith("file://") ? new Uri("file", decodeURIComponent(s.slice(7))) : new Uri(s.split(":")[0], s); }
  toString() { return this.scheme === "file" ? "file://" + this.fsPath.split("/").map(encodeURIComponent).join("/") : this.fsPath; }
  toJSON() { return this.toString(); }
}
class CancellationTokenSource {
  constructor() { this.token = { isCancellationRequested: false, onCancellationRequested: noEvent }; }
  cancel() { this.token.isCancellationRequested = true; }
  dispose() {}
}
class Position { constructor(line, character) { this.line = line; this.character = character; } }
class Range {
  constructor(a, b, c, d) {
    [this.start, this.end] = typeof a === "number" ? [new Position(a, b), new Position(c, d)] : [a, b];
  }
}
class Location { constructor(uri, range) { this.uri = uri; this.range = range; } }
class Diagnostic { constructor(range, message, severity) { this.range = range; this.message = message; this.severity = severity; } }
class DiagnosticRelatedInformation { constructor(location, message) { this.location = location; this.message = message; } }

const documents = files.map((file) => {
  const text = fs.readFileSync(file, "utf8");
  return {
    uri: Uri.file(path.resolve(file)), fileName: path.resolve(file), version: 1, isClosed: false,
    languageId: file.endsWith(".flow") ? "flowlang" : path.extname(file).slice(1),
    getText: () => text, lineCount: text.split("\n").length, isUntitled: false, isDirty: false,
  };
});
const matches = (selector, doc) => [].concat(selector).some((s) =>
  typeof s === "string" ? s === doc.languageId
    : (!s.language || s.language === doc.languageId) && (!s.scheme || s.scheme === doc.uri.scheme) && !s.pattern);
const setting = process.env.FLOWLANG_COMMAND ? JSON.parse(process.env.FLOWLANG_COMMAND) : undefined;

const vscode = withRest({
  version: "1.82.0",
  env: { appName: "Visual Studio Code", language: "en", machineId: "host", uiKind: 1, appHost: "desktop" },
  UIKind: { Desktop: 1, Web: 2 },
  Disposable, EventEmitter, CancellationTokenSource, Uri, Position, Range, Location, Diagnostic, DiagnosticRelatedInformation,
  DiagnosticSeverity: { Error: 0, Warning: 1, Information: 2, Hint: 3 },
  DiagnosticTag: { Unnecessary: 1, Deprecated: 2 },
  workspace: withRest({
    workspaceFolders: [{ uri: Uri.file(workspaceDir), name: path.basename(workspaceDir), index: 0 }],
    textDocuments: documents,
    notebookDocuments: [],
    getConfiguration: (section) => ({
      get: (key, fallback) => (section === "flowlang" && key === "command" && setting !== undefined ? setting : fallback),
    }),
    createFileSystemWatcher: (glob) => {
      emit("watch", { glob });
      return { onDidCreate: noEvent, onDidChange: noEvent, onDidDelete: noEvent, dispose() {} };
    },
    ...Object.fromEntries(["onDidOpenTextDocument", "onDidChangeTextDocument", "onDidCloseTextDocument",
      "onDidSaveTextDocument", "onWillSaveTextDocument", "onDidChangeConfiguration", "onDidChangeWorkspaceFolders",
      "onDidCreateFiles", "onDidRenameFiles", "onDidDeleteFiles", "onWillCreateFiles", "onWillRenameFiles",
      "onWillDeleteFiles", "onDidOpenNotebookDocument", "onDidChangeNotebookDocument",
      "onDidCloseNotebookDocument", "onDidSaveNotebookDocument"].map((name) => [name, noEvent])),
  }, "workspace"),
  languages: withRest({
    match: (selector, doc) => (matches(selector, doc) ? 10 : 0),
    createDiagnosticCollection: () => ({
      set(uri, items) {
        setImmediate(() => onDiagnostics(String(uri)));
        emit("diagnostics", {
          uri: String(uri),
          items: (items || []).map((d) => ({
            code: typeof d.code === "object" ? d.code.value : d.code, message: d.message, severity: d.severity,
            range: [d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character],
          })),
        });
      },
      delete() {}, clear() {}, dispose() {}, forEach() {}, get: () => undefined, has: () => false,
    }),
  }, "languages"),
  window: withRest({
    createOutputChannel: (name) => ({
      name, append: (s) => emit("output", { text: String(s) }), appendLine: (s) => emit("output", { text: String(s) }),
      replace() {}, show() {}, hide() {}, clear() {}, dispose() {},
    }),
    onDidChangeActiveTextEditor: noEvent, onDidChangeVisibleTextEditors: noEvent, visibleTextEditors: [],
    tabGroups: { all: [], onDidChangeTabs: noEvent },
  }, "window"),
}, "vscode");

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) { return request === "vscode" ? "vscode" : resolve.call(this, request, ...rest); };
require.cache.vscode = { id: "vscode", filename: "vscode", loaded: true, exports: vscode };

process.on("unhandledRejection", (e) => emit("unhandled", { error: String(e && e.stack) }));
const extension = require(path.resolve(extensionDir, require(path.resolve(extensionDir, "package.json")).main));
const context = { subscriptions: [], extensionPath: extensionDir };
const timeout = setTimeout(() => { emit("timeout"); process.exit(2); }, Number(process.env.HOST_TIMEOUT_MS || 60000));
const flows = documents.filter((d) => d.languageId === "flowlang").map((d) => d.uri.toString());
let whenChecked = () => {};
const checked = new Set();
onDiagnostics = (uri) => {
  checked.add(uri);
  if (flows.every((f) => checked.has(f))) whenChecked();
};
Promise.resolve(extension.activate(context)).then(
  () => {
    emit("started");
    new Promise((resolve) => { whenChecked = resolve; onDiagnostics(""); })
      .then(() => extension.deactivate())
      .then(() => {
        emit("stopped");
        const done = () => { clearTimeout(timeout); process.exit(0); };
        if (serverExited) done(); else onServerExit = done;
      });
  },
  (err) => { emit("failed", { error: String(err && err.stack) }); process.exit(1); },
);
