"""The browser pages `flowlang serve` serves: sign-in, the agent workspace (`/agent`) and the
supervisor dashboard (`/supervisor`), as server-rendered Jinja2 templates with static CSS and
JavaScript of the package's own (no CDN, no build step). The pages act through the service's
`/api` with the session cookie the sign-in page sets (docs/workspace.md); `mount.py` adds them
to the service's app."""

# The service's app mounts the pages and the pages use the service's access rules: the service
# is imported first, so that either package may be imported first.
import flowlang.service  # noqa: F401
