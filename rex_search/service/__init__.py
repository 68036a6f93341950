"""The HTTP service: `create_app` (app.py) over a `SearchPipeline`, its request models
(models.py), limits (limits.py) and Prometheus metrics (metrics.py)."""

from rex_search.service.app import OPENAPI, create_app
from rex_search.service.limits import Limits

__all__ = ["OPENAPI", "Limits", "create_app"]
