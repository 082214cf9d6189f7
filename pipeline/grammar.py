"""The answer grammar: how Q1–Q4 are asked, written and parsed (docs/architecture.md).

This module is the one place that knows the wording and the answer syntax. The QA builder, the
evaluator, the lmms-eval task and the trainer's rewards all import it. It depends on the standard
library only so that the trainer's environment can use it without Blender.

Reading an answer has two steps. **Locate** the text that answers each task — in this order: a
``<qN>`` tag (``tag``), a JSON object with ``q1``…``q4`` keys (``json``), a ``Q1:`` / ``q1=`` /
``**Q1:**`` / ``1.`` key (``line``), or three bare letters then the interval in an answer block
(``positional``). **Read** that text: a letter (or, failing that, the option's text) for Q1–Q3, a
list of ``[start, end]`` seconds for Q4. Nothing is guessed: two different letters, a letter that
contradicts the option text written with it, or two option names make the task *ambiguous*,
which scores like unparseable and is reported as such.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

Q1_TEXT = "Is there any defect in the object?"
Q2_TEXT = "What is the defect type of this clip?"
Q3_TEXT = "What is the object category of this clip?"
Q4_TEXT = "When is the anomaly visible? Return a list of [start_sec, end_sec]."
Q1_OPTIONS = {"A": "Yes", "B": "No"}
LETTERS = "ABCDEFG"
TAGS = ("global_perception", "segment_perception", "think", "answer")
TASKS = ("q1", "q2", "q3", "q4")
SOURCES = ("tag", "json", "line", "positional")


def format_seconds(x: float) -> str:
    return f"{x:.2f}"


def format_intervals(intervals: Sequence[Sequence[float]]) -> str:
    """``[[0.40, 1.17], [1.50, 2.00]]``; no visible defect is ``[]``."""
    return "[" + ", ".join(f"[{format_seconds(a)}, {format_seconds(b)}]" for a, b in intervals) + "]"


def format_answer(q1: str, q2: str, q3: str, q4: str) -> str:
    """``<answer><q1>A</q1><q2>C</q2><q3>B</q3><q4>[[0.40, 1.17]]</q4></answer>``."""
    return f"<answer><q1>{q1}</q1><q2>{q2}</q2><q3>{q3}</q3><q4>{q4}</q4></answer>"


def format_structured(global_perception: str, segment_perception: str, think: str, answer: str) -> str:
    """The structured response: perception sections, reasoning, then the answer block."""
    return (f"<global_perception>{global_perception}</global_perception>"
            f"<segment_perception>{segment_perception}</segment_perception>"
            f"<think>{think}</think>{answer}")


# ------------------------------------------------------------------------------------------ Q4

_NUM = r"[-+]?\d+(?:\.\d+)?"
_UNUM = r"\d+(?:\.\d+)?"
_UNIT = r"(?:\s*(?:s|sec|secs|second|seconds)\b\.?)?"
# "[0.4, 1.2]", "(0.4s, 1.2 s)", "[0.4 sec, 1.2 sec]"
_PAIR_RE = re.compile(rf"[\[(]\s*({_NUM}){_UNIT}\s*,\s*({_NUM}){_UNIT}\s*[\])]", re.I)
# "0.4-1.2", "0.4 s – 1.2 s", "from 0.8 to 2.0 seconds", "between 0.5 and 1.0"
_RANGE_RE = re.compile(
    rf"(?<![\d.])({_UNUM}){_UNIT}\s*(?:-|–|—|~|to|until|till|and|through)\s*({_UNUM}){_UNIT}(?![\d.])", re.I)
_TO_END_RE = re.compile(rf"(?<![\d.])({_UNUM}){_UNIT}\s*(?:-|–|—|to|until|till|through)\s*the\s+(?:very\s+)?end\b", re.I)
_FROM_START_RE = re.compile(
    rf"\b(?:from\s+)?the\s+(?:very\s+)?(?:start|beginning)(?:\s+of\s+the\s+(?:clip|video))?\s*"
    rf"(?:-|–|—|to|until|till|through)\s*(?:about\s+|around\s+)?({_UNUM}){_UNIT}(?![\d.])", re.I)
_EMPTY_RE = re.compile(r"^\W*(?:\[\s*\[?\s*\]?\s*\]|none|no|null|never|n/?a|nothing|not visible|no interval|"
                       r"no intervals|no defect|no anomaly|empty)\W*$", flags=re.I)
_EMPTY_WORDS_RE = re.compile(r"\[\s*\]|\b(?:none|never|not visible|no visible|nothing visible|not be seen|"
                             r"null|no (?:anomaly|defect) (?:is )?visible|at no point)\b", flags=re.I)
_WHOLE_RE = re.compile(r"\b(?:(?:entire|whole|full|complete)\s+(?:clip|video|duration)|throughout|all the time|"
                       r"from (?:the )?(?:start|beginning) to (?:the )?(?:end|finish))\b", re.I)


def _checked(pairs: list[tuple[Any, Any]] | list[list[float]]) -> Optional[list[list[float]]]:
    out = [[float(a), float(b)] for a, b in pairs]
    return out if all(0 <= a <= b for a, b in out) else None


def _intervals_from_value(val: Any) -> Optional[list[list[float]]]:
    """A decoded JSON value as intervals: ``[[a, b], ...]``, a flat ``[a, b]``, ``[]``, ``[[]]``,
    ``{"start": a, "end": b}`` or a list of those; ``None`` for anything else."""
    def num(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    def pair(p: Any) -> Optional[list[Any]]:
        if isinstance(p, (list, tuple)) and len(p) == 2 and all(num(x) for x in p):
            return list(p)
        if isinstance(p, dict):
            low = {str(k).lower(): v for k, v in p.items()}
            a, b = low.get("start", low.get("start_sec")), low.get("end", low.get("end_sec"))
            if num(a) and num(b):
                return [a, b]
        return None

    if isinstance(val, str):
        return parse_intervals(val)
    if isinstance(val, dict):
        one = pair(val)
        return _checked([one]) if one is not None else None
    if not isinstance(val, (list, tuple)):
        return None
    if len(val) == 0 or list(val) == [[]]:
        return []
    if len(val) == 2 and all(num(x) for x in val):
        return _checked([list(val)])
    pairs = [pair(p) for p in val]
    return _checked(pairs) if all(p is not None for p in pairs) else None  # type: ignore[arg-type]


def parse_intervals(text: Optional[str], duration: Optional[float] = None) -> Optional[list[list[float]]]:
    """Parse a Q4 answer into ``[[a, b], ...]`` (seconds). ``None`` if it cannot be read.

    Accepted, in this order: an empty answer marker (``[]``, ``[[]]``, ``none``, ``no``, ``never``…)
    → ``[]``; JSON ``[[a, b], ...]`` or a bare ``[a, b]``; every ``[a, b]`` / ``(a, b)`` pair in
    free text; else every range written ``a-b``, ``0.4s-1.2s``, ``a to b``, ``from a s to b s``,
    ``between a and b``, ``from the start to b``, ``a to the end`` (needs ``duration``); finally
    a sentence without numbers that says the defect is never visible → ``[]`` or, with
    ``duration``, one that says it is visible throughout → ``[[0, duration]]``. Inverted
    (``a > b``) or negative pairs make the answer unparseable, as does anything else.
    """
    if text is None:
        return None
    s = text.strip().strip("`").strip()
    if s.lower().startswith("json"):
        s = s[4:].strip()
    if not s:
        return None
    if _EMPTY_RE.match(s):
        return []
    if s[0] in "[{":
        try:
            return _intervals_from_value(json.loads(s))
        except (json.JSONDecodeError, TypeError, ValueError):
            pass
    found = _PAIR_RE.findall(s)
    if found:
        return _checked(found)
    spans: list[tuple[int, int, list[Any]]] = [(m.start(), m.end(), [m.group(1), m.group(2)])
                                               for m in _RANGE_RE.finditer(s)]
    extra = [(m.start(), m.end(), [0, m.group(1)]) for m in _FROM_START_RE.finditer(s)]
    if duration is not None:
        extra += [(m.start(), m.end(), [m.group(1), duration]) for m in _TO_END_RE.finditer(s)]
    spans += [x for x in extra if not any(a <= x[0] < b or x[0] <= a < x[1] for a, b, _ in spans)]
    if spans:
        return _checked([p for _, _, p in sorted(spans, key=lambda x: x[0])])
    if not re.search(r"\d", s):
        if _EMPTY_WORDS_RE.search(s):
            return []
        if duration is not None and _WHOLE_RE.search(s):
            return [[0.0, float(duration)]]
    return None


# ------------------------------------------------------------------------------------------ tags

def last_tag(text: str, tag: str) -> Optional[str]:
    """Content of the last ``<tag>…</tag>`` (models sometimes repeat a block).

    When the closing tag is missing, the text after the last opening tag up to the next tag (or the
    end) is used; ``None`` when the tag does not occur at all."""
    found = re.findall(rf"<{tag}>(.*?)</{tag}>", text, flags=re.S | re.I)
    closed = found[-1].strip() if found else None
    opens = [m.end() for m in re.finditer(rf"<{tag}>", text, flags=re.I)]
    if not opens:
        return closed
    last_open = opens[-1]
    if closed is not None and re.search(rf"</{tag}>", text[last_open:], flags=re.I):
        return closed
    rest = text[last_open:]
    if tag == "answer":  # an unclosed answer block runs to the end
        return rest.strip()
    return re.split(r"<[/a-zA-Z_0-9]+>", rest, maxsplit=1)[0].strip()


# ------------------------------------------------------------------------------------------ Q1–Q3

@dataclass
class ParsedAnswer:
    """One response parsed; a field is ``None`` when that task's answer is unparseable.

    ``how`` maps each task whose answer was *located* to where (``tag``, ``json``, ``line``,
    ``positional``); ``by_text`` names the tasks (``"q1"``…``"q3"``) whose letter was recovered from
    option text rather than written as a letter; ``ambiguous`` the tasks that were located but say
    two things (two letters, a letter contradicting its option text, two option names)."""
    q1: Optional[str] = None
    q2: Optional[str] = None
    q3: Optional[str] = None
    q4: Optional[list[list[float]]] = None
    errors: list[str] = field(default_factory=list)
    by_text: list[str] = field(default_factory=list)
    how: dict[str, str] = field(default_factory=dict)
    ambiguous: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"q1": self.q1, "q2": self.q2, "q3": self.q3, "q4": self.q4, "errors": list(self.errors),
                "by_text": list(self.by_text), "how": dict(self.how), "ambiguous": list(self.ambiguous)}


AMBIGUOUS = "ambiguous"
_MD_RE = re.compile(r"\*\*|__|[*`]|^#+\s*|^>\s*", re.M)
_ECHO_RE = re.compile("|".join(r"\s+".join(re.escape(w) for w in q.split()) for q in (Q1_TEXT, Q2_TEXT, Q3_TEXT, Q4_TEXT)
                               ) + r"|\breturn a list of \[start_sec,\s*end_sec\]\.?|\boptions?\s*:", re.I)
_ANSWER_LEAD_RE = re.compile(r"^(?:the\s+)?(?:final\s+|correct\s+)?answer\s*(?:is|:|=|-|–)?\s*:?\s*", re.I)
_CUE_RES = (
    re.compile(r"(?i:answer|option|choice)\s*(?i:is|:|=|-)?\s*:?\s*[(\[]?([A-G])(?![A-Za-z0-9'’]|-\w)"),
    re.compile(r"[(\[]([A-G])[)\]]"),
    re.compile(r"(?<![A-Za-z0-9'’])([A-G])\s*[:)]\s+(?=\w)"),
    re.compile(r"(?<![A-Za-z0-9'’])([A-G])\s+is\s+(?:the\s+)?(?i:correct|right|best|answer)"),
    re.compile(r"(?i:\bis|\bbe|choose|select|pick|go with)\s+[(\[]?([A-G])[)\]]?(?=\s*(?:$|[.,;!]|\())"),
)
_BARE_RE = re.compile(r"(?<![A-Za-z0-9'’\-_.])([A-G])(?![A-Za-z0-9'’]|-\w|\.\w)")
_ARTICLE_RE = re.compile(r"^\s+(?!(?:or|and|nor)\b)[a-z]")  # "A crack", not "A or B"
_LEAD_RE = re.compile(r"^[(\[]?([A-Ga-g])[)\]]?(?=$|[\s:.,;)\]\-–—(/])")
_GOOD_WORDS = ("none", "no defect", "no defects", "defect-free", "defect free", "no anomaly", "normal")


def _options_echo_re(options: dict[str, str]) -> re.Pattern[str]:
    """A run of at least two ``L: text`` pairs that repeats the option list (a prompt echo)."""
    pair = "|".join(rf"{re.escape(k)}\s*[:.)]\s*{re.escape(v)}" for k, v in options.items())
    return re.compile(rf"(?:(?:{pair})\b[\s,;|]*){{2,}}", re.I)


def _clean(text: str, options: Optional[dict[str, str]] = None) -> str:
    t = _MD_RE.sub("", text)
    t = _ECHO_RE.sub(" ", t)
    if options:
        t = _options_echo_re(options).sub(" ", t)
    t = t.strip(" \t\r\n'\"“”;,|")
    return _ANSWER_LEAD_RE.sub("", t).strip(" \t\r\n'\"“”;,|")


def _names(low: str, options: dict[str, str], negation: bool) -> set[str]:
    """Letters whose option text is named in ``low`` (plural allowed); negated mentions
    (``not a crack``) are dropped first when ``negation``."""
    if negation:
        alts = "|".join(re.escape(v.lower()) for v in options.values())
        low = re.sub(rf"\b(?:not|no|never|isn't|is not|rather than|instead of|without|nor|unlike)\s+"
                     rf"(?:an?\s+|the\s+|any\s+)?(?:obvious\s+|visible\s+|real\s+)?(?:{alts})(?:e?s)?\b", " ", low)
    return {k for k, v in options.items() if re.search(rf"\b{re.escape(v.lower())}(?:e?s)?\b", low)}


def _by_text(t: str, options: dict[str, str]) -> tuple[Optional[str], Optional[str]]:
    """The option named by text: ``(letter, "text")``, ``(None, "ambiguous")`` or ``(None, None)``."""
    low = t.lower().strip(" .!")
    for k, v in options.items():
        if low == v.lower():
            return k, "text"
    if set(v.lower() for v in options.values()) == {"yes", "no"}:  # Q1: only a leading yes/no counts
        m = re.match(r"^(yes|no)\b", low)
        if not m:
            return None, None
        other = "no" if m.group(1) == "yes" else "yes"
        if re.search(rf"\b{other}\b", low):
            return None, AMBIGUOUS  # "Yes and no"
        return next(k for k, v in options.items() if v.lower() == m.group(1)), "text"
    good = next((k for k, v in options.items() if v.lower() == "good"), None)
    if good is not None and low in _GOOD_WORDS:
        return good, "text"
    named = _names(low, options, negation=True)
    if len(named) == 1:
        return named.pop(), "text"
    if len(named) > 1:
        return None, AMBIGUOUS
    if len(low) <= 20:
        close = difflib.get_close_matches(low, [o.lower() for o in options.values()], n=1, cutoff=0.8)
        if close:
            return next(k for k, v in options.items() if v.lower() == close[0]), "text"
    return None, None


def _letters(t: str, options: dict[str, str]) -> tuple[set[str], bool]:
    """Letters the text claims (leading letter, cued letters, bare capitals) and whether a
    leading letter contradicts the option text right after it."""
    claims: set[str] = set()
    contradiction = False
    m = _LEAD_RE.match(t)
    if m:
        letter, rest = m.group(1), t[m.end():]
        article = letter == "A" and _ARTICLE_RE.match(rest)
        alone = len(t) <= 3
        if letter.upper() in options and not article and (letter.isupper() or alone):
            if letter.isupper() and re.match(r"^\s+[A-Za-z]", rest) and not re.match(r"^\s+(?:or|and)\b", rest):
                # "B Bulge": only when the following word is an option's text
                word = rest.strip().split()[0].strip(".,;:()").lower()
                ok = any(word == v.lower().split()[0] for v in options.values())
            else:
                ok = True
            if ok:
                claims.add(letter.upper())
                after = rest.lstrip(" :.)-–—([").lower()
                for k, v in options.items():
                    if k != letter.upper() and re.match(rf"{re.escape(v.lower())}(?:e?s)?\b", after):
                        contradiction = True
    for rx in _CUE_RES:
        claims |= {x for x in rx.findall(t) if x in options}
    for b in _BARE_RE.finditer(t):  # every capital letter counts: "A/B", "B, maybe C" are two answers
        if b.group(1) == "A" and _ARTICLE_RE.match(t[b.end():]):
            continue  # the article "A crack"
        if b.group(1) in options:
            claims.add(b.group(1))
    return claims, contradiction


def parse_choice(text: Optional[str], options: dict[str, str]) -> tuple[Optional[str], Optional[str]]:
    """A letter from ``options`` and how it was found: ``("C", "letter")``, ``("C", "text")``,
    ``(None, "ambiguous")`` or ``(None, None)``.

    Letters: ``C``, ``(C)``, ``C: crack``, ``**C**``, ``Answer: C``, ``option C``, ``B (bulge)``.
    Without a letter, the option text decides: an exact match, a leading ``Yes``/``No`` for Q1, the
    one option named (negated mentions such as ``not a crack`` ignored), else the closest option by
    ``difflib`` with a 0.8 cutoff for a short answer (MMAD uses cutoff 0, which always answers
    something; we refuse weak matches). Two letters, a letter whose written option text is another
    option's, or two option names are ambiguous."""
    if text is None:
        return None, None
    t = _clean(text, options)
    if not t:
        return None, None
    claims, contradiction = _letters(t, options)
    if len(claims) > 1 or contradiction:
        return None, AMBIGUOUS
    named, how = _by_text(t, options)
    if claims:
        letter = claims.pop()
        if named is not None and named != letter:
            return None, AMBIGUOUS  # "C — a bulge" where C is concavity: the answer contradicts itself
        return letter, "letter"
    return named, how


