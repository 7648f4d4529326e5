"""Legal holds (DESIGN §10): a case or a subject preserved for litigation or an investigation.

A hold is placed with a reason by a supervisor, an admin or an auditor and released explicitly by a
supervisor or an admin; both are `hold` entries (the case, or the subject's random handle, in the
header; the hold id, the action and the reason in `meta`). While a hold is in place nothing it covers
is erased or expires: a subject's erasure is blocked by a hold on the subject or on any case that
holds one of its entries.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from ledger.appender import NewEntry
from ledger.connections import reading
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.repository import compliance as repo
from ledger.service import Ledger
from verification.entry import CASE_RE

__all__ = ["REASON_PATTERN", "Hold", "Holds"]

#: a hold's reason: a short code or phrase, recorded in clear `meta` — so no names, e-mails or ids of people
REASON_PATTERN = r"[A-Za-z0-9 _.,:/()-]{1,128}"
_REASON = re.compile(REASON_PATTERN + r"\Z")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


@dataclass(frozen=True)
class Hold:
    hold_id: str
    case: str | None
    #: the subject's random handle (never its reference)
    subject: str | None
    reason: str
    placed_by: str
    placed_at: str
    place_seq: int
    released_by: str | None = None
    released_at: str | None = None
    release_seq: int | None = None

    @property
    def active(self) -> bool:
        return self.released_at is None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.hold_id, "case": self.case, "subject": self.subject, "reason": self.reason,
                "placed_by": self.placed_by, "placed_at": self.placed_at, "place_seq": self.place_seq,
                "released_by": self.released_by, "released_at": self.released_at, "release_seq": self.release_seq,
                "active": self.active}


def hold_of(row: Any) -> Hold:
    return Hold(str(row.hold_id), row.case_id, row.subject, str(row.reason), str(row.placed_by), str(row.placed_at),
                int(row.place_seq), row.released_by, row.released_at,
                None if row.release_seq is None else int(row.release_seq))


def check_reason(reason: object) -> str:
    if not isinstance(reason, str) or not _REASON.fullmatch(reason.strip()):
        raise InvalidInput("a reason is 1-128 of letters, digits, spaces and . , : / ( ) _ - (it is recorded in "
                           "clear: no names or other personal data)")
    return reason.strip()


class Holds:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def place(self, tenant: str, actor: str, reason: str, *, case: str | None = None,
              subject_ref: str | None = None) -> Hold:
        """Place a hold on `case` or on the subject `subject_ref` (exactly one): a `hold` entry."""
        if (case is None) == (subject_ref is None):
            raise InvalidInput("a hold covers either a case or a subject_ref")
        if case is not None and (not isinstance(case, str) or not CASE_RE.match(case)):
            raise InvalidInput("case id must be 1-128 of letters, digits and . _ : -")
        reason = check_reason(reason)
        context = self._ledger.tenants.get(tenant)
        hold_id = str(uuid.uuid4())
        placed_at = self._ledger.clock()
        made: list[Hold] = []
        # the handle the appender will put in the header (a hold may come before the subject's first entry)
        subject = self._ledger.subjects.handle(tenant, subject_ref) if subject_ref is not None else None

        def record(conn: Any, seq: int) -> None:
            repo.insert_hold(conn, {"hold_id": hold_id, "log_id": context.log_id, "case_id": case,
                                    "subject": subject, "reason": reason, "placed_by": actor,
                                    "placed_at": placed_at, "place_seq": seq})
            made.append(Hold(hold_id, case, subject, reason, actor, placed_at, seq))

        self._ledger.appender.append(tenant, NewEntry(
            kind="hold", actor=actor, case=case, subject_ref=subject_ref,
            meta={"action": "place", "hold": hold_id, "reason": reason}, with_entry=record))
        return made[0]

    def release(self, tenant: str, hold_id: str, actor: str, reason: str) -> Hold:
        """Release a hold in place: a `hold` entry. NotFound for another tenant's; Conflict if released."""
        if not isinstance(hold_id, str) or not _UUID.fullmatch(hold_id):
            raise NotFound(f"no hold {hold_id}")
        reason = check_reason(reason)
        context = self._ledger.tenants.get(tenant)
        current = self.get(tenant, hold_id)
        if not current.active:
            raise Conflict(f"hold {hold_id} was released already")
        released_at = self._ledger.clock()
        made: list[Hold] = []

        def record(conn: Any, seq: int) -> None:  # in the entry's transaction: two releases cannot both win
            values = {"released_by": actor, "released_at": released_at, "release_seq": seq}
            if not repo.release_hold(conn, context.log_id, hold_id, values):
                raise Conflict(f"hold {hold_id} was released already")
            made.append(hold_of(repo.get_hold(conn, context.log_id, hold_id)))

        self._ledger.appender.append(tenant, NewEntry(
            kind="hold", actor=actor, case=current.case,
            meta={"action": "release", "hold": hold_id, "reason": reason}
            | ({"subject": current.subject} if current.subject else {}), with_entry=record))
        return made[0]

    def get(self, tenant: str, hold_id: str) -> Hold:
        context = self._ledger.tenants.get(tenant)
        row = None
        if isinstance(hold_id, str) and _UUID.fullmatch(hold_id):
            with reading(self._ledger.engine) as conn:
                row = repo.get_hold(conn, context.log_id, hold_id)
        if row is None:
            raise NotFound(f"no hold {hold_id}")
        return hold_of(row)

    def all(self, tenant: str, *, active: bool | None = None) -> list[Hold]:
        context = self._ledger.tenants.get(tenant)
        with reading(self._ledger.engine) as conn:
            return [hold_of(row) for row in repo.holds_of_log(conn, context.log_id, active=active)]

    def covering(self, tenant: str, *, cases: set[str], subject: str | None) -> tuple[Hold, ...]:
        """The holds in place over `subject` or any of `cases`."""
        context = self._ledger.tenants.get(tenant)
        with reading(self._ledger.engine) as conn:
            return tuple(hold_of(row) for row in repo.active_holds(conn, context.log_id, cases=cases, subject=subject))
