"""Request and response bodies (Pydantic), apart from the ORM models. Requests forbid unknown fields."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

Channel = Literal["phone", "email", "chat", "sms", "social", "video", "in_person", "api"]
MetaKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
MetaValue = Annotated[str, StringConstraints(max_length=256)] | StrictInt | StrictBool | None
Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class InteractionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
    channel: Channel
    direction: Literal["inbound", "outbound", "internal"]
    subject_ref: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    occurred_at: AwareDatetime | None = None
    content: dict[str, Any]
    meta: Annotated[dict[MetaKey, MetaValue], Field(max_length=32)] = Field(default_factory=dict)

    def clear_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = dict(self.meta) | {"direction": self.direction}
        if self.occurred_at is not None:
            meta["occurred_at"] = self.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return meta


class Receipt(BaseModel):
    log: str
    seq: int
    entry_hash: Hex
    header: dict[str, Any]


class EntryOut(BaseModel):
    seq: int
    entry_hash: Hex
    header: dict[str, Any]
    content: Any = None
    content_text: str | None = None
    content_base64: str | None = None
    erased: bool | None = None


class EntriesPage(BaseModel):
    entries: list[EntryOut]
    next_after: int | None = Field(description="pass as ?after= for the next page; null at the end")


class Timeline(BaseModel):
    case: str
    entries: list[EntryOut]


class LogInfo(BaseModel):
    origin: str
    size: int
    root: Hex
    vkey: str


class InclusionProof(BaseModel):
    log: str
    leaf_index: int
    tree_size: int
    leaf_hash: Hex
    root: Hex
    proof: list[Hex]


class ConsistencyProof(BaseModel):
    log: str
    first: int
    second: int
    first_root: Hex
    second_root: Hex
    proof: list[Hex]


class RangeProof(BaseModel):
    log: str
    start: int
    end: int
    tree_size: int
    root: Hex
    entry_hashes: list[Hex]
    left: list[Hex]
    right: list[Hex]


class Health(BaseModel):
    status: str
    checks: dict[str, bool] = Field(default_factory=dict)
