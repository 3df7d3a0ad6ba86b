"""The language server (`flowlang lsp`): takes flow documents an editor opens and edits over the
Language Server Protocol, gives diagnostics (those of `flowlang validate`), completion, hover,
definitions, document symbols, formatting and did-you-mean quick fixes.

`analysis` is the protocol-free part (what a document means and the answers), `knowledge` what
the server says about the language, `server` the pygls server over stdio.
"""
