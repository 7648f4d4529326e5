"""Documents over HTTP (DESIGN §8): filled in by the document-sharing work (issue 10)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["documents"])
