"""What several commands share: exit codes, the state folder, the API check, the ledger."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from docproc.settings import Settings

if TYPE_CHECKING:
    from docproc.ledger.redis_ledger import RedisLedger

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def prepare_state(settings: Settings) -> None:
    """Make the state folder (private) and the spool in it."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.state_dir, 0o700)
    settings.spool_dir.mkdir(exist_ok=True)


def refuse_exposed_api(settings: Settings) -> bool:
    """Print why the API must not start (public address, no token); return True if so."""
    problem = settings.status_api.exposure_problem(settings.config_file)
    if problem is not None:
        print(f"docproc: {problem}", file=sys.stderr)
    return problem is not None


def connect(settings: Settings, command: str) -> RedisLedger | None:
    """Return the ledger, or print why the broker does not answer and return None."""
    from docproc.broker import broker_problem, redis_client
    from docproc.cli.output import complain
    from docproc.ledger.redis_ledger import RedisLedger

    problem = broker_problem(settings)
    if problem is not None:
        complain(f"docproc {command}: {problem}\n  is docproc running? (docproc up)")
        return None
    return RedisLedger(redis_client(settings))
