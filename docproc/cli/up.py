"""`docproc up`: everything under supervisord, in the foreground."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from docproc.cli.common import EXIT_FAILURE, EXIT_USAGE, prepare_state, refuse_exposed_api
from docproc.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def supervisord_conf() -> Path:
    """Return the supervisord configuration `docproc up` runs."""
    override = os.environ.get("DOCPROC_SUPERVISORD_CONF")
    return Path(override) if override else REPO_ROOT / "deploy" / "supervisord.conf"


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    """Print where things are, then become supervisord running every program."""
    from docproc.instance import AlreadyRunning, hold_lock

    if refuse_exposed_api(settings):
        return EXIT_USAGE
    prepare_state(settings)
    try:
        # Held by supervisord, which replaces this process: one `docproc up` per state_dir.
        hold_lock(settings.state_dir, "up")
    except AlreadyRunning as exc:
        print(f"docproc up: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    settings.inbox.mkdir(parents=True, exist_ok=True)
    settings.outbox.mkdir(parents=True, exist_ok=True)
    api = settings.status_api
    print(
        "docproc is starting\n"
        f"  drop files into   {settings.inbox}\n"
        f"  results appear in {settings.outbox}\n"
        f"  status page       http://{api.host}:{api.port}/\n"
        f"  broker            {settings.broker_url}\n"
        "  stop with Ctrl-C",
        flush=True,
    )
    env = {
        **os.environ,
        "DOCPROC_CONFIG": str(settings.config_file),
        "DOCPROC_STATE_DIR": str(settings.state_dir),
        "DOCPROC_PYTHON": sys.executable,
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(supervisord_conf())]
    os.execve(sys.executable, command, env)
    return EXIT_FAILURE  # not reached
