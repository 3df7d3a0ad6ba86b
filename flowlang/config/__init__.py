"""The deployment file: models, loader and diagnostics (FL5xx)."""

from flowlang.config.loader import load_deployment, load_deployment_bytes, load_deployment_text
from flowlang.config.models import Deployment

__all__ = ["Deployment", "load_deployment", "load_deployment_bytes", "load_deployment_text"]
