"""Compile `LedgerAnchor.sol` with the pinned solcjs into `contracts/build/LedgerAnchor.json`.

Run as ``python -m contracts.compile`` (or ``make contracts``). The artifact is committed, so the
chain client needs neither node nor the compiler; a test recompiles and requires the same bytes.
Everything that changes the bytecode is pinned here or in `package-lock.json`: the compiler
version, the optimizer settings and the EVM version. The output is deterministic (sorted keys).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from contracts.errors import CompileError

__all__ = [
    "ARTIFACT_PATH",
    "CONTRACT_NAME",
    "EVM_VERSION",
    "OPTIMIZER",
    "SOLCJS",
    "SOURCE_PATH",
    "compile_contract",
    "main",
    "render",
]

HERE = Path(__file__).resolve().parent
CONTRACT_NAME = "LedgerAnchor"
SOURCE_PATH = HERE / f"{CONTRACT_NAME}.sol"
ARTIFACT_PATH = HERE / "build" / f"{CONTRACT_NAME}.json"
SOLCJS = HERE / "node_modules" / ".bin" / "solcjs"
#: pinned so the bytecode does not follow the compiler's default, which moves between releases
EVM_VERSION = "cancun"
OPTIMIZER: dict[str, Any] = {"enabled": True, "runs": 200}
_TIMEOUT = 300.0
_HINT = "run `make contracts` (or `npm ci` in contracts/)"


def _run(solcjs: Path, args: list[str], stdin: str | None = None) -> str:
    if not solcjs.exists():
        raise CompileError(f"solcjs not found at {solcjs}: {_HINT}")
    try:
        done = subprocess.run(
            [str(solcjs), *args], input=stdin, capture_output=True, text=True, timeout=_TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise CompileError(f"cannot run {solcjs}: {type(exc).__name__}: {exc}; {_HINT}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise CompileError(f"{solcjs.name} {' '.join(args)} failed (exit {done.returncode}): {last}")
    return done.stdout


def _standard_input(source: str) -> dict[str, Any]:
    return {
        "language": "Solidity",
        "sources": {SOURCE_PATH.name: {"content": source}},
        "settings": {
            "optimizer": OPTIMIZER,
            "evmVersion": EVM_VERSION,
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
        },
    }


def _parse_output(stdout: str) -> dict[str, Any]:
    # solcjs prints notices (">>> Cannot retry compilation with SMT ...") on stdout before the JSON
    start = stdout.find("{")
    if start < 0:
        raise CompileError("solcjs printed no JSON output")
    try:
        output, _ = json.JSONDecoder().raw_decode(stdout[start:])
    except json.JSONDecodeError as exc:
        raise CompileError(f"solcjs printed malformed JSON: {exc}") from None
    if not isinstance(output, dict):
        raise CompileError("solcjs printed JSON that is not an object")
    return output


def compile_contract(source_path: Path = SOURCE_PATH, solcjs: Path = SOLCJS) -> dict[str, Any]:
    """Compile the contract and return the artifact without writing it.

    Warnings fail like errors: the committed contract compiles cleanly.
    """
    raw = source_path.read_bytes()
    version = _run(solcjs, ["--version"]).strip().splitlines()[-1].strip()
    output = _parse_output(_run(solcjs, ["--standard-json"], json.dumps(_standard_input(raw.decode("utf-8")))))
    problems = [
        str(e.get("formattedMessage") or e.get("message", "?")).strip().splitlines()[0]
        for e in output.get("errors", [])
        if e.get("severity") in ("error", "warning")
    ]
    if problems:
        raise CompileError(f"{source_path.name}: {len(problems)} problem(s); first: {problems[0]}")
    try:
        compiled = output["contracts"][SOURCE_PATH.name][CONTRACT_NAME]
        bytecode = compiled["evm"]["bytecode"]["object"]
        deployed = compiled["evm"]["deployedBytecode"]["object"]
        abi = compiled["abi"]
    except (KeyError, TypeError):
        raise CompileError(f"solcjs output has no {CONTRACT_NAME} bytecode/ABI") from None
    if not bytecode or not deployed:
        raise CompileError(f"{CONTRACT_NAME} compiled to empty bytecode")
    return {
        "contract": CONTRACT_NAME,
        "abi": abi,
        "bytecode": "0x" + bytecode,
        "deployedBytecode": "0x" + deployed,
        "compiler": version,
        "optimizer": dict(OPTIMIZER),
        "evmVersion": EVM_VERSION,
        "source_sha256": hashlib.sha256(raw).hexdigest(),
    }


def render(artifact: dict[str, Any]) -> str:
    """The artifact's one serialisation: sorted keys, two-space indent, trailing newline."""
    return json.dumps(artifact, sort_keys=True, indent=2, ensure_ascii=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    del argv
    try:
        artifact = compile_contract()
    except CompileError as exc:
        print(f"contracts.compile: {exc}", file=sys.stderr)
        return 1
    ARTIFACT_PATH.parent.mkdir(parents=True, exist_ok=True)
    text = render(artifact)
    tmp = ARTIFACT_PATH.with_suffix(".json.tmp")
    tmp.write_text(text, encoding="ascii")
    tmp.replace(ARTIFACT_PATH)
    size = len(artifact["bytecode"]) // 2 - 1
    print(f"wrote {ARTIFACT_PATH.relative_to(HERE.parent)} ({artifact['compiler']}, {size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
