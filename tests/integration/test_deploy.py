"""Deployment files: deploy/supervisord.conf under a real supervisord, the way a system one runs
it; the compose file, Dockerfile and systemd unit checked for what can be checked without a
Docker engine or systemd running them.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import yaml

from tests.conftest import ROOT, Daemon, free_port, missing, reports, wait_until

DEPLOY = ROOT / "deploy"
PROGRAMS = {"broker", "worker", "ocr", "watcher", "beat", "api"}


def _ini(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


def _health(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def test_supervisord_conf_names_the_programs() -> None:
    conf = _ini(DEPLOY / "supervisord.conf")
    programs = {name.removeprefix("program:") for name in conf.sections()
                if name.startswith("program:")}
    assert programs == PROGRAMS
    for name in programs:
        section = conf[f"program:{name}"]
        assert section["command"] == f"%(ENV_DOCPROC_PYTHON)s -m docproc {_cli(name)}"
        assert section["stopasgroup"] == section["killasgroup"] == "true"


def _cli(program: str) -> str:
    return {"watcher": "watch", "ocr": "worker --queues docproc.ocr",
            "worker": "worker --queues docproc,docproc.finish,docproc.control"}.get(program,
                                                                                   program)


def test_a_system_supervisord_runs_the_deploy_conf_as_it_stands(
    make_config: Callable[..., Path], tmp_path: Path,
) -> None:
    config = make_config(broker_url="embedded")
    settings = yaml.safe_load(config.read_text())
    state, port = settings["state_dir"], settings["status_api"]["port"]
    # What a system supervisord gets: the three variables, nothing from `docproc up`.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
           "DOCPROC_PYTHON": sys.executable, "DOCPROC_CONFIG": str(config),
           "DOCPROC_STATE_DIR": state}
    conf = str(DEPLOY / "supervisord.conf")
    log = (tmp_path / "supervisord.out").open("wb")
    supervisord = subprocess.Popen([sys.executable, "-m", "supervisor.supervisord", "-c", conf],
                                   env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)

    def status() -> dict[str, str]:
        result = subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", conf,
                                 "status"], env=env, capture_output=True, text=True, timeout=20)
        return dict(line.split()[:2] for line in result.stdout.splitlines() if line.strip())

    try:
        wait_until(lambda: status() == dict.fromkeys(PROGRAMS, "RUNNING"), 60, interval=0.3,
                   message="every program RUNNING")
        wait_until(lambda: _health(port) == 200, 60, interval=0.2, message="/healthz 200")
        (Path(settings["inbox"]) / "hello.txt").write_text("Hello from a system supervisord.\n")
        outbox = Path(settings["outbox"])
        wait_until(lambda: reports(outbox), 30, message="the dropped file's report")
        assert reports(outbox)[0]["status"] == "done"
        subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", conf,
                        "shutdown"], env=env, capture_output=True, timeout=20, check=True)
        assert supervisord.wait(25) == 0
    finally:
        if supervisord.poll() is None:
            os.killpg(supervisord.pid, signal.SIGKILL)
            supervisord.wait(5)
    assert not list(Path(state).glob("*.sock"))


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _dockerfile_env() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(re.findall(r"(\w+)=(\S+)", line))
    return env


def test_compose_runs_every_program_with_health_checks_and_volumes() -> None:
    compose = _compose()
    services = compose["services"]
    assert set(services) == PROGRAMS
    env = _dockerfile_env()
    for name, service in services.items():
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD" and len(test) > 1, name
        if name == "broker":
            assert "volumes" in service
            continue
        assert service["command"] == _cli(name).split()
        assert service["image"] == "docproc:latest" and service["build"]["context"] == ".."
        assert service["environment"]["DOCPROC_BROKER_URL"] == "redis://broker:6379/0"
        assert service["depends_on"]["broker"]["condition"] == "service_healthy"
        mounts = dict(volume.split(":")[::-1] for volume in service["volumes"])
        # The inbox and the spool share one volume: claims are renames.
        intake = mounts["/srv/docproc/intake"]
        assert env["DOCPROC_INBOX"].startswith("/srv/docproc/intake/")
        assert env["DOCPROC_STATE_DIR"].startswith("/srv/docproc/intake/")
        assert mounts[env["DOCPROC_OUTBOX"]] == "outbox" and intake == "intake"
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker  # --scale worker=N
    assert services["api"]["ports"] == ["8750:8750"]
    assert set(compose["volumes"]) == {"intake", "outbox", "broker"}
    assert services["beat"]["healthcheck"] == services["watcher"]["healthcheck"]


def _check(service: str, config: Path, **env: str) -> int:
    """Run a compose service's health check here, as Docker would; return its exit status.

    The API's check names the container's port (8750): here it asks the test's own port.
    """
    test = _compose()["services"][service]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"] and len(test) == 4, test
    code = test[3].replace(":8750/", f":{env.pop('PORT', '8750')}/")
    environ = {**os.environ, "DOCPROC_CONFIG": str(config)}
    environ.pop("DOCPROC_BROKER_URL", None)
    environ.update(env)
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True,
                          timeout=60).returncode


def test_compose_health_checks_pass_when_healthy_and_fail_when_not(
    valkey_socket: Path, make_config: Callable[..., Path], daemon: Callable[[Path], Daemon],
) -> None:
    from docproc.ledger.redis_ledger import RedisLedger

    config = make_config(broker_url=f"redis+socket://{valkey_socket}")
    port = str(yaml.safe_load(config.read_text())["status_api"]["port"])
    gone = f"redis://127.0.0.1:{free_port()}/0"
    # watcher and beat: healthy while the broker answers.
    assert _check("watcher", config) == 0
    assert _check("watcher", config, DOCPROC_BROKER_URL=gone) == 1

    # worker: healthy while worker1@<this host> answers a ping.
    assert _check("worker", config) == 1
    run = daemon(config)
    run.start("worker")
    wait_until(lambda: _check("worker", config) == 0, 60, interval=0.5,
               message="the worker's health check to pass")
    run.stop()
    assert _check("worker", config) == 1

    # api: healthy while /healthz answers 200 (a worker's heartbeat is current).
    assert _check("api", config, PORT=port) == 1
    api = daemon(config)
    api.start("api")
    ledger = RedisLedger(redis.Redis(unix_socket_path=str(valkey_socket), decode_responses=True))

    def healthy() -> bool:
        ledger.heartbeat("worker1@healthcheck/1", [], 10.0)
        return _check("api", config, PORT=port) == 0

    wait_until(healthy, 60, interval=0.5, message="the API's health check to pass")
    ledger.redis.delete("docproc:node:worker1@healthcheck/1")
    wait_until(lambda: _check("api", config, PORT=port) == 1, 30, interval=0.5,
               message="the API's health check to fail once no worker beats (503)")
    api.stop()
    assert _check("api", config, PORT=port) == 1  # nothing answers


def test_dockerfile_builds_from_files_the_context_keeps() -> None:
    text = (ROOT / "Dockerfile").read_text()
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for source in re.findall(r"^COPY (.+?) \S+$", text, flags=re.MULTILINE):
        for name in source.split():
            assert (ROOT / name).exists() and name not in ignored, name
    assert 'ENTRYPOINT ["docproc"]' in text and 'CMD ["up"]' in text
    assert _dockerfile_env()["DOCPROC__STATUS_API__HOST"] == "0.0.0.0"
    assert re.search(r"^USER docproc$", text, flags=re.MULTILINE)


def test_the_image_serves_its_api_only_with_a_token(tmp_path: Path) -> None:
    # The image's environment, its folders moved into tmp_path.
    env = {name: str(tmp_path / value.lstrip("/")) if value.startswith("/srv/") else value
           for name, value in _dockerfile_env().items()}
    env["DOCPROC_CONFIG"] = str(ROOT / "config" / "docproc.yaml")
    environ = {**{k: v for k, v in os.environ.items() if not k.startswith("DOCPROC")}, **env}

    def check(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "docproc", "config", "check"],
                              capture_output=True, text=True, timeout=60,
                              env={**environ, **extra})

    refused = check()
    assert refused.returncode == 2 and "status_api.token" in refused.stderr
    assert "DOCPROC__STATUS_API__TOKEN" in refused.stderr
    assert check(DOCPROC__STATUS_API__TOKEN="s3cret").returncode == 0
    # The Dockerfile and the compose file show how to give it one.
    assert 'DOCPROC__STATUS_API__TOKEN="$(openssl rand' in (ROOT / "Dockerfile").read_text()
    api = _compose()["services"]["api"]["environment"]
    assert api["DOCPROC__STATUS_API__TOKEN"].startswith("${DOCPROC_API_TOKEN:?")
    assert 'DOCPROC__STATUS_API__TOKEN="$(openssl rand' in (ROOT / "README.md").read_text()


def test_systemd_unit_runs_docproc_up(tmp_path: Path) -> None:
    path = DEPLOY / "docproc.service"
    unit = _ini(path)
    assert unit["Unit"]["Description"] and "network-online.target" in unit["Unit"]["After"]
    service = unit["Service"]
    assert service["ExecStart"].endswith("/bin/docproc up")
    assert service["Environment"].startswith("DOCPROC_CONFIG=")
    assert service["User"] == "docproc" and service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM" and int(service["TimeoutStopSec"]) >= 20
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        missing("no systemd-analyze to verify the unit with (Debian: systemd)")
    # Verified as installed in this checkout (systemd checks that ExecStart exists).
    local = tmp_path / "docproc.service"
    local.write_text(path.read_text().replace("/opt/docproc/.venv", str(Path(sys.prefix)))
                     .replace("/opt/docproc", str(ROOT))
                     .replace("User=docproc", "User=root").replace("Group=docproc", "Group=root"))
    result = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "docproc.service" not in result.stderr, result.stderr
