"""Settings: defaults, environment overrides, and errors that name the key and the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from docproc.errors import ConfigError
from docproc.settings import load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conf" / "docproc.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_empty_file_gives_documented_defaults_relative_to_the_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""), environ={})
    assert settings.inbox == tmp_path / "inbox"
    assert settings.outbox == tmp_path / "outbox"
    assert settings.broker_url == "embedded"
    assert settings.broker == f"redis+socket://{tmp_path / '.docproc' / 'valkey.sock'}"
    assert settings.watcher.settle_seconds == 1.0
    assert settings.status_api.port == 8750


def test_the_shipped_config_is_valid_and_matches_the_defaults() -> None:
    root = Path(__file__).resolve().parents[2]
    settings = load_settings(root / "config" / "docproc.yaml", environ={})
    assert settings.inbox == root / "inbox"
    assert settings.pipeline.max_image_pixels == 89478485


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "workers:\n  concurrency: 2\n")
    settings = load_settings(path, environ={
        "DOCPROC_BROKER_URL": "redis://example:6379/1",
        "DOCPROC__WORKERS__CONCURRENCY": "5",
        "DOCPROC__WATCHER__MODE": "polling",
    })
    assert settings.broker_url == "redis://example:6379/1"
    assert settings.workers.concurrency == 5
    assert settings.watcher.mode == "polling"


@pytest.mark.parametrize(("text", "key"), [
    ("inbx: x\n", "inbx: unknown key"),
    ("workers:\n  concurrency: many\n", "workers.concurrency"),
    ("watcher:\n  poll_interval: -1\n", "watcher.poll_interval"),
    ("inbox: ../out/in\noutbox: ../out\n", "inbox and outbox must not contain each other"),
    ("broker_url: amqp://guest@h//\n", "result_backend"),
    ("broker_url: mysql://x\n", "broker_url"),
    ("schedule:\n  purge: '25:00'\n", "schedule.purge"),
    ("outbox_umask: '0777'\n", "outbox_umask: 0777 takes the owner's own access away"),
    ("outbox_umask: rw-r-----\n", "outbox_umask: must be an octal umask"),
])
def test_bad_values_name_the_key_and_the_file(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert str(path) in str(info.value)
    assert key in str(info.value)


def test_the_command_exits_2_with_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "watcher:\n  settle_seconds: soon\n")
    result = subprocess.run(
        [sys.executable, "-m", "docproc", "--config", str(path), "config", "check"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "watcher.settle_seconds" in lines[0] and str(path) in lines[0]


def _docproc(path: Path, *args: str, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items()
               if not key.startswith("DOCPROC")}
    return subprocess.run([sys.executable, "-m", "docproc", "--config", str(path), *args],
                          capture_output=True, text=True, timeout=60,
                          env={**environ, **(env or {})})


def test_an_api_other_machines_reach_needs_a_token_or_insecure_public(tmp_path: Path) -> None:
    public = write(tmp_path, "status_api:\n  host: 0.0.0.0\n")
    refused = _docproc(public, "config", "check")
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and str(public) in lines[0]
    assert "status_api.token" in lines[0] and "status_api.insecure_public" in lines[0]
    # `docproc api` and `docproc up` stop at once, before anything listens or starts.
    for command in ("api", "up"):
        started = _docproc(public, command)
        assert started.returncode == 2 and "status_api.token" in started.stderr, command
    with_token = _docproc(public, "config", "check", env={"DOCPROC__STATUS_API__TOKEN": "t0k3n"})
    assert with_token.returncode == 0, with_token.stderr
    trusted = write(tmp_path, "status_api:\n  host: 192.0.2.10\n  insecure_public: true\n")
    assert _docproc(trusted, "config", "check").returncode == 0
    for loopback in ("127.0.0.1", "localhost", "'::1'"):
        local = write(tmp_path, f"status_api:\n  host: {loopback}\n")
        assert _docproc(local, "config", "check").returncode == 0, loopback


@pytest.mark.parametrize(("text", "umask"), [
    ("", 0o027), ("outbox_umask: '0027'\n", 0o027), ("outbox_umask: 0o077\n", 0o077),
    ("outbox_umask: 0022\n", 0o022), ("outbox_umask: '002'\n", 0o002),
])
def test_outbox_umask_is_read_as_octal_and_shown_as_such(
    tmp_path: Path, text: str, umask: int,
) -> None:
    path = write(tmp_path, text)
    assert load_settings(path, environ={}).outbox_umask == umask
    assert load_settings(path, environ={"DOCPROC__OUTBOX_UMASK": "0077"}).outbox_umask == 0o077
    shown = _docproc(path, "config", "show")
    assert json.loads(shown.stdout)["outbox_umask"] == f"{umask:04o}"


def test_config_is_taken_after_the_command_too(tmp_path: Path) -> None:
    path = write(tmp_path, f"inbox: {tmp_path / 'in'}\noutbox: {tmp_path / 'out'}\n")
    environ = {key: value for key, value in os.environ.items() if not key.startswith("DOCPROC")}
    shown = subprocess.run([sys.executable, "-m", "docproc", "config", "show", "--config",
                            str(path)], capture_output=True, text=True, timeout=60, env=environ)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["inbox"] == str(tmp_path / "in")
    short = subprocess.run([sys.executable, "-m", "docproc", "config", "show", "-c", str(path)],
                           capture_output=True, text=True, timeout=60, env=environ)
    assert json.loads(short.stdout)["outbox"] == str(tmp_path / "out")
    missing = subprocess.run([sys.executable, "-m", "docproc", "status", "--config",
                              str(tmp_path / "nowhere.yaml")], capture_output=True, text=True,
                             timeout=60, env=environ)
    assert missing.returncode == 2 and "nowhere.yaml" in missing.stderr


@pytest.mark.parametrize(("text", "message"), [
    ("pipeline:\n  ocr_languages: [eng, xyz]\n", "pip install tessdata-fast-xyz"),
    ("pipeline:\n  ocr_dpi: 30\n", "Tesseract reads best at 300 dpi"),
    ("pipeline:\n  ocr_languages: []\n", "at least 1 item"),
])
def test_config_check_fails_on_a_missing_ocr_language_naming_its_package(
    tmp_path: Path, text: str, message: str
) -> None:
    result = _docproc(write(tmp_path, text), "config", "check")
    assert result.returncode == 2
    key = text.split("\n")[1].split(":")[0].strip()
    assert f"pipeline.{key}" in result.stderr and message in result.stderr


def test_a_missing_language_passes_when_ocr_is_off(tmp_path: Path) -> None:
    path = write(tmp_path, "pipeline:\n  ocr: 'off'\n  ocr_languages: [xyz]\n")
    assert load_settings(path, environ={}).pipeline.ocr_languages == ["xyz"]


def test_a_tessdata_folder_is_relative_to_the_config_file(tmp_path: Path) -> None:
    from docproc.pipeline.ocr import tessdata_dir

    models = tmp_path / "conf" / "models"
    models.mkdir(parents=True)
    (models / "eng.traineddata").symlink_to(tessdata_dir() / "eng.traineddata")
    path = write(tmp_path, "pipeline:\n  tessdata: models\n")
    assert load_settings(path, environ={}).pipeline.tessdata == models
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, "pipeline:\n  tessdata: models\n  ocr_languages: [deu]\n"),
                      environ={})
    assert "pipeline.ocr_languages" in str(info.value) and str(models) in str(info.value)
    assert "put deu.traineddata there" in str(info.value)
    # The default [eng] is checked too: a folder without it fails before any page is read.
    (tmp_path / "conf" / "empty").mkdir()
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, "pipeline:\n  tessdata: empty\n"), environ={})
    assert "pipeline.ocr_languages" in str(info.value) and "eng.traineddata" in str(info.value)
