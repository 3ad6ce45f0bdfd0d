"""The suite's own rules: a missing component fails under CI=true; the corpus is in the repo."""

from __future__ import annotations

import json

import pytest

from tests.conftest import CORPUS, ROOT, missing, require

IN_CI = "(CI=true: every component must be present)"


@pytest.mark.parametrize("value", ["true", "True", "1"])
def test_a_missing_component_fails_under_ci(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception) as failed:
        require(False, "no RabbitMQ on 127.0.0.1:5672")
    assert failed.value.msg == f"no RabbitMQ on 127.0.0.1:5672 {IN_CI}"
    with pytest.raises(pytest.fail.Exception) as failed:
        missing("no chromium", module=True)
    assert failed.value.msg == f"no chromium {IN_CI}"


@pytest.mark.parametrize("value", [None, "", "false"])
def test_a_missing_component_skips_with_its_reason_outside_ci(
    value: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception) as skipped:
        require(False, "no RabbitMQ on 127.0.0.1:5672")
    assert skipped.value.msg == "no RabbitMQ on 127.0.0.1:5672"
    require(True, "never said")


def test_the_corpus_is_inside_the_repository_with_its_truth_table_and_licences() -> None:
    assert CORPUS.resolve().is_relative_to(ROOT.resolve())
    names = {path.name for path in (CORPUS / "pdf").glob("*.pdf")}
    truth = json.loads((CORPUS / "pdf" / "files.json").read_text())["data"]
    assert len(names) == 31 and names <= {entry["path"].replace("/", "_") for entry in truth}
    readme = (CORPUS / "README.md").read_text()
    for folder in ("pdf", "pdf-hard", "images", "images-bad"):
        assert any((CORPUS / folder).iterdir()) and f"`{folder}/`" in readme
    for licence in ("py-pdf-sample-files.LICENSE", "pypdf.LICENSE", "Pillow.LICENSE"):
        assert (CORPUS.parent / "LICENSES" / licence).is_file() and licence in readme
