"""The `docproc` command line."""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from docproc.instance import die_with_parent, dies_with_supervisor
from docproc.names import escape, escape_log_messages
from docproc.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from docproc.intake import Intake

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
REPO_ROOT = Path(__file__).resolve().parent.parent


def setup_logging(component: str, level: int = logging.INFO) -> None:
    """Log one readable line per event, prefixed with the component's name.

    Messages are escaped (docproc.names): a file name holding a newline or an ESC sequence
    can neither forge a line nor reach a terminal as control.
    """
    escape_log_messages()
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s {component:<7} %(levelname)-5s %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )


def _stop_event() -> threading.Event:
    stop = threading.Event()

    def _handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    return stop


def _prepare_state(settings: Settings) -> None:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.state_dir, 0o700)
    settings.spool_dir.mkdir(exist_ok=True)


def supervisord_conf() -> Path:
    """Return the supervisord configuration `docproc up` runs."""
    override = os.environ.get("DOCPROC_SUPERVISORD_CONF")
    return Path(override) if override else REPO_ROOT / "deploy" / "supervisord.conf"


def _refuse_exposed_api(settings: Settings) -> bool:
    """Print why the API must not start (public address, no token); return True if so."""
    problem = settings.status_api.exposure_problem(settings.config_file)
    if problem is not None:
        print(f"docproc: {problem}", file=sys.stderr)
    return problem is not None


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from docproc.instance import AlreadyRunning, hold_lock

    if _refuse_exposed_api(settings):
        return EXIT_USAGE
    _prepare_state(settings)
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


def cmd_broker(settings: Settings, args: argparse.Namespace) -> int:
    from docproc.broker import exec_embedded
    from docproc.instance import AlreadyRunning, hold_lock

    if settings.broker_url != "embedded":
        logging.info("broker_url is %s: no embedded broker to run", settings.broker_url)
        return EXIT_OK
    _prepare_state(settings)
    try:
        # Held by valkey-server, which replaces this process: two would share one AOF file.
        hold_lock(settings.state_dir, "broker")
    except AlreadyRunning as exc:
        logging.error("%s", exc)
        return EXIT_FAILURE
    exec_embedded(settings)
    return EXIT_FAILURE  # not reached


def cmd_watch(settings: Settings, args: argparse.Namespace) -> int:
    from docproc.app import configure
    from docproc.broker import BrokerCheck, redis_client, wait_for_broker
    from docproc.inbox.spool import recover_spool
    from docproc.intake import Intake
    from docproc.ledger import Ledger
    from docproc.metrics import publish_watcher_stats
    from docproc.tasks import submit
    from docproc.watcher import InboxWatcher

    _prepare_state(settings)
    settings.inbox.mkdir(parents=True, exist_ok=True)
    stop = _stop_event()
    configure(settings, results=False)
    wait_for_broker(settings)
    intake = Intake(settings, Ledger(redis_client(settings)), submit)
    intake.recover(recover_spool(settings.spool_dir))
    watcher = InboxWatcher(
        settings.inbox, settings.spool_dir, settings.watcher, intake,
        can_claim=BrokerCheck(settings), on_batch_end=intake.flush,
    )
    threading.Thread(target=_sweep_spool, args=(intake, settings, stop), daemon=True).start()
    publish_watcher_stats(watcher, settings, stop)
    watcher.run(stop)
    try:
        intake.flush()
    except Exception:
        # Claims not handed over stay in the spool; the next start sends them on.
        logging.exception("could not hand over the last claims; they stay in the spool")
    return EXIT_OK


SPOOL_SWEEP_SECONDS = 30.0


def _sweep_spool(intake: Intake, settings: Settings, stop: threading.Event) -> None:
    while not stop.wait(SPOOL_SWEEP_SECONDS):
        try:
            intake.sweep(settings.spool_dir, min_age=SPOOL_SWEEP_SECONDS)
        except Exception:
            logging.exception("sweeping the spool failed; trying again later")


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from docproc import queues
    from docproc.app import configure
    from docproc.broker import wait_for_broker

    # Made at start, as `docproc up` does; once running, a vanished outbox (an unmounted
    # share) holds documents instead of being made again on the mount point.
    settings.outbox.mkdir(parents=True, exist_ok=True)
    app = configure(settings)
    wait_for_broker(settings)
    argv = [
        "worker", "--loglevel", "INFO", "-n", args.name or "worker1@%h",
        "--concurrency", str(args.concurrency or settings.workers.concurrency),
        "--without-mingle", "--without-gossip", "--queues", ",".join(queues.ALL),
    ]
    app.worker_main(argv)
    return EXIT_OK


def cmd_beat(settings: Settings, args: argparse.Namespace) -> int:
    from docproc.app import configure
    from docproc.beat import RENEW_SECONDS
    from docproc.broker import wait_for_broker

    _prepare_state(settings)
    app = configure(settings)
    wait_for_broker(settings)
    # Any number of Beats may run: the one holding the lock in Redis sends, the others stand
    # by; last runs live in Redis too, so the schedule needs no file.
    app.start(["beat", "--loglevel", "INFO", "--scheduler", "docproc.beat:LeaderScheduler",
               "--max-interval", str(int(RENEW_SECONDS))])
    return EXIT_OK


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    from docproc.status_api import serve

    if _refuse_exposed_api(settings):
        return EXIT_USAGE
    serve(settings)
    return EXIT_OK


