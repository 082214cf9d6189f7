"""The answer corpus (tests/data/answer_corpus.yaml): every answer parses exactly as a careful reader
would read it, including where and how, and ambiguous answers stay unread.

``python tests/test_answer_corpus.py`` prints the corpus statistics (shares per family and task)."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml

from pipeline.grammar import TASKS, parse_response

CORPUS_PATH = Path(__file__).parent / "data" / "answer_corpus.yaml"
CORPUS = yaml.safe_load(CORPUS_PATH.read_text(encoding="utf-8"))
FAMILIES = ("gpt", "gemini", "claude", "qwen-vl", "internvl", "llava-video", "rambling")


def _parse(entry: dict):
    return parse_response(entry["text"], CORPUS["q2_options"], CORPUS["q3_options"], duration=CORPUS["duration"])


def _expected_how(exp: dict) -> dict[str, str]:
    how = exp.get("how", {})
    if isinstance(how, str):  # one word: every task whose answer is located there
        return {q: how for q in TASKS}
    return dict(how)


def test_corpus_is_large_and_covers_every_family():
    fams = Counter(e["family"] for e in CORPUS["answers"])
    assert sum(fams.values()) >= 80
    assert set(fams) == set(FAMILIES) and min(fams.values()) >= 10, fams


@pytest.mark.parametrize("entry", CORPUS["answers"], ids=lambda e: f"{e['family']}: {e['note'][:50]}")
def test_answer_parses_as_expected(entry):
    exp = entry["expect"]
    p = _parse(entry)
    got = {"q1": p.q1, "q2": p.q2, "q3": p.q3, "q4": p.q4}
    want = {q: exp[q] for q in TASKS}
    assert got == want, entry["text"]
    assert sorted(p.by_text) == sorted(exp.get("by_text", []))
    assert sorted(p.ambiguous) == sorted(exp.get("ambiguous", []))
    assert p.how == _expected_how(exp)
    # an unread task is always explained: unparseable or ambiguous
    for q in TASKS:
        if got[q] is None:
            assert f"{q} unparseable" in p.errors or f"{q} ambiguous" in p.errors


def corpus_stats() -> dict:
    """Per family: answers, tasks read / located / ambiguous, and how they were read."""
    out: dict[str, Counter] = defaultdict(Counter)
    for e in CORPUS["answers"]:
        p = _parse(e)
        for key in (e["family"], "all"):
            c = out[key]
            c["answers"] += 1
            for q in TASKS:
                c["tasks"] += 1
                c["read"] += getattr(p, q) is not None
                c["ambiguous"] += q in p.ambiguous
                if getattr(p, q) is not None:
                    c[f"via_{p.how[q]}"] += 1
            c["by_text"] += len(p.by_text)
            c["fully_read"] += all(getattr(p, q) is not None for q in TASKS)
    return out


if __name__ == "__main__":
    stats = corpus_stats()
    cols = ("answers", "fully_read", "tasks", "read", "ambiguous", "by_text", "via_tag", "via_json", "via_line",
            "via_positional")
    print("| family | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for fam in (*FAMILIES, "all"):
        print(f"| {fam} | " + " | ".join(str(stats[fam][c]) for c in cols) + " |")