def parse_letter(text: Optional[str], options: dict[str, str]) -> Optional[str]:
    """The letter of :func:`parse_choice` (letter or option text), or ``None``."""
    return parse_choice(text, options)[0]


# ------------------------------------------------------------------------------------------ locating

_KEY_RE = re.compile(
    r"(?<![A-Za-z0-9_<>/])(?:q|question|task)\s*#?\s*([1-4])(?![0-9])"   # Q1, question 1, task #1
    r"(?:\s*\([^()\n]{0,80}\))?(?:\s+answer)?"                             # "Q1 (defect?)", "Q1 answer"
    r"\s*(?:\*\*|__)?\s*(?:[:：=.)\]|]|[-–—]|(?<=\*\*)(?=\s)|(?<=__)(?=\s))",  # ":", "=", ".", "|", "**" …
    re.I)
_NUM_RE = re.compile(r"^[ \t]*(?:[-*•+][ \t]+)?(?:\*\*|__)?[(\[]?([1-4])(?:[.):\]]|[ \t]+[-–—])(?:\*\*|__)?(?=[ \t]|$)",
                     re.M)
_ANSWER_HEAD_RE = re.compile(r"(?:^|(?<=[\s.>*#:]))(?:final\s+|my\s+)?answers?\s*(?:\*\*|__)?\s*[:：]|"
                             r"^#+\s*(?:final\s+)?answers?\s*$", re.I | re.M)
