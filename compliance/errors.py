"""Errors of the compliance package, extending the shared hierarchy in `verification.errors`."""

from __future__ import annotations

from verification.errors import FormatError

__all__ = ["ReportError"]


class ReportError(FormatError):
    """A report PDF that cannot be read at all: not a PDF, truncated, or its parts unreadable.

    A PDF that can be read but does not verify is not an error: `verify_report` says which check
    failed. The message is one line and names no parser internals.
    """

    code = "report-malformed"
