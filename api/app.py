"""The FastAPI application: a thin face over the ledger and compliance services."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest, multiprocess
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from sqlalchemy import text

from api.auth import TokenIssuer, TokenVerifier, load_jwt_key
from api.deps import AppState, authenticated_routes
from api.middleware import AuthenticateFirst, BodyLimit, Metrics, RequestIds
from api.problems import install_problem_handlers
from api.routers import anchors, cases, compliance, documents, entries, exports, interactions, log, shares
from api.schemas import Health
from api.settings import ApiSettings
from compliance.access import AccessService
from compliance.audit import AuditScheduler, SelfAudit, audit_healthy
from compliance.erasure import Erasures
from compliance.exports import ExportRunner, Exports
from compliance.scheduling import LeasedSchedule
from ledger.anchor_scheduler import AnchorScheduler
from ledger.anchoring import open_chain
from ledger.service import Ledger

__all__ = ["create_app", "create_app_from_env"]

APPEND_TRANSACTIONS = Counter("caseledger_append_transactions", "append transactions committed (group commits)")
APPENDED_ENTRIES = Counter("caseledger_appended_entries", "entries appended")


def _count_commit(entries: int) -> None:
    APPEND_TRANSACTIONS.inc()
    APPENDED_ENTRIES.inc(entries)


def _state(settings: ApiSettings) -> AppState:
    ledger = Ledger.open(settings)
    ledger.appender.on_commit = _count_commit
    key = load_jwt_key(settings)
    return AppState(
        ledger=ledger,
        access=AccessService(ledger),
        verifier=TokenVerifier(settings, key.public_key() if key is not None else None),
        issuer=TokenIssuer(key, settings) if key is not None else None,
        settings=settings,
    )


#: routes that take a file: their bodies may be a document's size, plus this much for the form around it
UPLOAD_PATHS = frozenset({"/v1/documents", "/v1/verify/document"})
MULTIPART_OVERHEAD = 64 * 1024


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The app for `settings` (default: from the CASELEDGER_* environment)."""
    api = settings if settings is not None else ApiSettings()
    api.check_production()
    # anchoring settings are checked here, so a misconfiguration stops `serve` with one line
    chain = open_chain(api) if api.anchoring else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.caseledger = _state(api)
        # a crash may have left a document entry unindexed or a blob without its entry
        app.state.caseledger.ledger.documents.recover()
        export_runner = ExportRunner(Exports(app.state.caseledger.ledger))
        setattr(app.state, exports.EXPORT_RUNNER, export_runner)
        export_runner.start()
        led = app.state.caseledger.ledger
        audits = AuditScheduler(SelfAudit(led), led, api.audit_interval)
        compliance_runs = LeasedSchedule(led, "compliance", api.compliance_interval, Erasures(led).run_all)
        audits.start()
        compliance_runs.start()
        scheduler = None
        if chain is not None:  # one round per interval for the deployment, whatever the number of workers
            scheduler = AnchorScheduler(app.state.caseledger.ledger.anchoring, chain, api.anchor_interval)
            scheduler.start()
        # what exists now (modules, the app, SQLAlchemy and pydantic machinery) lives as long as
        # the process: keep it out of the collector's full passes, which otherwise stall requests
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.stop()
            export_runner.stop()
            audits.stop()
            compliance_runs.stop()
            app.state.caseledger.ledger.close()

    app = FastAPI(
        title="caseledger",
        version="1",
        summary="Encrypted, hash-chained, Merkle-proven ledger of customer-support interactions",
        lifespan=lifespan,
        # our own Prometheus metrics (/metrics) measure requests; FastAPI's OpenTelemetry hooks
        # would otherwise look up the global providers on every request
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_problem_handlers(app)
    app.include_router(interactions.router)
    app.include_router(entries.router)
    app.include_router(log.router)
    app.include_router(cases.router)
    app.include_router(anchors.router)
    app.include_router(documents.router)
    app.include_router(shares.router)
    app.include_router(compliance.router)
    app.include_router(exports.router)

    @app.get("/healthz", response_model=Health, tags=["operations"])
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz", response_model=Health, tags=["operations"],
             responses={503: {"model": Health, "description": "not ready"}})
    def readyz(request: Request) -> Any:
        state: AppState = request.app.state.caseledger
        # a failed self-audit (SEC 17a-4(f)) makes the instance not ready until an audit passes
        checks = {"database": False, "keys": state.verifier.ready, "audit": audit_healthy(state.ledger) is not False}
        try:
            with state.ledger.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["database"] = True
        except Exception:  # any failure to reach the database means not ready
            checks["database"] = False
        ready = all(checks.values())
        return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                            status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}}})
    def metrics() -> Response:
        registry: CollectorRegistry = DEFAULT_REGISTRY
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    # the last added runs first: request ids around everything, so even a refusal carries one
    app.add_middleware(AuthenticateFirst, routes=authenticated_routes(app))
    app.add_middleware(Metrics)
    # a document upload may be as large as a document, plus its form fields
    app.add_middleware(BodyLimit, limit=api.max_body_bytes, uploads=UPLOAD_PATHS,
                       upload_limit=api.max_document_bytes + MULTIPART_OVERHEAD)
    app.add_middleware(RequestIds)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for uvicorn workers: settings come from CASELEDGER_* in the environment."""
    # The background appender thread blocks on the database and then needs the GIL back from the
    # event loop (and the threadpool's request threads); a shorter switch interval gets it sooner.
    sys.setswitchinterval(0.0005)
    return create_app(ApiSettings())