_BARE_REST_RE = re.compile(r"^[\[\]()\d.,;\s\-–s]*$")
_BLOCKS_RE = re.compile(r"<(think|global_perception|segment_perception)>.*?</\1>", re.S | re.I)
_POSITIONAL_RE = re.compile(r"^\W*?([A-G])\b[)\]]?\s*[,;/|\s]\s*[(\[]?([A-G])\b[)\]]?\s*[,;/|\s]\s*[(\[]?([A-G])\b"
                            r"[)\]]?\s*(?:[,;/|\s]\s*(.*))?$", re.S)


def _depths(text: str) -> list[int]:
    """Bracket depth before each character (``[]``, ``()``): a key inside is not a key ("(less sure
    about Q2: …)"). Braces do not count: ``{q1: A, q2: C}`` is a layout of keys."""
    out, d = [], 0
    for ch in text:
        out.append(d)
        if ch in "[(":
            d += 1
        elif ch in "])" and d > 0:
            d -= 1
    return out


def _keys(region: str) -> list[tuple[int, int, str]]:
    """``(start, end, task)`` of every key that opens a task's answer, in order. ``Q1:``-style keys
    win over numbered lines (a numbered list of reasoning steps is not an answer)."""
    depth = _depths(region)
    named = [(m.start(), m.end(), f"q{m.group(1)}") for m in _KEY_RE.finditer(region) if depth[m.start()] == 0]
    if named:
        return named
    return [(m.start(), m.end(), f"q{m.group(1)}") for m in _NUM_RE.finditer(region)
            if depth[m.start() + len(m.group(0)) - len(m.group(0).lstrip())] == 0]


