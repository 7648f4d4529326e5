"""What `verification.bundle_verify.verify_bundle` found: each check's outcome, and a summary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from verification.bundle import BUNDLE_TYPE

__all__ = ["BUNDLE_CHECKS", "BundleCheck", "BundleResult"]

#: the checks of `verify_bundle`, in the order its result lists them (and raises the first failed)
BUNDLE_CHECKS = ("checkpoint_signature", "headers", "entry_hashes", "order", "scope", "proof", "hash_chain",
                 "case_chain", "content", "anchors")


def _scope_text(scope: Mapping[str, Any]) -> str:
    return ", ".join(f"{name} {value}" for name, value in scope.items())


@dataclass(frozen=True)
class BundleCheck:
    """The outcome of one of `BUNDLE_CHECKS`: what held, or the first failure, its seq and how many failed."""

    name: str
    ok: bool
    detail: str
    seq: int | None = None
    failures: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "ok": self.ok, "detail": self.detail}
        if self.seq is not None:
            out["seq"] = self.seq
        if self.failures:
            out["failures"] = self.failures
        return out


@dataclass(frozen=True)
class BundleResult:
    """What `verify_bundle` found: every check's outcome and what the entries' content amounts to.

    `valid` holds when every check passed. `tree_size` and `root` are the checkpoint's (None when
    it could not even be read); `key_trusted` says whether its key came from the verifier's
    `Trust`. Content counts: `content_verified` matched its header's ``commit``;
    `content_redacted` was withheld with a reason (seqs in `redacted`); `content_unverifiable`
    was given for an entry without a commitment (seqs in `unverifiable`); `content_absent` is not
    in the bundle. `anchors` are the offline results of the anchor receipts.
    """

    valid: bool
    log: str
    scope: dict[str, Any]
    proof: str
    tree_size: int | None
    root: str | None
    key_trusted: bool
    checks: tuple[BundleCheck, ...]
    entries: int
    content_verified: int
    content_redacted: int
    content_unverifiable: int
    content_absent: int
    redacted: tuple[int, ...] = ()
    unverifiable: tuple[int, ...] = ()
    anchors: tuple[dict[str, Any], ...] = ()

    @property
    def failed(self) -> tuple[BundleCheck, ...]:
        """The checks that did not pass, in `BUNDLE_CHECKS` order."""
        return tuple(check for check in self.checks if not check.ok)

    def counts(self) -> dict[str, int]:
        return {"entries": self.entries, "content_verified": self.content_verified,
                "content_redacted": self.content_redacted, "content_unverifiable": self.content_unverifiable,
                "content_absent": self.content_absent, "anchors": len(self.anchors)}

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.valid, "valid": self.valid, "type": BUNDLE_TYPE, "log": self.log, "scope": dict(self.scope),
                "proof": self.proof, "tree_size": self.tree_size, "root": self.root, "key_trusted": self.key_trusted,
                "counts": self.counts(), "checks": [check.to_json() for check in self.checks],
                "redacted": list(self.redacted), "unverifiable": list(self.unverifiable),
                "anchors": list(self.anchors)}

    def summary(self) -> str:
        """The verification summary as lines of text, for a terminal or the PDF's summary page."""
        scope = _scope_text(self.scope) or "no restriction"
        size = "unknown" if self.tree_size is None else str(self.tree_size)
        lines = [f"{BUNDLE_TYPE} of {self.log} (scope: {scope}): {self.entries} entries, {self.proof} proof, "
                 f"tree size {size}"]
        width = max(len(name) for name in BUNDLE_CHECKS)
        for check in self.checks:
            more = f" (and {check.failures - 1} more)" if check.failures > 1 else ""
            lines.append(f"  {'ok' if check.ok else 'FAIL':<4}  {check.name:<{width}}  {check.detail}{more}")
        lines.append(f"content: {self.content_verified} verified, {self.content_redacted} redacted, "
                     f"{self.content_unverifiable} not verifiable (no commitment), {self.content_absent} not included")
        if not self.key_trusted and self.tree_size is not None:
            lines.append("warning: checked with the bundle's own key, which is not trusted")
        failed = len(self.failed)
        lines.append("result: VALID" if self.valid else
                     f"result: INVALID ({failed} check{'s' if failed != 1 else ''} failed)")
        return "\n".join(lines) + "\n"