def cmd_process(settings: Settings, args: argparse.Namespace) -> int:
    from docproc.worker.in_process import process_paths

    missing = [path for path in args.paths if not path.exists()]
    if missing:
        print(f"docproc process: no such file or folder: {escape(str(missing[0]))}",
              file=sys.stderr)
        return EXIT_USAGE
    outbox = (args.outbox or settings.outbox).resolve()
    results = process_paths(args.paths, settings, outbox, jobs=args.jobs)
    for relpath, status, folder in results:
        print(f"{status:<9} {escape(relpath)} -> {escape(str(folder))}")
    failed = sum(1 for _, status, _ in results if status == "failed")
    print(f"{len(results)} processed, {failed} failed", file=sys.stderr)
    return EXIT_OK


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from docproc.console import status

    return status(settings, as_json=args.json)


def cmd_ingest(settings: Settings, args: argparse.Namespace) -> int:
    from docproc.console import ingest

    return ingest(settings, args.paths, wait=args.wait)


def cmd_retry(settings: Settings, args: argparse.Namespace) -> int:
    from docproc.console import retry

    if not args.ids and not args.all_failed:
        print("docproc retry: name document ids, or --all-failed", file=sys.stderr)
        return EXIT_USAGE
    return retry(settings, args.ids, all_failed=args.all_failed)


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from docproc.daily import report_command

    return report_command(settings, args.date)


def cmd_purge(settings: Settings, args: argparse.Namespace) -> int:
    from docproc.retention import purge_command

    return purge_command(settings, dry_run=args.dry_run)


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "show":
        print(json.dumps(settings.model_dump(mode="json"), indent=2))
        return EXIT_OK
    if _refuse_exposed_api(settings):
        return EXIT_USAGE
    print(f"{settings.config_file}: ok")
    return EXIT_OK


def _day(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of every command."""
    parser = argparse.ArgumentParser(prog="docproc", description=__doc__)
    config_help = "configuration file (default: $DOCPROC_CONFIG, else ./config/docproc.yaml)"
    parser.add_argument("-c", "--config", help=config_help)
    # Also after the command (`docproc up --config F`); SUPPRESS keeps one given before it.
    after = argparse.ArgumentParser(add_help=False)
    after.add_argument("-c", "--config", default=argparse.SUPPRESS, help=config_help)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=summary, parents=[after])

    command("up", "run everything under supervisord in the foreground")
    command("broker", "run the embedded broker (when broker_url is embedded)")
    command("watch", "run the inbox watcher")
    worker = command("worker", "run a Celery worker")
    worker.add_argument("--name", help="worker node name (default worker1@%%h)")
    worker.add_argument("--concurrency", type=int, help="child processes (default from config)")
    command("beat", "run Celery Beat (schedules)")
    command("api", "run the status API")
    process = command("process", "process files in this process, no broker")
    process.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    process.add_argument("--outbox", type=Path, help="write here instead of the configured outbox")
    process.add_argument("--jobs", type=int, default=1, help="processes to use (default 1)")
    status = command("status", "counts per state, queues, workers, failures")
    status.add_argument("--json", action="store_true")
    ingest = command("ingest", "copy files or folders into the inbox")
    ingest.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    ingest.add_argument("--wait", action="store_true", help="show progress until all are done")
    retry = command("retry", "send failed documents through the pipeline again")
    retry.add_argument("ids", nargs="*", metavar="ID")
    retry.add_argument("--all-failed", action="store_true")
    report = command("report", "build the daily report now")
    report.add_argument("--date", type=_day, help="YYYY-MM-DD (default: yesterday, local time)")
    purge = command("purge", "apply retention now")
    purge.add_argument("--dry-run", action="store_true", help="list what would go, change nothing")
    config = command("config", "check or show the configuration")
    config.add_argument("action", choices=["check", "show"])
    return parser


COMMANDS = {
    "up": cmd_up, "broker": cmd_broker, "watch": cmd_watch, "worker": cmd_worker,
    "beat": cmd_beat, "api": cmd_api, "process": cmd_process, "status": cmd_status,
    "ingest": cmd_ingest, "retry": cmd_retry, "report": cmd_report, "purge": cmd_purge,
    "config": cmd_config,
}


# The programs of deploy/supervisord.conf.
SUPERVISED = frozenset({"broker", "watch", "worker", "beat", "api"})


def main(argv: list[str] | None = None) -> int:
    """Run one docproc command; return its exit status."""
    args = build_parser().parse_args(argv)
    setup_logging(args.command)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"docproc: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # Whatever docproc writes (the outbox above all: reports, daily reports, retried/ folders)
    # gets the configured modes, however the process was started; docproc.outbox sets a
    # document folder's modes explicitly too.
    os.umask(settings.outbox_umask)
    if args.command in SUPERVISED and dies_with_supervisor():
        # kill -9 of supervisord must leave no orphan running on (a second `up` would
        # then start a second broker on the same files).
        die_with_parent()
    try:
        return COMMANDS[args.command](settings, args)
    except KeyboardInterrupt:
        return EXIT_OK
