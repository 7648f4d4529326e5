"""The baseline of the documents benchmark: a plain FastAPI endpoint that streams an upload to a file
and serves it back with `FileResponse` — no auth, no encryption, no ledger."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse

app = FastAPI()
_ROOT = Path(os.environ.get("PLAIN_FILES_DIR") or tempfile.mkdtemp(prefix="plain-files-"))


@app.post("/plain")
async def upload(request: Request) -> dict[str, str]:
    name = str(uuid.uuid4())
    with (_ROOT / name).open("wb") as out:
        async for chunk in request.stream():
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return {"id": name}


@app.get("/plain/{name}")
async def download(name: str) -> FileResponse:
    return FileResponse(_ROOT / str(uuid.UUID(name)), media_type="application/octet-stream")
