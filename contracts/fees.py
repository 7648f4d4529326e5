"""EIP-1559 fees for the publisher's transactions (DESIGN §6): read from the node, capped, bumped.

- a new transaction offers ``2 × base fee + tip``, lowered to the cap when ``base + tip`` fits under
  it (it may then wait if the base fee rises, and is replaced then), refused above it;
- a replacement keeps the nonce and raises both fees by at least 12.5% (never a duplicate), and is
  refused rather than sent above the cap (`FeeCapExceeded` rather than pay more).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from contracts.errors import FeeCapExceeded

if TYPE_CHECKING:
    from contracts.transactions import SignedTx

__all__ = ["BUMP_DENOMINATOR", "BUMP_NUMERATOR", "GAS_HEADROOM", "GWEI", "bump_fee", "choose_fees"]

GWEI = 10**9
#: a replacement pays at least this much more (geth and most pools want 10%)
BUMP_NUMERATOR, BUMP_DENOMINATOR = 9, 8
#: headroom on the estimated gas limit; unused gas is not paid for
GAS_HEADROOM = Decimal("1.25")


def bump_fee(old: int) -> int:
    """`old` raised by at least 12.5% (and by at least 1 wei)."""
    return max(old + 1, -(-old * BUMP_NUMERATOR // BUMP_DENOMINATOR))


def choose_fees(base: int, tip: int, cap: int, replacing: SignedTx | None = None) -> tuple[int, int]:
    """``(maxFeePerGas, maxPriorityFeePerGas)`` for a transaction, given the node's `base` fee and
    `tip` and the `cap` (all in wei per gas); `replacing` is the transaction it replaces, if any.

    Raises `FeeCapExceeded` when the network (or a replacement's bump) asks more than `cap`.
    """
    max_fee = 2 * base + tip
    if replacing is not None:
        tip = max(tip, bump_fee(replacing.max_priority_fee_per_gas))
        max_fee = max(max_fee, base + tip, bump_fee(replacing.max_fee_per_gas))
        if max_fee > cap:
            raise FeeCapExceeded(f"replacing {replacing.tx_hash} needs maxFeePerGas {max_fee} wei, above the cap "
                                 f"of {cap} wei", needed_wei=max_fee, cap_wei=cap)
    elif max_fee > cap:
        if base + tip > cap:
            raise FeeCapExceeded(f"the network asks {base + tip} wei per gas (base {base} + tip {tip}), above the "
                                 f"cap of {cap} wei", needed_wei=base + tip, cap_wei=cap)
        max_fee = cap  # enough for now; it may wait if the base fee rises, and is replaced then
    return max_fee, tip
