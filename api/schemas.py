"""Request and response bodies (Pydantic), apart from the ORM models. Requests forbid unknown fields."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from verification.entry import CASE_PATTERN, CHANNELS, MAX_JSON_DEPTH, format_time, json_depth


def _known_channel(value: str) -> str:
    if value not in CHANNELS:
        raise ValueError(f"unknown channel; one of {', '.join(sorted(CHANNELS))}")
    return value


#: a channel of `verification.entry.CHANNELS` (the one list), shown as an enum in the OpenAPI schema
Channel = Annotated[str, AfterValidator(_known_channel), WithJsonSchema({"type": "string", "enum": sorted(CHANNELS)})]
CaseId = Annotated[str, StringConstraints(pattern=f"^{CASE_PATTERN}$")]
MetaKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
MetaValue = Annotated[str, StringConstraints(max_length=256)] | StrictInt | StrictBool | None
Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class InteractionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case: CaseId
    channel: Channel
    direction: Literal["inbound", "outbound", "internal"]
    subject_ref: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    occurred_at: AwareDatetime | None = None
    content: dict[str, Any]
    meta: Annotated[dict[MetaKey, MetaValue], Field(max_length=32)] = Field(default_factory=dict)

    @field_validator("content")
    @classmethod
    def _content_depth(cls, value: dict[str, Any]) -> dict[str, Any]:
        if json_depth(value) > MAX_JSON_DEPTH:
            raise ValueError(f"content nests deeper than {MAX_JSON_DEPTH} levels")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _occurred_in_range(cls, value: datetime | None) -> datetime | None:
        if value is not None:
            try:
                format_time(value)
            except (OverflowError, ValueError):
                raise ValueError("occurred_at is out of range once converted to UTC") from None
        return value

    def clear_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = dict(self.meta) | {"direction": self.direction}
        if self.occurred_at is not None:
            meta["occurred_at"] = format_time(self.occurred_at)
        return meta


class AssignmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: Annotated[str, StringConstraints(pattern=r"^user:[A-Za-z0-9._@:-]{1,120}$")]


class CaseAssignmentsOut(BaseModel):
    case: str
    exists: bool
    opener: str | None
    agents: list[str]


class Appended(BaseModel):
    """Where an entry went and the header it was given (`ledger.appender.Appended`); the
    self-contained `caseledger.receipt` comes from `caseledger receipt`."""

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


class _ProofDocument(BaseModel):
    """What every proof document carries (DESIGN §7); `checkpoint` when asked for (`?checkpoint=true`)."""

    type: str
    v: int
    checkpoint: str | None = Field(default=None, description="C2SP signed checkpoint for the proof's tree size")


class InclusionProof(_ProofDocument):
    log: str
    leaf_index: int
    tree_size: int
    leaf_hash: Hex
    root: Hex
    proof: list[Hex]


class ConsistencyProof(_ProofDocument):
    log: str
    first: int
    second: int
    first_root: Hex
    second_root: Hex
    proof: list[Hex]


class RangeProof(_ProofDocument):
    log: str
    start: int
    end: int
    tree_size: int
    root: Hex
    entry_hashes: list[Hex]
    left: list[Hex]
    right: list[Hex]


EthHash = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-f]{64}$")]
Address = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]


class AnchorRoundPart(BaseModel):
    id: int
    size: int
    root: Hex
    leaf_index: int
    proof: list[Hex]


class AnchorChainPart(BaseModel):
    chain_id: int
    contract: Address
    tx: EthHash
    block: int
    block_hash: EthHash


class AnchorReceipt(BaseModel):
    """`caseledger.anchor-receipt` v 1 (DESIGN §6)."""

    type: str
    v: int
    log: str
    checkpoint: str
    round: AnchorRoundPart
    chain: AnchorChainPart


class AnchorProof(BaseModel):
    """The anchor of the first anchored checkpoint at or after `size`, with the consistency proof from
    the tree of `size` to it (null when `size` is the anchored size)."""

    size: int
    receipt: AnchorReceipt
    consistency: ConsistencyProof | None


class _Inclusion(BaseModel):
    tree_size: int
    proof: list[Hex]


class ReceiptAnchor(BaseModel):
    receipt: AnchorReceipt
    consistency: list[Hex]


class Receipt(BaseModel):
    """`caseledger.receipt` v 1 (DESIGN §7), with `anchor` once the entry is anchored (§6)."""

    type: str
    v: int
    log: str
    seq: int
    entry_hash: Hex
    header: dict[str, Any]
    inclusion: _Inclusion
    checkpoint: str
    vkey: str
    anchor: ReceiptAnchor | None = None


class AnchorRound(BaseModel):
    """An anchoring round as the caller's log sees it (`ledger.anchoring.LogRound`)."""

    round: int
    state: str = Field(description="pending, submitted, confirmed or failed")
    chain_id: int
    contract: Address
    root: Hex = Field(description="root of the round tree")
    leaves: int
    created_at: str
    updated_at: str
    tx: EthHash | None
    block: int | None
    block_hash: EthHash | None
    gas_used: int | None
    confirmed_at: str | None
    reason: str | None
    log_size: int = Field(description="size of this log's checkpoint in the round")
    log_root: Hex
    leaf_index: int
    entry_seq: int | None = Field(description="seq of the `anchor` entry recording the round in this log")


class Anchors(BaseModel):
    rounds: list[AnchorRound]


class Health(BaseModel):
    status: str
    checks: dict[str, bool] = Field(default_factory=dict)
