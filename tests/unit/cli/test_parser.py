"""The command line's parser: -c/--config before or after any command."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pytest

from docproc.cli import COMMANDS, main
from docproc.cli.parser import build_parser

# What each command needs besides the configuration.
REQUIRED = {"process": ["a.pdf"], "ingest": ["a.pdf"], "config": ["check"]}


def _commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


def test_every_command_has_a_handler() -> None:
    assert _commands() == sorted(COMMANDS)


@pytest.mark.parametrize("command", _commands())
@pytest.mark.parametrize("flag", ["-c", "--config"])
def test_the_config_is_taken_before_or_after_the_command(command: str, flag: str) -> None:
    rest = REQUIRED.get(command, [])
    parser = build_parser()
    assert parser.parse_args([flag, "before.yaml", command, *rest]).config == "before.yaml"
    assert parser.parse_args([command, *rest, flag, "after.yaml"]).config == "after.yaml"
    assert parser.parse_args([command, *rest]).config is None


def test_a_config_named_after_the_command_is_the_one_loaded(
    make_config: Callable[..., Path], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DOCPROC_CONFIG", raising=False)
    config = make_config()
    assert main(["config", "check", "--config", str(config)]) == 0
    assert capsys.readouterr().out == f"{config}: ok\n"
    assert main(["config", "check", "-c", str(config.with_name("nowhere.yaml"))]) == 2
