"""The tolerant answer parser on messy, real-style model outputs."""

import pytest

from pipeline.grammar import format_answer, format_intervals, parse_choice, parse_intervals, parse_response

Q2 = {"A": "scratch", "B": "good", "C": "concavity", "D": "bulge", "E": "broken", "F": "hole", "G": "crack"}
Q3 = {"A": "bowl", "B": "cup", "C": "vase", "D": "bottle"}

# (response, expected q1, q2, q3, q4, expected by_text)
CORPUS = [
    ("<think>The rim shows a dent.</think><answer><q1>A</q1><q2>C</q2><q3>A</q3><q4>[[0.40, 1.17]]</q4></answer>",
     "A", "C", "A", [[0.4, 1.17]], []),
    # repeated answer blocks: the last wins
    ("<answer><q1>A</q1><q2>D</q2><q3>B</q3><q4>[0.4, 2.0]</q4></answer> Wait, let me re-check. "
     "<answer><q1>B</q1><q2>B</q2><q3>B</q3><q4>[]</q4></answer>", "B", "B", "B", [], []),
    # repeated q tags inside one block
    ("<answer><q1>B</q1><q1>A</q1><q2>G</q2><q3>D</q3><q4>none</q4></answer>", "A", "G", "D", [], []),
    # letters with option text, parentheses, markdown bold
    ("<answer><q1>A: Yes</q1><q2>(G) crack</q2><q3>**C**</q3><q4>from 0.5 s to 1.2 s</q4></answer>",
     "A", "G", "C", [[0.5, 1.2]], []),
    # option text without a letter → counted as by_text
    ("<answer><q1>Yes</q1><q2>The defect is a bulge.</q2><q3>bottle</q3><q4>0.4-1.2, 1.5-2.0</q4></answer>",
     "A", "D", "D", [[0.4, 1.2], [1.5, 2.0]], ["q1", "q2", "q3"]),
    # a misspelt option is matched to the closest one
    ("<answer><q1>B</q1><q2>good</q2><q3>botle</q3><q4>[]</q4></answer>", "B", "B", "D", [], ["q2", "q3"]),
    # no closing answer tag, missing q tags: "q1: ..." lines
    ("<think>...</think><answer>\nq1: B\nq2: B\nq3: C\nq4: []", "B", "B", "C", [], []),
    # "Answer is X" cue inside the tag
    ("<answer><q1>The answer is A</q1><q2>Option F</q2><q3>B) cup</q3><q4>[[0.0, 0.75], [1.25, 2.0]]</q4></answer>",
     "A", "F", "B", [[0.0, 0.75], [1.25, 2.0]], []),
    # interval spelled with seconds and an en dash, tags upper-case
    ("<ANSWER><Q1>A</Q1><Q2>A</Q2><Q3>A</Q3><Q4>1.0 s – 2.0 s</Q4></ANSWER>", "A", "A", "A", [[1.0, 2.0]], []),
    # no answer block at all: nothing parses
    ("I am not sure what this object is.", None, None, None, None, []),
    # garbage inside the tags
    ("<answer><q1>maybe</q1><q2>Z</q2><q3>something round</q3><q4>somewhere in the middle</q4></answer>",
     None, None, None, None, []),
    # inverted interval is unparseable, the rest still parses
    ("<answer><q1>A</q1><q2>D</q2><q3>C</q3><q4>[[1.5, 0.5]]</q4></answer>", "A", "D", "C", None, []),
]


@pytest.mark.parametrize("text,q1,q2,q3,q4,by_text", CORPUS)
def test_corpus(text, q1, q2, q3, q4, by_text):
    p = parse_response(text, Q2, Q3)
    assert (p.q1, p.q2, p.q3, p.q4) == (q1, q2, q3, q4)
    assert p.by_text == by_text


def test_errors_name_the_unparseable_tasks():
    p = parse_response("<answer><q1>A</q1><q2>Z</q2><q3>C</q3></answer>", Q2, Q3)
    assert "q2 unparseable" in p.errors and "q4 unparseable" in p.errors and "q1 unparseable" not in p.errors


