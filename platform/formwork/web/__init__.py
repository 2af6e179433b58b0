"""The web stage: the Flask app factory and the CRUD screens."""

from formwork.web.app import create_app, wsgi
from formwork.web.runtime import Runtime

__all__ = ["Runtime", "create_app", "wsgi"]
