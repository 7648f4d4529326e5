"""``caseledger anchor``: deploy the contract, run a round, follow rounds, print anchor receipts (DESIGN §6)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer

from api.cli.common import TenantOpt, app, emit, fail, load_settings, open_ledger
from ledger.anchoring import open_chain
from ledger.errors import LedgerError
from ledger.leases import lease_holder

anchor_app = typer.Typer(no_args_is_help=True, help="Anchor checkpoints to an Ethereum network (DESIGN §6).")
app.add_typer(anchor_app, name="anchor")
publisher_app = typer.Typer(no_args_is_help=True, help="Who may anchor with the contract (its owner decides).")
anchor_app.add_typer(publisher_app, name="publisher")


@anchor_app.callback()
def _quiet() -> None:
    """One line per error on the command line: the chain client's retry warnings are not printed."""
    for name in ("contracts", "caseledger"):
        logging.getLogger(name).setLevel(logging.ERROR)


@anchor_app.command()
def deploy() -> None:
    """Deploy LedgerAnchor with the key of CASELEDGER_ANCHOR_KEY_FILE, which becomes its owner and a
    publisher; prints the contract's address (set it as CASELEDGER_ANCHOR_CONTRACT)."""
    chain = open_chain(load_settings(), deploying=True)
    address = chain.deploy()
    emit({"contract": address, "chain_id": chain.config.chain_id, "owner": chain.address,
          "publisher": chain.address})


@publisher_app.command("add")
def publisher_add(address: Annotated[str, typer.Argument(help="0x address of the publisher")]) -> None:
    """Let `address` anchor rounds (owner only)."""
    mined = open_chain(load_settings()).add_publisher(address)
    emit({"publisher": address, "added": True, "tx": mined.tx_hash, "block": mined.block})


@publisher_app.command("remove")
def publisher_remove(address: Annotated[str, typer.Argument(help="0x address of the publisher")]) -> None:
    """Stop `address` from anchoring (owner only)."""
    mined = open_chain(load_settings()).remove_publisher(address)
    emit({"publisher": address, "removed": True, "tx": mined.tx_hash, "block": mined.block})


@anchor_app.command()
def run() -> None:
    """Run one round now (or resume the open one) and print it; waits for its confirmations. Exit 1
    when the round failed (its logs are then taken by the next round)."""
    settings = load_settings()
    chain = open_chain(settings)
    holder = lease_holder()
    with open_ledger() as led:
        if not led.anchoring.hold_lease(holder):
            fail("another process is running the deployment's anchoring rounds; try again later")
        try:
            with led.anchoring.leased(holder) as lease:
                done = led.anchoring.run_round(chain, lease)
        finally:
            led.anchoring.release_lease(holder)
    emit(done.as_dict() if done is not None else {"round": None, "reason": "no log grew since its last anchor"})
    if done is not None and done.state == "failed":
        fail(f"anchoring round {done.id} failed: {done.reason}")


@anchor_app.command()
def status(limit: Annotated[int, typer.Option(min=1, max=10000, help="rounds to show, newest first")] = 20) -> None:
    """The rounds with their state, transaction, block and, when the node answers, confirmations."""
    settings = load_settings()
    with open_ledger() as led:
        rounds = [r.as_dict() for r in led.anchoring.rounds(limit)]
    out: dict[str, Any] = {"rounds": rounds}
    if settings.anchoring:
        try:
            head = open_chain(settings).block_number()
        except LedgerError as exc:
            out["chain_error"] = str(exc)
        else:
            out["chain_head"] = head
            for r in rounds:
                r["confirmations"] = None if r["block"] is None else max(0, head - r["block"] + 1)
    emit(out)


@anchor_app.command()
def receipt(tenant: TenantOpt,
            size: Annotated[int | None, typer.Option(min=0, help="the first anchor at or after this size "
                                                                 "(default: the newest)")] = None) -> None:
    """Print the anchor receipt of a log's anchored checkpoint (`caseledger verify` checks it)."""
    with open_ledger() as led:
        emit(led.anchoring.receipt(tenant, size).receipt.to_json())
