"""CLI command groups beyond the language ones, one module per area (store, ACD, reports...).

Each module defines click commands; `flowlang.cli` registers them with `main.add_command`.
"""