def _first_line(seg: str) -> str:
    """The answer to one key: its first non-empty line after a repeated question (a line that ends
    in ``?``), continued while a bracket is open."""
    lines = [ln for ln in seg.split("\n")]
    out: list[str] = []
    depth = 0
    for ln in lines:
        if not out and (not ln.strip() or ln.strip().endswith("?")):
            continue
        out.append(ln)
        depth += ln.count("[") + ln.count("{") - ln.count("]") - ln.count("}")
        if depth <= 0:
            break
    return "\n".join(out).strip()


def _paragraph(seg: str) -> str:
    return re.split(r"\n[ \t]*\n", seg.strip(), maxsplit=1)[0] if seg.strip() else ""


def _json_answers(region: str) -> Optional[dict[str, Any]]:
    """The last JSON (or Python-literal) object in ``region`` with ``q1``…``q4`` keys, one level of
    nesting allowed (``{"answer": {...}}``), as ``{"q1": value, ...}``."""
    dec = json.JSONDecoder()
    best = None
    for m in re.finditer(r"\{", region):
        try:
            obj, _ = dec.raw_decode(region, m.start())
        except json.JSONDecodeError:
            end = region.find("}", m.start())
            while end != -1:
                try:
                    obj = ast.literal_eval(region[m.start():end + 1])
                    break
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    end = region.find("}", end + 1)
            else:
                continue
        found = _q_keys(obj)
        if found:
            best = found
    return best


