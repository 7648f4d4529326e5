"""Retention policies (DESIGN §10): how long each kind of entry must be kept, per tenant.

A policy is a set of named profiles plus custom rules; each rule gives a period, in years or days
from an entry's creation, for some entry kinds (``*``: every kind). Profiles:

=============  =====================================================================
``hipaa``      6 years from creation (45 CFR §164.316(b)(2))
``sec-17a-4``  6 years, the first 2 readily accessible (17 CFR §240.17a-4(b))
``finra-4511`` 6 years (FINRA Rule 4511(b))
``gdpr``       no period of its own: erase on request where no other obligation applies
``none``       no period
=============  =====================================================================

Profiles and rules combine; where they overlap the longest period wins. A period is both a minimum —
an erasure request is refused (deferred) until it ends — and the date on which the content expires:
`compliance run` then destroys its keys (`compliance.erasure`), unless a legal hold applies.

Every change is a `policy` entry, and governs the entries written after it ("applies from that day
on"): an entry is measured by the policy version in force when it was written. A **locked** policy
(as Purview's preservation lock) can afterwards only be lengthened — every kind's period at least as
long as before, the lock kept — by nobody shortened, unlocked or removed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ledger.appender import NewEntry
from ledger.connections import reading
from ledger.errors import InvalidInput, PolicyViolation
from ledger.repository import compliance as repo
from ledger.service import Ledger
from verification.entry import KINDS

__all__ = ["PROFILES", "Period", "PolicyVersion", "Retention", "RetentionPolicy", "RetentionRule"]

_MAX_RULES = 64
_MAX_YEARS = 100
_MAX_DAYS = _MAX_YEARS * 366


@dataclass(frozen=True, order=True)
class Period:
    """A retention period: whole years (calendar, from the creation date) or days."""

    years: int = 0
    days: int = 0

    def end(self, start: date) -> date:
        if self.years:
            try:
                return start.replace(year=start.year + self.years)
            except ValueError:  # 29 February, into a year without one
                return start.replace(year=start.year + self.years, month=3, day=1)
        return start + timedelta(days=self.days)

    @property
    def least_days(self) -> int:
        """The fewest days the period can span (for comparing years with days safely)."""
        return 365 * self.years + max(self.years // 4 - 1, 0) if self.years else self.days

    @property
    def most_days(self) -> int:
        return 365 * self.years + (self.years + 3) // 4 if self.years else self.days

    def at_least(self, other: Period) -> bool:
        """Whether this period is at least as long as `other` from any start date."""
        if bool(self.years) == bool(other.years):
            return (self.years, self.days) >= (other.years, other.days)
        return self.least_days >= other.most_days

    def to_json(self) -> dict[str, int]:
        return {"years": self.years} if self.years else {"days": self.days}

    def __str__(self) -> str:
        return f"{self.years} years" if self.years else f"{self.days} days"


@dataclass(frozen=True)
class RetentionRule:
    #: entry kinds, or ("*",) for every kind
    kinds: tuple[str, ...]
    period: Period
    #: of the period, how long the records must stay readily accessible (SEC 17a-4(b))
    accessible: Period | None = None
    #: the profile the rule comes from, or None for a custom rule
    profile: str | None = None

    def covers(self, kind: str) -> bool:
        return "*" in self.kinds or kind in self.kinds

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kinds": list(self.kinds), **self.period.to_json()}
        if self.accessible is not None:
            out["readily_accessible"] = self.accessible.to_json()
        if self.profile is not None:
            out["profile"] = self.profile
        return out


_SIX_YEARS = Period(years=6)
PROFILES: Mapping[str, tuple[RetentionRule, ...]] = {
    "hipaa": (RetentionRule(("*",), _SIX_YEARS, profile="hipaa"),),
    "sec-17a-4": (RetentionRule(("*",), _SIX_YEARS, Period(years=2), profile="sec-17a-4"),),
    "finra-4511": (RetentionRule(("*",), _SIX_YEARS, profile="finra-4511"),),
    "gdpr": (),
    "none": (),
}


def _period(raw: Mapping[str, Any], where: str) -> Period:
    years, days = raw.get("years"), raw.get("days")
    if (years is None) == (days is None):
        raise InvalidInput(f"{where}: give either 'years' or 'days'")
    value = years if years is not None else days
    limit = _MAX_YEARS if years is not None else _MAX_DAYS
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
        raise InvalidInput(f"{where}: the period must be a whole number from 1 to {limit}")
    return Period(years=value) if years is not None else Period(days=value)


@dataclass(frozen=True)
class RetentionPolicy:
    profiles: tuple[str, ...] = ()
    custom: tuple[RetentionRule, ...] = ()
    locked: bool = False

    @classmethod
    def of(cls, profiles: Iterable[str], rules: Sequence[Mapping[str, Any]] = (), *,
           locked: bool = False) -> RetentionPolicy:
        """A policy from what a client sent; `InvalidInput` naming what is wrong."""
        names = tuple(sorted(set(profiles)))
        for name in names:
            if name not in PROFILES:
                raise InvalidInput(f"unknown retention profile {name!r}; the profiles are {', '.join(PROFILES)}")
        if len(rules) > _MAX_RULES:
            raise InvalidInput(f"a policy has at most {_MAX_RULES} custom rules")
        custom = []
        for i, raw in enumerate(rules):
            where = f"rules[{i}]"
            if not isinstance(raw, Mapping) or set(raw) - {"kinds", "years", "days"}:
                raise InvalidInput(f"{where}: a rule is {{'kinds': [...], 'years' or 'days': n}}")
            kinds = raw.get("kinds")
            if (not isinstance(kinds, list) or not kinds or len(kinds) > 32
                    or not all(isinstance(k, str) and (k == "*" or k in KINDS) for k in kinds)):
                raise InvalidInput(f"{where}: 'kinds' is a list of entry kinds, or ['*'] for every kind")
            custom.append(RetentionRule(tuple(sorted(set(kinds))), _period(raw, where)))
        return cls(names, tuple(custom), locked)

    @property
    def rules(self) -> tuple[RetentionRule, ...]:
        return tuple(rule for name in self.profiles for rule in PROFILES[name]) + self.custom

    def period(self, kind: str) -> Period | None:
        """The longest period a rule gives `kind`, None when none applies."""
        periods = [rule.period for rule in self.rules if rule.covers(kind)]
        return max(periods, key=lambda p: (p.least_days, p.most_days)) if periods else None

    def ends(self, kind: str, created: date) -> date | None:
        """The day on which an entry of `kind` created on `created` may be erased (and expires)."""
        ends = [rule.period.end(created) for rule in self.rules if rule.covers(kind)]
        return max(ends) if ends else None

    def named_kinds(self) -> set[str]:
        return {kind for rule in self.rules for kind in rule.kinds}

    def at_least(self, other: RetentionPolicy) -> str | None:
        """None if this policy keeps every kind at least as long as `other`; else why not."""
        for kind in sorted(other.named_kinds() | self.named_kinds() | {"*"}):
            before = other.period(kind)
            if before is None:
                continue
            now = self.period(kind)
            if now is None or not now.at_least(before):
                label = "every kind" if kind == "*" else f"kind {kind!r}"
                return f"{label} would be kept {now or 'no time'} instead of {before}"
        return None

    def to_json(self) -> dict[str, Any]:
        return {"profiles": list(self.profiles), "rules": [rule.to_json() for rule in self.custom],
                "locked": self.locked}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RetentionPolicy:
        rules = [{k: v for k, v in rule.items() if k in {"kinds", "years", "days"}} for rule in raw["rules"]]
        return cls.of(raw["profiles"], rules, locked=bool(raw.get("locked")))


@dataclass(frozen=True)
class PolicyVersion:
    version: int
    #: the `policy` entry that set it; it governs the entries after it
    seq: int
    set_at: str
    set_by: str
    policy: RetentionPolicy

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "seq": self.seq, "set_at": self.set_at, "set_by": self.set_by,
                **self.policy.to_json(), "effective": [rule.to_json() for rule in self.policy.rules]}


def _version(row: Any) -> PolicyVersion:
    return PolicyVersion(int(row.version), int(row.seq), str(row.set_at), str(row.set_by),
                         RetentionPolicy.from_json(json.loads(row.spec) | {"locked": bool(row.locked)}))


def entry_date(header: Mapping[str, Any]) -> date:
    return datetime.fromisoformat(str(header["time"])).astimezone(UTC).date()


class PolicyBook:
    """A log's policy versions, to measure entries by the version in force when each was written."""

    def __init__(self, versions: Sequence[PolicyVersion]) -> None:
        self._versions = sorted(versions, key=lambda v: v.seq)

    def governing(self, seq: int) -> RetentionPolicy | None:
        found = None
        for version in self._versions:
            if version.seq < seq:
                found = version.policy
            else:
                break
        return found

    def ends(self, seq: int, kind: str, created: date) -> date | None:
        policy = self.governing(seq)
        return policy.ends(kind, created) if policy is not None else None