# the rows of issue #13's table: each was misread before
ISSUE_TABLE = [
    ("…to the end.Answer:q1:A; q2:D; q3:B; q4:[0,2.0]", ("A", "D", "B", [[0, 2]])),
    ("Q1: A\nQ2: F\nQ3: C\nQ4: [[0.5, 1.0]]", ("A", "F", "C", [[0.5, 1]])),
    ('{"q1": "A", "q2": "F", "q3": "C", "q4": [[0.4, 1.2]]}', ("A", "F", "C", [[0.4, 1.2]])),
    ('```json\n{"q1": "A", "q2": "F", "q3": "C", "q4": [[0.4, 1.2]]}\n```', ("A", "F", "C", [[0.4, 1.2]])),
    ("1. A\n2. C\n3. D\n4. [[0.3, 1.5]]", ("A", "C", "D", [[0.3, 1.5]])),
    ("q1=A, q2=C, q3=B, q4=[[0.2, 0.9], [1.4, 2.0]]", ("A", "C", "B", [[0.2, 0.9], [1.4, 2.0]])),
]


@pytest.mark.parametrize("text,want", ISSUE_TABLE)
def test_issue_table_layouts(text, want):
    p = parse_response(text, Q2, Q3)
    assert (p.q1, p.q2, p.q3, p.q4) == want and p.errors == []


def test_issue_table_bold_key_and_prose_interval():
    p = parse_response("**Q1:** A\n**Q2:** D (bulge)\n**Q3:** B\nQ4: The anomaly is visible from 0.8 to 2.0 seconds.",
                       Q2, Q3)
    assert (p.q1, p.q2, p.q3, p.q4) == ("A", "D", "B", [[0.8, 2.0]])
    assert p.how == {"q1": "line", "q2": "line", "q3": "line", "q4": "line"}


@pytest.mark.parametrize("text,want", [
    ("A or B", (None, "ambiguous")), ("C/D", (None, "ambiguous")), ("crack or scratch", (None, "ambiguous")),
    ("C: bulge", (None, "ambiguous")),     # C is concavity: the answer contradicts itself
    ("D (bulge)", ("D", "letter")), ("It is not a crack, it is a hole.", ("F", "text")),
    ("A crack.", ("G", "text")),           # the article, not the letter A
    ("no defect", ("B", "text")),          # Q2's "good"
    ("The answer is E.", ("E", "letter")),
])
def test_parse_choice_never_guesses(text, want):
    assert parse_choice(text, Q2) == want


def test_q4_needs_the_duration_for_until_the_end_and_throughout():
    assert parse_intervals("from 0.9 s to the end") is None
    assert parse_intervals("from 0.9 s to the end", duration=2.0) == [[0.9, 2.0]]
    assert parse_intervals("visible throughout the clip", duration=2.0) == [[0.0, 2.0]]
    assert parse_intervals("from the start until 0.7 s") == [[0.0, 0.7]]
    assert parse_intervals("0.4s-1.2s") == [[0.4, 1.2]]
    assert parse_intervals('[{"start": 0.3, "end": 0.9}]') == [[0.3, 0.9]]


@pytest.mark.parametrize("text,expected", [
    ("[[0.40, 1.17], [1.50, 2.00]]", [[0.4, 1.17], [1.5, 2.0]]),
    ("[0.5, 1.0]", [[0.5, 1.0]]),
    ("[[]]", []), ("[]", []), ("None", []), ("none.", []), ("The defect is never visible.", []),
    ("between 0.5 and 1.0 seconds", [[0.5, 1.0]]),
    ("from 0.40s to 1.17s and from 1.5 s to 2 s", [[0.4, 1.17], [1.5, 2.0]]),
    ("(0.2, 0.9)", [[0.2, 0.9]]),
    ("```json\n[[0.1, 0.3]]\n```", [[0.1, 0.3]]),
    ("[[0.5, 1.0]", [[0.5, 1.0]]),
    ("[-0.5, 1.0]", None), ("soon", None), ("", None), (None, None),
])
def test_parse_intervals(text, expected):
    assert parse_intervals(text) == expected


def test_article_a_is_not_a_letter_answer():
    # "a crack" must resolve by option text (crack = G), not to the letter A
    assert parse_choice("a crack on the rim", Q2) == ("G", "text")


def test_round_trip_of_the_grammar_formatters():
    ans = format_answer("A", "G", "B", format_intervals([[0.4, 1.17], [1.5, 2.0]]))
    p = parse_response(ans, Q2, Q3)
    assert (p.q1, p.q2, p.q3, p.q4, p.errors) == ("A", "G", "B", [[0.4, 1.17], [1.5, 2.0]], [])
