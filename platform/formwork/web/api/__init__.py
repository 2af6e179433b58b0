"""The REST API: ``/api/v1/<entity>`` for every entity, custom actions and the OpenAPI document.

``register_api(flask_app)`` serves it from the ``Runtime`` of a Formwork Flask app;
docs/api.md is the integrators' reference.
"""

from formwork.web.api.identity import API_CHANNEL, request_actor
from formwork.web.api.views import API_PREFIX, BLUEPRINT_NAME, register_api

__all__ = ["API_CHANNEL", "API_PREFIX", "BLUEPRINT_NAME", "register_api", "request_actor"]