class Retention:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def current(self, tenant: str) -> PolicyVersion | None:
        context = self._ledger.tenants.get(tenant)
        with reading(self._ledger.engine) as conn:
            row = repo.latest_policy(conn, context.log_id)
        return _version(row) if row is not None else None

    def history(self, tenant: str) -> list[PolicyVersion]:
        context = self._ledger.tenants.get(tenant)
        with reading(self._ledger.engine) as conn:
            return [_version(row) for row in repo.policies_of_log(conn, context.log_id)]

    def book(self, tenant: str) -> PolicyBook:
        return PolicyBook(self.history(tenant))

    def set(self, tenant: str, policy: RetentionPolicy, actor: str) -> PolicyVersion:
        """Make `policy` the tenant's policy from now on: a `policy` entry. `PolicyViolation` if the
        current policy is locked and `policy` would shorten, unlock or remove it."""
        context = self._ledger.tenants.get(tenant)
        set_at = self._ledger.clock()
        made: list[PolicyVersion] = []

        def record(conn: Any, seq: int) -> None:  # under the log lock, in the entry's transaction
            row = repo.latest_policy(conn, context.log_id)
            current = _version(row) if row is not None else None
            if current is not None and current.policy.locked:
                if not policy.locked:
                    raise PolicyViolation("the retention policy is locked: it cannot be unlocked or removed")
                shorter = policy.at_least(current.policy)
                if shorter is not None:
                    raise PolicyViolation(f"the retention policy is locked and can only be lengthened: {shorter}")
            version = PolicyVersion(1 if current is None else current.version + 1, seq, set_at, actor, policy)
            spec = {"profiles": list(policy.profiles), "rules": [rule.to_json() for rule in policy.custom]}
            repo.insert_policy(conn, {"log_id": context.log_id, "version": version.version, "seq": seq,
                                      "set_at": set_at, "set_by": actor, "spec": json.dumps(spec),
                                      "locked": int(policy.locked)})
            made.append(version)

        meta = {"profiles": list(policy.profiles), "rules": [rule.to_json() for rule in policy.custom],
                "locked": policy.locked}
        self._ledger.appender.append(tenant, NewEntry(kind="policy", actor=actor, meta=meta, with_entry=record))
        return made[0]