def _q_keys(obj: Any, depth: int = 0) -> Optional[dict[str, Any]]:
    if not isinstance(obj, dict):
        return None
    out = {}
    for k, v in obj.items():
        m = re.fullmatch(r"(?:q|question|task)?[\s_]*([1-4])(?:[\s_]*answer)?", str(k).strip().lower())
        if m:
            out[f"q{m.group(1)}"] = v
    if out:
        return out
    if depth == 0:
        for v in obj.values():
            inner = _q_keys(v, 1)
            if inner:
                return inner
    return None


def _json_text(v: Any) -> Optional[str]:
    if isinstance(v, str):
        return v
    if isinstance(v, dict):
        for key in ("answer", "letter", "choice", "option"):
            if isinstance(v.get(key), str):
                return v[key]
    if isinstance(v, list) and len(v) == 1 and isinstance(v[0], str):
        return v[0]
    return None


def _region(text: str) -> tuple[str, bool]:
    """Where the answers are: the last ``<answer>`` block, else the text after the last
    ``Answer:`` heading when it holds keys, JSON or bare letters, else the response without its
    closed reasoning blocks. The flag says whether the region is an answer block or after an
    ``Answer:`` heading (bare positional letters are read only there)."""
    block = last_tag(text, "answer")
    if block is not None:
        return block, True
    body = _BLOCKS_RE.sub("\n", text)
    if not body.strip():
        body = text
    heads = list(_ANSWER_HEAD_RE.finditer(body))
    if heads:
        after = body[heads[-1].end():]
        if _keys(after) or _json_answers(after) or _POSITIONAL_RE.match(_clean(after)):
            return after, True
    return body, False


