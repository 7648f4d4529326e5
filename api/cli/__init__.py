"""The ``caseledger`` command: a thin face over the ledger, compliance and `verification`.

One module per command group (ledger, verify, serve, anchor). Every command prints JSON on stdout (hex
digests); errors are one line on stderr and a non-zero exit: 1 for a failed verification or a
refused request, 2 for bad usage.
"""

from __future__ import annotations

import sys

from sqlalchemy.exc import SQLAlchemyError

from api.cli import anchor, compliance, export, ledger, serve, verify  # noqa: F401  (each registers its commands)
from api.cli.common import app
from ledger.errors import LedgerError

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except LedgerError as exc:
        sys.stderr.write(f"caseledger: {' '.join(str(exc).split())}\n")
        sys.exit(1)
    except SQLAlchemyError as exc:
        origin = getattr(exc, "orig", None)
        reason = str(origin if origin is not None else exc).strip().splitlines()[0]
        sys.stderr.write(f"caseledger: database error: {reason}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
