// Starts `flowlang lsp` for .flow files. The server finds deployment.yaml beside the flow or in
// the workspace folder (the server's working directory), as `flowlang validate` does.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace
    .getConfiguration("flowlang")
    .get("command", ["flowlang", "lsp"]);
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const server = { command, args, options: { cwd: folder } };
  client = new LanguageClient(
    "flowlang",
    "flowlang",
    { run: server, debug: server },
    {
      documentSelector: [{ scheme: "file", language: "flowlang" }],
      synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/deployment.y*ml") },
    }
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
