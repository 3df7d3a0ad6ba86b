"""The deployment file: takes its YAML, gives a `Deployment` (pydantic models: queues, skills,
agents, channels, templates, ...) or diagnostics (FL5xx) at the YAML's own line:col."""

from flowlang.config.loader import load_deployment, load_deployment_bytes, load_deployment_text
from flowlang.config.models import Deployment

__all__ = ["Deployment", "load_deployment", "load_deployment_bytes", "load_deployment_text"]
