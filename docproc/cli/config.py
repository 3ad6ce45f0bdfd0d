"""`docproc config`: check or show the configuration."""

from __future__ import annotations

import argparse
import json

from docproc.cli.common import EXIT_OK, EXIT_USAGE, refuse_exposed_api
from docproc.settings import Settings


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    """Print the configuration as JSON (show), or say it is fit to run (check)."""
    if args.action == "show":
        print(json.dumps(settings.model_dump(mode="json"), indent=2))
        return EXIT_OK
    if refuse_exposed_api(settings):
        return EXIT_USAGE
    print(f"{settings.config_file}: ok")
    return EXIT_OK
