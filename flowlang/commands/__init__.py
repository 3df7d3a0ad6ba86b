"""The command line's parts: takes command-line arguments, gives output and an exit code.

One module per area (store, ACD simulation, reports, sending, the service, users) defines click
commands that `flowlang.cli` registers with `main.add_command`; `options` holds the shared
options (`-d/--deployment`), `loading` the flow loading they share, `exits` the exit codes.
"""
