"""The status API and the status page: a Flask app factory, served by waitress."""

from __future__ import annotations

import logging

from flask import Flask

from docproc.broker import probe_client, redis_client
from docproc.ledger.redis_ledger import RedisLedger
from docproc.settings import Settings
from docproc.status.metrics import registry
from docproc.status.reports import ReportCache
from docproc.status.web import guard
from docproc.status.web.access import Access
from docproc.status.web.api import STATS_CACHE_SECONDS, api
from docproc.status.web.context import EXTENSION, StatusContext, TimedCache
from docproc.status.web.health import health
from docproc.status.web.metrics import metrics
from docproc.status.web.page import page

log = logging.getLogger("docproc.api")


def create_app(settings: Settings, ledger: RedisLedger | None = None) -> Flask:
    """Build the status API and page for these settings."""
    app = Flask(__name__, static_folder=None)
    app.config["DOCPROC_SETTINGS"] = settings
    app.json.sort_keys = False  # type: ignore[attr-defined]
    the_ledger = ledger or RedisLedger(redis_client(settings))
    app.extensions[EXTENSION] = StatusContext(
        settings=settings,
        ledger=the_ledger,
        probe=RedisLedger(probe_client(settings)),
        reports=ReportCache(settings),
        stats_cache=TimedCache(STATS_CACHE_SECONDS),
        collectors=registry(settings, the_ledger),
        access=Access(settings),
    )
    guard.install(app)
    for blueprint in (health, page, api, metrics):
        app.register_blueprint(blueprint)
    return app


def serve(settings: Settings) -> None:
    """Serve the status API with waitress until interrupted."""
    from waitress import serve as waitress_serve

    api_settings = settings.status_api
    log.info("status API on http://%s:%d/", api_settings.host, api_settings.port)
    waitress_serve(create_app(settings), host=api_settings.host, port=api_settings.port,
                   threads=api_settings.threads, ident="docproc")
