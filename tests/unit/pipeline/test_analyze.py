"""Analysis: keywords and language."""

from __future__ import annotations

import pytest

from docproc.pipeline import (
    analyze,
)
from tests.unit.pipeline.samples import (
    PDF,
    run,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_keywords_are_frequent_words_without_stop_words() -> None:
    text = "The invoice and the invoice total. The total is due; the invoice is paid in 2024."
    result = analyze(text, keywords=3)
    assert result.keywords == ["invoice", "total", "due"]
    assert result.words == 16
    assert result.chars == len(text)


def test_keyword_ties_go_to_the_first_word_seen() -> None:
    assert analyze("zebra apple mango apple zebra mango", keywords=2).keywords == ["zebra", "apple"]


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("The dog is sleeping in the garden because it was tired after the long walk.", "en"),
        ("Der Hund schläft im Garten, weil er nach dem langen Spaziergang müde ist.", "de"),
        ("Le chien dort dans le jardin parce qu'il est fatigué après la promenade.", "fr"),
        ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.", None),
        ("Invoice 4711", None),
        ("", None),
    ],
)
def test_language_is_guessed_from_stop_words(text: str, language: str | None) -> None:
    assert analyze(text).language == language


def test_analysis_of_a_real_document() -> None:
    result = analyze(run(PDF / "009-pdflatex-geotopo_GeoTopo-komprimiert.pdf").text)
    assert result.language == "de"
    assert "topologie" in result.keywords or "abbildung" in result.keywords
    assert not set(result.keywords) & {"der", "die", "und", "the"}


def test_no_keywords_when_asked_for_none() -> None:
    assert analyze("plenty of meaningful words here", keywords=0).keywords == []
