"""Request bodies of the compliance routes (DESIGN §10). Requests forbid unknown fields; responses are
the services' own `to_json` (one serialiser per record)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from compliance.holds import REASON_PATTERN
from compliance.retention import PROFILES

__all__ = ["DisclosuresIn", "ErasureIn", "ExportIn", "HoldId", "HoldIn", "ReleaseIn", "RequestId", "RetentionIn",
           "RuleIn"]

_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
HoldId = Annotated[str, StringConstraints(pattern=_UUID)]
RequestId = Annotated[str, StringConstraints(pattern=_UUID)]
_Reason = Annotated[str, StringConstraints(pattern=f"^{REASON_PATTERN}$")]
_Case = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
_SubjectRef = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kinds: list[str] = Field(min_length=1, max_length=32, description="entry kinds, or [\"*\"] for every kind")
    years: StrictInt | None = Field(default=None, ge=1, le=100)
    days: StrictInt | None = Field(default=None, ge=1, le=36600)


class RetentionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profiles: list[Annotated[str, StringConstraints(max_length=32)]] = Field(
        default_factory=list, max_length=len(PROFILES), description=f"of {', '.join(PROFILES)}")
    rules: list[RuleIn] = Field(default_factory=list, max_length=64)
    locked: StrictBool = Field(default=False, description="once locked, the policy can only be lengthened")


class HoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case: _Case | None = None
    subject_ref: _SubjectRef | None = None
    reason: _Reason = Field(description="recorded in clear: a matter number or code, no personal data")


class ReleaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: _Reason


class ErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_ref: _SubjectRef
    reason: Literal["gdpr-art-17", "consent-withdrawn", "unlawful-processing", "legal-obligation", "other"]


class DisclosuresIn(BaseModel):
    """`POST /v1/disclosures`: a case or a subject (in the body, so the reference stays out of URLs)."""

    model_config = ConfigDict(extra="forbid")

    case: _Case | None = None
    subject_ref: _SubjectRef | None = None
    since: Annotated[str, StringConstraints(max_length=40)] | None = None
    until: Annotated[str, StringConstraints(max_length=40)] | None = None


class ExportIn(BaseModel):
    """`POST /v1/exports`: exactly one scope — a case, a subject_ref, a seq range or a time window."""

    model_config = ConfigDict(extra="forbid")

    case: _Case | None = None
    subject_ref: _SubjectRef | None = None
    start: StrictInt | None = Field(default=None, ge=0)
    end: StrictInt | None = Field(default=None, ge=1)
    since: Annotated[str, StringConstraints(max_length=40)] | None = None
    until: Annotated[str, StringConstraints(max_length=40)] | None = None
    include_content: StrictBool = False
    redact: list[Annotated[str, StringConstraints(max_length=256)]] = Field(default_factory=list, max_length=64)
    format: Literal["pdf", "bundle", "jsonl"] = "pdf"
