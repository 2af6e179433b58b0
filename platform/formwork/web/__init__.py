"""The web stage: the Flask app factory and the CRUD screens."""

from formwork.web.app import build_runtime, create_app, wsgi
from formwork.web.runtime import Runtime

__all__ = ["Runtime", "build_runtime", "create_app", "wsgi"]
