"""Count words, pick keywords and guess the language of extracted text."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

RIGHT_QUOTE = "\u2019"
WORD = re.compile(rf"[^\W_]+(?:['{RIGHT_QUOTE}][^\W_]+)*")
MIN_KEYWORD_LENGTH = 3
# Prose has a third or more of its words in these lists; lorem ipsum and OCR debris reach
# 10-14 %, and a language must beat the runner-up clearly, else the guess is noise.
MIN_WORDS_FOR_LANGUAGE = 5
MIN_STOPWORD_SHARE = 0.15
MIN_LEAD_OVER_RUNNER_UP = 1.5

# One-letter words are left out: they are as common in OCR debris as in prose.
STOP_WORDS: dict[str, frozenset[str]] = {
    lang: frozenset(words.split())
    for lang, words in {
        "en": """about above after again against all also am an and any are aren't as at be
            because been before being below between both but by can can't could did
            didn't do does doesn't doing don't down during each few for from further
            had has have having he her here hers herself him himself his how if in
            into is isn't it its itself just may me might more most must my myself no
            nor not now of off on once only or other our ours ourselves out over own
            same shall she should so some such than that the their theirs them
            themselves then there these they they're this those through to too under
            until up upon us very was wasn't we were weren't what when where which
            while who whom why will with won't would you you're your yours yourself""",
        "de": """aber alle allem allen aller alles als also am an andere anderen auch auf
            aus bei beim bin bis bist da damit dann das dass dem den denn der des dich
            die dies diese diesem diesen dieser dieses dir doch dort du durch ein eine
            einem einen einer eines er es etwas euch euer für gegen gewesen habe haben
            hat hatte hier ich ihm ihn ihnen ihr ihre im in ins ist jede jedem jeden
            jeder jedes jetzt kann kein keine können man mein meine mich mir mit muss
            nach nicht nichts noch nun nur ob oder ohne sehr sein seine sich sie sind
            sei so soll sondern sowie über um und uns unser unter viel vom von vor war waren
            was weil welche wenn werden wie wieder will wir wird wo wurde wurden zu zum
            zur zwischen""",
        "fr": """afin ai au aussi autre aux avec avoir bien ce ceci cela celle celui ces
            cet cette chez comme dans de des donc du elle elles en entre est et été
            être eux fait il ils je la le les leur leurs lui ma mais me même mes moi
            mon ne nos notre nous on ont ou où par pas peut plus pour qu que qui sa
            sans se ses si son sont sur ta te tes toi ton tous tout très tu un une vos
            votre vous""",
        "es": """al algo algunos ante antes como con contra cual cuando de del desde donde
            durante el ella ellas ellos en entre era es esa ese eso esta estaba este
            esto estos está están fue ha hay la las le les lo los me mi muy más nada
            ni no nos nosotros os otra otro para pero poco por porque que quien se ser
            si sin sobre son su sus también tanto te tiene todo todos tu un una uno
            unos ya yo""",
        "it": """ad al alla alle allo anche che chi ci come con contro cui da dal dalla
            dalle degli dei del della delle dello di dove ed era essere fa gli ha
            hanno il in io la le lei li lo loro lui ma mi mia mio ne nei nel nella noi
            non per perché più quale quando quella quello questa questo se sei si sia
            sono su sua suo sul sulla tra tu tutto un una uno vi voi""",
        "nl": """aan al alles als andere ben bij daar dan dat de der deze die dit doch doen
            door dus een en er geen haar had heb hebben heeft hem het hier hij hoe hun
            iets ik in is ja je kan kon kunnen maar me meer men met mij mijn moet na
            naar niet niets nog nu of om omdat ons ook op over te tegen toch toen tot
            uit uw van veel voor want waren was wat we wel werd wie wil worden wordt
            zal ze zelf zich zij zijn zo zonder zou""",
        "pt": """ao aos as até com como da das de dela dele deles depois do dos ela elas
            ele eles em entre era essa esse esta este estão está eu foi foram há isso
            isto já lhe mais mas me mesmo meu minha muito na nas nem no nos num numa
            não nós os ou para pela pelo por porque qual quando que quem se sem ser seu seus
            sua suas só também te tem tu um uma você vocês""",
    }.items()
}
ALL_STOP_WORDS = frozenset().union(*STOP_WORDS.values())


@dataclass(frozen=True)
class Analysis:
    """Keywords, language and counts of a text."""

    keywords: list[str]
    language: str | None
    words: int
    chars: int


def analyze(text: str, keywords: int = 10) -> Analysis:
    """Count the words of text, pick its most frequent keywords and guess its language."""
    words = WORD.findall(text)
    counts = Counter(_token(word) for word in words)
    language = _language(counts, len(words))
    # English stop words go in every language: technical text anywhere is full of them.
    stop_words = (
        ALL_STOP_WORDS if language is None else STOP_WORDS[language] | STOP_WORDS["en"]
    )
    candidates = {
        token: count for token, count in counts.items()
        if len(token) >= MIN_KEYWORD_LENGTH
        and token not in stop_words
        and any(char.isalpha() for char in token)
    }
    # Counters keep first-seen order and sorted() is stable: ties go to the earlier word.
    ranked = sorted(candidates, key=candidates.__getitem__, reverse=True)
    return Analysis(
        keywords=ranked[:max(keywords, 0)], language=language, words=len(words), chars=len(text)
    )


def _token(word: str) -> str:
    token = word.lower().replace(RIGHT_QUOTE, "'")
    head, apostrophe, tail = token.partition("'")
    # French and Italian elision (l'homme, qu'il, d'accord): the word is what follows.
    if apostrophe and len(head) <= 2:
        return tail
    return token


def _language(counts: Counter[str], words: int) -> str | None:
    if words < MIN_WORDS_FOR_LANGUAGE:
        return None
    hits = {
        lang: sum(counts[word] for word in stop_words if word in counts)
        for lang, stop_words in STOP_WORDS.items()
    }
    ranked = sorted(hits.items(), key=lambda item: item[1], reverse=True)
    (best, best_hits), (_, runner_up_hits) = ranked[0], ranked[1]
    if best_hits < 2 or best_hits < MIN_STOPWORD_SHARE * words:
        return None
    if best_hits < MIN_LEAD_OVER_RUNNER_UP * runner_up_hits:
        return None
    return best
