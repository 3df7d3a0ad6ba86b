// The scopes VS Code's own TextMate engine (vscode-textmate with vscode-oniguruma, the editor
// package's devDependencies) gives each line of a file, for tests/editors/test_vscode_extension.py:
// one JSON line per token, [file, line, start, end, scopes] (line 1-based, columns 0-based, in
// UTF-16 code units as JavaScript counts them).
// Usage: node textmate_tokens.js PACKAGE_DIR FILE...
"use strict";
const fs = require("fs");
const path = require("path");

const [packageDir, ...files] = process.argv.slice(2);
const fromPackage = (name) => require(require.resolve(name, { paths: [packageDir] }));
const textmate = fromPackage("vscode-textmate");
const oniguruma = fromPackage("vscode-oniguruma");
const manifest = JSON.parse(fs.readFileSync(path.join(packageDir, "package.json"), "utf8"));
const [contributed] = manifest.contributes.grammars;

const wasm = fs.readFileSync(path.join(path.dirname(require.resolve("vscode-oniguruma", { paths: [packageDir] })), "onig.wasm"));
const ready = oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength)).then(() => ({
  createOnigScanner: (sources) => new oniguruma.OnigScanner(sources),
  createOnigString: (text) => new oniguruma.OnigString(text),
}));
const registry = new textmate.Registry({
  onigLib: ready,
  loadGrammar: async (scopeName) => {
    if (scopeName !== contributed.scopeName) return null;
    const source = fs.readFileSync(path.join(packageDir, contributed.path), "utf8");
    return textmate.parseRawGrammar(source, contributed.path);
  },
});
registry.loadGrammar(contributed.scopeName).then((grammar) => {
  const out = [];
  for (const file of files) {
    let stack = textmate.INITIAL;
    fs.readFileSync(file, "utf8").split("\n").forEach((line, index) => {
      const result = grammar.tokenizeLine(line, stack);
      for (const token of result.tokens) {
        const end = Math.min(token.endIndex, line.length);
        if (end > token.startIndex) out.push(JSON.stringify([file, index + 1, token.startIndex, end, token.scopes]));
      }
      stack = result.ruleStack;
    });
  }
  process.stdout.write(out.join("\n") + "\n");
});
