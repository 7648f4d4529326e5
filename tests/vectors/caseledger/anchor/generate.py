"""Write caseledger's anchoring vectors: rounds.json and anchor-receipts.json (DESIGN §6).

Run from anywhere: ``python tests/vectors/caseledger/anchor/generate.py``. The output is
deterministic (fixed seeds; Ed25519 signatures are deterministic), and the tests check that the
files are exactly what this writes.

Every value is computed here from the specifications (DESIGN §3 and §6, RFC 8785, RFC 9162,
C2SP signed-note / tlog-checkpoint) with ``hashlib``, ``rfc8785`` and ``cryptography``, never
with caseledger's own code; the JCS of each round leaf is written out by hand and checked
against ``rfc8785``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

HERE = Path(__file__).resolve().parent
EM_DASH = "\u2014"
#: the logs of the round, deliberately not in round order; the round sorts them by UTF-8 bytes
LOGS = ["caseledger.local/acme-bank", "caseledger.local/Zeta", "caseledger.local/ärzte-nord",
        "caseledger.local/beta", "caseledger.local/\U0001f3e5-clinic"]
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"

Case = dict[str, Any]


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(leaves: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.1 over leaf hashes."""
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n])."""
    if len(leaves) <= 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def leaf_data(log: str, size: int, root: bytes) -> str:
    """DESIGN §6: JCS({"log", "root", "size"}), keys in order, no spaces, non-ASCII kept as UTF-8."""
    text = '{"log":' + json.dumps(log, ensure_ascii=False) + ',"root":"' + root.hex() + '","size":' + str(size) + "}"
    assert text.encode("utf-8") == rfc8785.dumps({"log": log, "root": root.hex(), "size": size})
    return text


def seed(log: str) -> bytes:
    return sha256(b"caseledger anchor vectors " + log.encode("utf-8"))


def vkey(log: str, key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes_raw()
    kid = sha256(log.encode("utf-8") + b"\n\x01" + raw)[:4]
    key_b64 = base64.b64encode(b"\x01" + raw).decode()
    return f"{log}+{kid.hex()}+{key_b64}"


def note(log: str, size: int, root: bytes, key: Ed25519PrivateKey) -> str:
    body = f"{log}\n{size}\n{base64.b64encode(root).decode()}\n"
    raw = key.public_key().public_bytes_raw()
    kid = sha256(log.encode("utf-8") + b"\n\x01" + raw)[:4]
    signature = key.sign(body.encode("utf-8"))
    return f"{body}\n{EM_DASH} {log} {base64.b64encode(kid + signature).decode()}\n"


def the_round() -> tuple[list[tuple[str, int, bytes]], list[bytes]]:
    """The round's leaves (log, size, root) in round order and their leaf hashes."""
    leaves = [(log, 10 + 7 * i, sha256(f"tree of {log}".encode())) for i, log in enumerate(LOGS)]
    leaves.sort(key=lambda leaf: leaf[0].encode("utf-8"))
    return leaves, [sha256(b"\x00" + leaf_data(*leaf).encode("utf-8")) for leaf in leaves]


def rounds() -> list[Case]:
    cases: list[Case] = []
    leaves, hashes = the_round()
    for n in (1, 2, 3, len(leaves)):
        cases.append({
            "desc": f"a round of {n} log{'s' if n > 1 else ''}, ordered by origin bytes",
            "leaves": [{"log": log, "size": size, "root": root.hex()} for log, size, root in leaves[:n]],
            "leaf_data": [leaf_data(*leaf) for leaf in leaves[:n]],
            "leaf_hashes": [h.hex() for h in hashes[:n]],
            "root": mth(hashes[:n]).hex(),
            "proofs": [[p.hex() for p in path(i, hashes[:n])] for i in range(n)],
            "wantErr": False,
        })
    log, size, root = leaves[0]
    cases.append({"desc": "the same log twice", "leaves": [{"log": log, "size": size, "root": root.hex()},
                                                           {"log": log, "size": size + 1, "root": root.hex()}],
                  "wantErr": True})
    return cases


