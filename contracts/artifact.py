"""The committed compiled contract, `contracts/build/LedgerAnchor.json` (made by `contracts.compile`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from contracts.errors import AnchorChainError

__all__ = ["ARTIFACT_PATH", "Artifact", "load_artifact"]

ARTIFACT_PATH = Path(__file__).resolve().parent / "build" / "LedgerAnchor.json"


@dataclass(frozen=True)
class Artifact:
    contract: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    compiler: str
    evm_version: str
    source_sha256: str


@cache
def load_artifact(path: Path = ARTIFACT_PATH) -> Artifact:
    """Read and check the artifact once per process."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        artifact = Artifact(
            contract=data["contract"],
            abi=data["abi"],
            bytecode=data["bytecode"],
            deployed_bytecode=data["deployedBytecode"],
            compiler=data["compiler"],
            evm_version=data["evmVersion"],
            source_sha256=data["source_sha256"],
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AnchorChainError(f"contract artifact {path.name} unreadable ({type(exc).__name__}); "
                               "run `make contracts`") from None
    if not artifact.bytecode.startswith("0x") or not isinstance(artifact.abi, list):
        raise AnchorChainError(f"contract artifact {path.name} is malformed; run `make contracts`")
    return artifact
