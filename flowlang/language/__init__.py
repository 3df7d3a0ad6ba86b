"""The flow language: takes `.flow` source text, gives a typed AST, every diagnostic of the file,
and a `CheckedFlow` when it is clean.

`grammar.lark` is the language's single source of truth; `parser` parses it with line-by-line
error recovery and `builder` turns the tree into the AST (`ast`); `checker` checks the AST against
a `FlowContext` (the deployment's names, the channels' capabilities) with `exprtypes` typing
expressions; `formatter` gives the canonical text (`flowlang fmt`). Knows nothing of the compiler
or the runtime.
"""
