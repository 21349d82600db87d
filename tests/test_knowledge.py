"""Loading a FAQ: a broken file gives one KnowledgeBaseError naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from cptbot import DEFAULT_FAQ, KnowledgeBaseError, load_faq, parse_faq

DATA = Path(__file__).parent / "data"
MINI = DATA / "mini_faq.yaml"

# (case, text to replace in mini_faq.yaml, replacement, message pattern, the broken file's
# line the error must name, given as text that begins that line)
BROKEN = [
    ("yaml syntax error", "title: Library FAQ", "title: [Library FAQ", r"YAML syntax error", "sources:"),
    (
        "duplicate key",
        "title: Library FAQ",
        "title: Library FAQ\ntitle: Other",
        r"duplicate key 'title' \(first at line 2\)",
        "title: Other",
    ),
    (
        "unknown field",
        "    question: When is the library open?",
        "    question: When is the library open?\n    anwser: nine to five",
        r"unknown field 'anwser' \(allowed: answer, examples",
        "    anwser:",
    ),
    (
        "missing field",
        "    question: When is the library open?\n",
        "",
        r"missing field 'question'",
        "  - id: opening_hours",
    ),
    (
        "duplicate intent id",
        "  - id: card_price",
        "  - id: opening_hours",
        r"intent 'opening_hours': duplicate intent id \(first at line 31\)",
        "  - id: opening_hours\n    source: card",
    ),
    (
        "unknown source label",
        "    source: card\n",
        "    source: cards\n",
        r"intent 'card_price': unknown source label 'cards' \(known: hours, card, greeting\)",
        "    source: cards",
    ),
    (
        "intent with no examples",
        "    examples:\n      - hi\n      - hello there\n",
        "    examples: []\n",
        r"intent 'greeting': field 'examples' needs at least 1",
        "    examples: []",
    ),
    (
        "wrong type (text for a number)",
        "max_chars: 1000",
        "max_chars: lots",
        r"settings.matching: field 'max_chars' must be a whole number, got text",
        "    max_chars: lots",
    ),
    (
        "classifier weight out of range",
        "max_chars: 1000",
        "max_chars: 1000\n    classifier_weight: 1.5",
        r"settings.matching: field 'classifier_weight' is 1.5, allowed 0 to 1",
        "    classifier_weight: 1.5",
    ),
    (
        "answer probability out of range",
        "max_chars: 1000",
        "max_chars: 1000\n    answer_probability: -0.2",
        r"settings.matching: field 'answer_probability' is -0.2, allowed 0 to 1",
        "    answer_probability: -0.2",
    ),
    (
        "topic threshold out of range",
        "max_chars: 1000",
        "max_chars: 1000\n    topic_threshold: 120",
        r"settings.matching: field 'topic_threshold' is 120, allowed 0 to 100",
        "    topic_threshold: 120",
    ),
    (
        "wrong type (text for true/false)",
        "    smalltalk: true",
        '    smalltalk: "yes"',
        r"intent 'greeting': field 'smalltalk' must be true or false",
        '    smalltalk: "yes"',
    ),
    (
        "wrong type (number for true/false)",
        "requires: [hours]",
        "requires: [hours]\n    strict: 1",
        r"intent 'opening_hours': field 'strict' must be true or false, got a number",
        "    strict: 1",
    ),
    (
        "wrong type (text for true/false, implied)",
        "requires: [hours]",
        'requires: [hours]\n    implied: "sometimes"',
        r"intent 'opening_hours': field 'implied' must be true or false, got text",
        '    implied: "sometimes"',
    ),
    (
        "family that is not a name",
        "requires: [hours]",
        'requires: [hours]\n    family: "Opening Hours"',
        r"intent 'opening_hours': a family is named in lower-case letters, digits and _",
        '    family: "Opening Hours"',
    ),
    (
        "clarify score out of range",
        "max_chars: 1000",
        "max_chars: 1000\n    clarify_score: 101",
        r"settings.matching: field 'clarify_score' is 101, allowed 0 to 100",
        "    clarify_score: 101",
    ),
    (
        "unknown concept in requires",
        "requires: [hours]",
        "requires: [hour]",
        r"intent 'opening_hours': 'requires' names unknown concept 'hour'",
        "    requires: [hour]",
    ),
    (
        "unknown concept in excludes_in_sentence",
        "requires: [hours]",
        "requires: [hours]\n    excludes_in_sentence: [hour]",
        r"intent 'opening_hours': 'excludes_in_sentence' names unknown concept 'hour'",
        "    excludes_in_sentence: [hour]",
    ),
    (
        "probability out of range",
        "max_chars: 1000",
        "max_chars: 1000\n    sure_probability: 1.5",
        r"settings.matching: field 'sure_probability' is 1.5, allowed 0 to 1",
        "    sure_probability: 1.5",
    ),
    (
        "unknown placeholder",
        "{as_of}",
        "{year}",
        r"intent 'card_price': answer: unknown placeholder '\{year\}' \(known: \{rate\}",
        '    answer: "A library card costs {rate} a year (as of {year})',
    ),
]


def _line_of(text: str, start: str) -> int:
    lines = text.splitlines()
    for number in range(len(lines)):
        if "\n".join(lines[number:]).startswith(start):
            return number + 1
    raise AssertionError(f"no line starts with {start!r}")


@pytest.mark.parametrize(("old", "new", "pattern", "at"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_broken_faq_names_file_line_and_field(tmp_path, old, new, pattern, at):
    source = MINI.read_text(encoding="utf-8")
    assert old in source
    broken = source.replace(old, new, 1)
    path = tmp_path / "broken.yaml"
    path.write_text(broken, encoding="utf-8")
    line = _line_of(broken, at)
    with pytest.raises(KnowledgeBaseError, match=rf"^{path}:{line}: .*{pattern}") as caught:
        load_faq(path)
    assert caught.value.path == str(path)
    assert caught.value.line == line


def test_missing_file_says_what_to_pass(tmp_path):
    with pytest.raises(KnowledgeBaseError, match=r"nowhere\.yaml: no such file; pass the path of a FAQ YAML file"):
        load_faq(tmp_path / "nowhere.yaml")


def test_a_list_instead_of_a_faq_is_rejected():
    with pytest.raises(KnowledgeBaseError, match=r"^notes\.yaml:1: file: expected a mapping, got a list"):
        parse_faq("- just\n- a list\n", path="notes.yaml")


def test_builtin_faq_loads_with_its_fee_settings():
    kb = load_faq()
    assert Path(kb.path) == DEFAULT_FAQ
    assert (kb.fee.rate_per_user, kb.fee.users_per_doctor) == (17, 4)
    assert {"sales", "intro", "1", "2", "3", "4", "5", "6", "6.1", "6.5", "kb"} <= set(kb.sources)
    assert {"greeting", "thanks", "goodbye", "help", "human"} <= set(kb.behaviours)
    assert all(intent.examples for intent in kb.intents)


def test_another_faq_of_the_same_schema_loads_and_fills_its_placeholders():
    kb = load_faq(MINI)
    assert kb.title == "Library FAQ"
    assert [intent.id for intent in kb.intents] == ["opening_hours", "card_price", "greeting"]
    assert kb.intent("card_price").answer == "A library card costs $5 a year (as of 2024)."
    assert kb.intent("opening_hours").line == 31


def test_loaded_knowledge_base_is_read_only():
    kb = load_faq(MINI)
    with pytest.raises(TypeError):
        kb.sources["hours"] = "always"  # type: ignore[index]
    with pytest.raises(AttributeError):
        kb.title = "changed"  # type: ignore[misc]
