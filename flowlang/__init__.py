"""flowlang: a flow language and engine for contact-center message routing.

Takes `.flow` files and a deployment file, gives a checked, compiled flow and an Engine that
runs it. What a host needs is exported here:

    from flowlang import load_project

    project, workspace = load_project(Path("flows/messaging.flow"), Path("deployment.yaml"))
    if project is None:
        raise SystemExit(workspace.render())  # every error, as `flowlang validate` shows them
    engine = project.engine(store=..., adapters=[...])
    outcome = engine.handle(event)

- `load_project(flow, deployment=None, environment=None)`: check, compile and prepare one flow;
  returns `(Project | None, Workspace)`, the project None when there are errors.
- `Project`: the compiled flow and its deployment; `Project.engine(...)` builds its Engine.
- `Engine`: the type of what `Project.engine` returns (build one through it, never bare).
- `validate(paths, deployment=None)`: check flows against a deployment without compiling them;
  returns a `Workspace` (its `diagnostics`, `errors`, `render()`).
- `FlowError`: the root of the errors flowlang raises.
"""

__version__ = "0.1.0"

# After __version__: modules below may read it while this package is still being imported.
from flowlang.errors import FlowError
from flowlang.project import Project, load_project
from flowlang.runtime.engine import Engine
from flowlang.workspace import Workspace, validate

__all__ = [
    "Engine",
    "FlowError",
    "Project",
    "Workspace",
    "__version__",
    "load_project",
    "validate",
]
