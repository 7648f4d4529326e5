"""`ApiSettings` for a test server: those of a running one, changed."""

from __future__ import annotations

from typing import Any

from api.settings import ApiSettings
from tests.api.conftest import Api


def with_settings(api: Api, **changes: Any) -> ApiSettings:
    """The settings of `api`'s server with `changes`, validated."""
    settings = api.settings
    return ApiSettings(**{name: getattr(settings, name) for name in ApiSettings.model_fields} | changes)
