"""`examples/verify_client.py` against a live server: it downloads a shared document, fetches its receipt
and verifies both locally — with a key given on the command line or fetched with a token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Api

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "verify_client.py"
BOUNDARY = "example-client-boundary"
DATA = b"%PDF-1.7\n" + os.urandom(300_000)


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(EXAMPLE), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def _shared(api: Api, data: bytes = DATA, max_downloads: int = 1) -> str:
    """Upload `data` as an agent and share it: the link."""
    body = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="case"\r\n\r\nX-1\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="title"\r\n\r\nStatement\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="statement.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n").encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    with api.client("acme", "agent", "ann") as agent:
        uploaded = agent.post("/v1/documents", content=body,
                              headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
        assert uploaded.status_code == 201, uploaded.text
        document_id = uploaded.json()["document"]["id"]
        share = agent.post(f"/v1/documents/{document_id}/shares",
                           json={"recipient": "cust-1", "expires_in": 3600, "max_downloads": max_downloads})
        assert share.status_code == 201, share.text
        url: str = share.json()["url"]
        return url


def _vkey(api: Api, tenant: str) -> str:
    with api.client(tenant, "client", "app") as http:
        key: str = http.get("/v1/log").json()["vkey"]
        return key


def _verdict(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    verdict: dict[str, Any] = json.loads(run.stdout)
    return verdict


def test_the_example_downloads_and_verifies_with_a_given_key(api: Api, tmp_path: Path) -> None:
    link = _shared(api)
    run = _run(link, "--vkey", _vkey(api, "acme"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    verdict = _verdict(run)
    assert verdict["valid"] is True and all(check["ok"] for check in verdict["checks"])
    assert verdict["document"]["name"] == "statement.pdf"
    assert (tmp_path / "statement.pdf").read_bytes() == DATA
    assert not list(tmp_path.glob("*.part"))
    # the one download is used up: no verdict, and nothing written
    again = _run(link, "--vkey", _vkey(api, "acme"), "--out", str(tmp_path / "again.pdf"), cwd=tmp_path)
    assert again.returncode == 1 and "410" in again.stderr
    assert not (tmp_path / "again.pdf").exists() and not list(tmp_path.glob("*.part"))


def test_the_example_fetches_the_key_with_a_token(api: Api, tmp_path: Path) -> None:
    link = _shared(api)
    run = _run(link, "--token", api.token("acme", "client", "app"), "--out", str(tmp_path / "doc.pdf"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert _verdict(run)["valid"] is True
    assert (tmp_path / "doc.pdf").read_bytes() == DATA


def test_the_example_rejects_a_document_under_another_logs_key(api: Api, tmp_path: Path) -> None:
    link = _shared(api)
    run = _run(link, "--vkey", _vkey(api, "globex"), "--out", str(tmp_path / "doc.pdf"), cwd=tmp_path)
    assert run.returncode == 1
    verdict = _verdict(run)
    assert verdict["valid"] is False
    assert {check["name"] for check in verdict["checks"] if not check["ok"]} == {"checkpoint_signature"}
    assert "checkpoint_signature" in run.stderr


@pytest.mark.parametrize("link", ["http://127.0.0.1:9/not/a/share", "{base}/v1/shared/" + "A" * 43])
def test_the_example_gives_no_verdict_without_a_document(api: Api, tmp_path: Path, link: str) -> None:
    run = _run(link.format(base=api.url), "--vkey", _vkey(api, "acme"), cwd=tmp_path)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.startswith("verify_client: ")
    assert list(tmp_path.iterdir()) == []


def test_the_example_does_not_overwrite_a_file(api: Api, tmp_path: Path) -> None:
    link = _shared(api)
    (tmp_path / "statement.pdf").write_bytes(b"mine")
    run = _run(link, "--vkey", _vkey(api, "acme"), cwd=tmp_path)
    assert run.returncode == 1 and "not overwritten" in run.stderr
    assert (tmp_path / "statement.pdf").read_bytes() == b"mine"
    with httpx.Client() as http:  # the download was not spent
        assert http.get(link).status_code == 200