def receipt(index: int) -> Case:
    leaves, hashes = the_round()
    log, size, root = leaves[index]
    key = Ed25519PrivateKey.from_private_bytes(seed(log))
    return {"type": "caseledger.anchor-receipt", "v": 1, "log": log, "checkpoint": note(log, size, root, key),
            "round": {"id": 7, "size": len(leaves), "root": mth(hashes).hex(), "leaf_index": index,
                      "proof": [p.hex() for p in path(index, hashes)]},
            "chain": {"chain_id": 11155111, "contract": CONTRACT, "tx": "0x" + sha256(b"tx 7").hex(),
                      "block": 6543210, "block_hash": "0x" + sha256(b"block 6543210").hex()}}


def _flip(text: str) -> str:
    return format(int(text[0], 16) ^ 1, "x") + text[1:]


def anchor_receipts() -> list[Case]:
    leaves, _ = the_round()
    vkeys = [vkey(log, Ed25519PrivateKey.from_private_bytes(seed(log))) for log, _, _ in leaves]
    cases: list[Case] = [{"desc": f"leaf {i} of the round: {leaves[i][0]}", "vkeys": vkeys, "receipt": receipt(i),
                          "wantErr": False} for i in range(len(leaves))]
    base = 1
    log, size, root = leaves[base]
    other = Ed25519PrivateKey.from_private_bytes(bytes(32))

    def broken(desc: str, edit: Callable[[Case], None]) -> Case:
        doc = copy.deepcopy(receipt(base))
        edit(doc)
        return {"desc": desc, "vkeys": vkeys, "receipt": doc, "wantErr": True}

    def put(section: str, name: str, value: Any) -> Callable[[Case], None]:
        return lambda doc: doc[section].__setitem__(name, value)

    cases += [
        broken("round root flipped", lambda d: put("round", "root", _flip(d["round"]["root"]))(d)),
        broken("round size changes the path's shape", put("round", "size", 9)),
        broken("leaf index of another leaf", put("round", "leaf_index", 0)),
        broken("leaf index outside the round", put("round", "leaf_index", len(leaves))),
        broken("proof hash flipped", lambda d: d["round"]["proof"].__setitem__(0, _flip(d["round"]["proof"][0]))),
        broken("proof hash dropped", lambda d: d["round"]["proof"].pop()),
        broken("proof hash added", lambda d: d["round"]["proof"].append(d["round"]["proof"][0])),
        broken("proof hash in upper case",
               lambda d: d["round"]["proof"].__setitem__(0, d["round"]["proof"][0].upper())),
        broken("checkpoint of another size, validly signed",
               lambda d: d.__setitem__("checkpoint", note(log, size + 1, root,
                                                          Ed25519PrivateKey.from_private_bytes(seed(log))))),
        broken("checkpoint signed by another key", lambda d: d.__setitem__("checkpoint", note(log, size, root, other))),
        broken("checkpoint size line edited after signing",
               lambda d: d.__setitem__("checkpoint", d["checkpoint"].replace(f"\n{size}\n", f"\n{size + 1}\n", 1))),
        broken("log of another member of the round", lambda d: d.__setitem__("log", leaves[0][0])),
        broken("log nobody trusts", lambda d: d.__setitem__("log", "caseledger.local/nobody")),
        broken("version 2", lambda d: d.__setitem__("v", 2)),
        broken("contract without 0x", lambda d: put("chain", "contract", CONTRACT[2:])(d)),
        broken("tx hash in upper case", lambda d: put("chain", "tx", "0x" + d["chain"]["tx"][2:].upper())(d)),
        broken("chain id 0", put("chain", "chain_id", 0)),
    ]
    return cases


def build() -> dict[str, list[Case]]:
    return {"rounds.json": rounds(), "anchor-receipts.json": anchor_receipts()}


def render(cases: list[Case]) -> str:
    return json.dumps(cases, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    for name, cases in build().items():
        (HERE / name).write_text(render(cases), encoding="utf-8")
        print(f"wrote {len(cases)} cases to {HERE / name}")


if __name__ == "__main__":
    main()
