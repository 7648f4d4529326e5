"""A ledger whose clock the test moves: retention is measured in years."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from ledger.service import Ledger
from ledger.settings import Settings
from verification.entry import format_time


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> str:
        return format_time(self.now)

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def years_later(self, years: int, days: int = 0) -> None:
        self.now = self.now.replace(year=self.now.year + years) + timedelta(days=days)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def timed(settings: Settings, clock: Clock) -> Iterator[Ledger]:
    """A ledger on SQLite and PostgreSQL whose entries are timed by `clock`."""
    Ledger.initialise(settings)
    opened = Ledger.open(settings, clock=clock)
    try:
        yield opened
    finally:
        opened.close()
