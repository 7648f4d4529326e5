"""`verification` is usable alone (DESIGN §1): in a bare venv holding only it, `cryptography` and `rfc8785`.

The venv is made without pip and offline: a ``.pth`` file puts a directory on its path that holds
a copy of `verification` and links to those two distributions (and what `cryptography` needs) from
the test interpreter. There it verifies a receipt and proofs a real ledger made, and finds no
SQLAlchemy, FastAPI or `ledger` to import.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import venv
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: what `verification` may need at run time, by top-level import name
ALLOWED = ("cryptography", "rfc8785", "cffi", "_cffi_backend", "pycparser")

_SCRIPT = """
import json, sys
from verification import Trust, verify_document, verify_receipt
docs = json.load(open(sys.argv[1]))
trust = Trust.of(docs["vkey"])
assert verify_receipt(docs["receipt"], trust)["key_trusted"] is True
for name in ("inclusion", "consistency", "range"):
    assert verify_document(docs[name], trust)["trusted_root"] == "checkpoint", name
for name in ("sqlalchemy", "fastapi", "ledger", "api", "pydantic", "web3"):
    try:
        __import__(name)
    except ImportError:
        continue
    raise SystemExit(f"{name} is importable in the bare venv")
print("ok")
"""


def _link(name: str, into: Path) -> None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return  # not installed (e.g. no cffi where cryptography does not need it)
    origin = Path(spec.origin)
    source = origin.parent if spec.submodule_search_locations else origin
    (into / source.name).symlink_to(source)


def test_verification_runs_with_only_its_dependencies(tmp_path: Path, ledger_documents: dict[str, Any]) -> None:
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=False, system_site_packages=False)
    python = env_dir / "bin" / "python"
    libs = tmp_path / "libs"
    libs.mkdir()
    shutil.copytree(ROOT / "verification", libs / "verification", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ALLOWED:
        _link(name, libs)
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site).mkdir(parents=True, exist_ok=True)
    (Path(site) / "libs.pth").write_text(f"{libs}\n")
    docs = tmp_path / "docs.json"
    docs.write_text(json.dumps(ledger_documents))
    done = subprocess.run([python, "-I", "-c", _SCRIPT, str(docs)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
