"""Request and response bodies of the share routes (DESIGN §8). Requests forbid unknown fields."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from ledger.shares import MAX_DOWNLOADS, MAX_EXPIRES_IN, MIN_EXPIRES_IN

__all__ = ["DocumentId", "ShareCreated", "ShareId", "ShareIn", "ShareList", "ShareOut"]

_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
#: a document is named by its entry id, a share by its own id: lowercase UUIDs
DocumentId = Annotated[str, StringConstraints(pattern=_UUID)]
ShareId = Annotated[str, StringConstraints(pattern=_UUID)]


class ShareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipient: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:@+-]{1,128}$")] = Field(
        description="a pseudonymous recipient id (it is written in the clear into the log: no e-mail address)")
    expires_in: StrictInt = Field(ge=MIN_EXPIRES_IN, le=MAX_EXPIRES_IN, description="seconds until the link expires")
    max_downloads: StrictInt = Field(default=1, ge=1, le=MAX_DOWNLOADS)
    purpose: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9 _.:-]{1,64}$")] | None = None


class ShareCreated(BaseModel):
    share_id: str
    url: str = Field(description="the link for the recipient; shown this once, stored nowhere")
    expires_at: str
    max_downloads: int


class ShareOut(BaseModel):
    """A share as its document's staff see it: never its token."""

    share_id: str
    document_id: str
    recipient: str
    purpose: str | None
    created_by: str
    created_at: str
    expires_at: str
    max_downloads: int
    downloads: int
    downloads_left: int
    revoked_at: str | None
    revoked_by: str | None
    state: str = Field(description="active, expired, revoked or used-up")


class ShareList(BaseModel):
    document_id: str
    shares: list[ShareOut]