def parse_response(text: str, q2_options: dict[str, str], q3_options: dict[str, str],
                   duration: Optional[float] = None) -> ParsedAnswer:
    """Parse a model response (see the module docstring for the layouts read).

    The last ``<answer>`` block wins (an unclosed one runs to the end); inside it (or, without one,
    in the answer region) the last ``<qN>`` tag wins, then a JSON object, then the last ``qN:`` key,
    then three bare letters. Each task is parsed independently, so one bad answer does not void the
    others. ``duration`` lets Q4 read "until the end" and "throughout the clip"."""
    out = ParsedAnswer()
    text = text or ""
    region, answer_region = _region(text)
    tag_scope = last_tag(text, "answer")
    js = _json_answers(region)
    keys = _keys(region)
    segments: dict[str, str] = {}
    for i, (_, end, q) in enumerate(keys):
        segments[q] = region[end:keys[i + 1][0] if i + 1 < len(keys) else len(region)]
    positional = None
    if not keys and js is None:
        positional = _POSITIONAL_RE.match(_clean(region))
        if positional and not answer_region and not _BARE_REST_RE.match(positional.group(4) or ""):
            positional = None  # outside an answer block, three letters then prose is not an answer
    options = {"q1": Q1_OPTIONS, "q2": q2_options, "q3": q3_options}
    for q in TASKS:
        raw: Any = None
        tagged = last_tag(tag_scope if tag_scope is not None else text, q)
        if tagged is not None:
            raw, out.how[q] = tagged, "tag"
        elif js is not None and q in js:
            raw, out.how[q] = js[q], "json"
        elif q in segments:
            raw, out.how[q] = segments[q], "line"
        elif positional is not None and (q != "q4" or positional.group(4)):
            raw, out.how[q] = positional.group(int(q[1])), "positional"
        if q == "q4":
            if out.how.get(q) == "json" and not isinstance(raw, str):
                out.q4 = _intervals_from_value(raw)
            elif raw is not None:
                seg = _MD_RE.sub("", _ECHO_RE.sub(" ", raw)) if out.how[q] == "line" else raw
                out.q4 = parse_intervals(_first_line(seg), duration)
                if out.q4 is None and out.how[q] == "line":
                    out.q4 = parse_intervals(_paragraph(seg), duration)
            if out.q4 is None:
                out.errors.append(f"{q} unparseable")
            continue
        val, how = None, None
        if out.how.get(q) == "json":
            raw = _json_text(raw)
        if raw is not None:
            if out.how[q] == "line":  # the first line after the key, else its paragraph
                cleaned = _MD_RE.sub("", _ECHO_RE.sub(" ", raw))
                val, how = parse_choice(_first_line(cleaned), options[q])
                if val is None and how is None:
                    val, how = parse_choice(_paragraph(cleaned), options[q])
            else:
                val, how = parse_choice(raw, options[q])
        setattr(out, q, val)
        if how == AMBIGUOUS:
            out.ambiguous.append(q)
            out.errors.append(f"{q} ambiguous")
        elif val is None:
            out.errors.append(f"{q} unparseable")
        elif how == "text":
            out.by_text.append(q)
    return out
