"""The compiler: takes a `CheckedFlow`, gives a `FlowGraph`, plain data (JSON) whose version is
the hash of its content.

`compile` lowers the checked AST to nodes with stable ids and edges (`ir`), `expressions` turns
expressions into JSON trees the runtime makes callables of, and `draw` renders a graph as Mermaid,
DOT or SVG.
"""
