"""The built-in CPT FAQ: complete, faithful to its source, and answering as customers type."""

from __future__ import annotations

import re

import pytest

from cptbot import DEFAULT_FAQ, Matcher, load_faq, parse_faq

KB = load_faq()
MATCHER = Matcher(KB)


def test_every_faq_section_and_behaviour_is_the_answer_of_some_intent():
    answered = {intent.source for intent in KB.intents}
    assert set(KB.labels) <= answered


def test_every_intent_has_at_least_ten_example_questions():
    short = {intent.id: len(intent.examples) for intent in KB.intents if len(intent.examples) < 10}
    assert not short


FIGURE = re.compile(r"(?<![\w.])\d(?:[\d,]*\d)?")  # 17, 2021, 993-4977's parts; not Optum360


def test_answers_state_no_figure_that_the_faq_does_not():
    source_text = " ".join(KB.sources.values())
    allowed = set(FIGURE.findall(source_text))
    allowed |= {f"{KB.fee.rate_per_user * KB.fee.users_per_doctor:,}", str(KB.fee.users_per_doctor)}
    texts = [intent.answer for intent in KB.intents] + list(KB.replies.values())
    # "(FAQ 6.2)" names a section; it is a reference, not a figure.
    figures = {(text[:40], f) for text in texts for f in FIGURE.findall(re.sub(r"FAQ [\d.]+", "", text))}
    assert not {(text, figure) for text, figure in figures if figure not in allowed}


def test_no_answer_invents_a_web_address_for_the_knowledge_base():
    texts = [intent.answer for intent in KB.intents] + list(KB.replies.values())
    assert not [text for text in texts if re.search(r"https?:|www\.|\.com\b|\.org\b", text)]


def test_fee_figures_live_in_the_yaml_settings():
    text = DEFAULT_FAQ.read_text(encoding="utf-8")
    changed = parse_faq(text.replace("rate_per_user: 17 ", "rate_per_user: 20 ").replace("as_of: 2021", "as_of: 2025"))
    answer = changed.intent("fee_calculation").answer
    assert "$20" in answer and "$80 per doctor" in answer
    assert "$17" not in answer


@pytest.mark.parametrize(
    ("question", "label"),
    [
        ("how much is a cpt lisence", "6.1"),
        ("who is optum 360", "4"),
        ("do we need a lic for cpt", "2"),
        ("is PF charging us for cpt codes", "3"),
        ("why isnt the licence part of our monthly practice fusion fee", "6.5"),
        ("we have 3 docs, what will we pay", "estimate"),
        ("do I need a licence if we don't use CPT codes", "6.4"),
        ("Hi there! Quick one: who actually owns the CPT codes?", "1"),
    ],
)
def test_customer_spellings_and_abbreviations_reach_the_right_answer(question, label):
    match = MATCHER.match(question)
    assert (match.decision, match.label) == ("answer", label)


@pytest.mark.parametrize(
    "question",
    [
        "is the licence fee tax-deductible?",
        "can I move my licence to another practice?",
        "can I get a refund on my CPT license?",
        "do we need an ICD-10 license as well?",
        "what does CPT code 99213 mean?",
        "what is Optum360's phone number?",
    ],
)
def test_declines_questions_that_sound_like_the_faq_but_it_cannot_answer(question):
    assert MATCHER.match(question).decision != "answer"


CLINC = next(
    (p / "shared" / "eval" / "clinc150-dev.jsonl" for p in DEFAULT_FAQ.resolve().parents if (p / "shared").is_dir()),
    None,
)


@pytest.mark.skipif(CLINC is None, reason="needs ../shared/eval/clinc150-dev.jsonl beside the repository")
def test_the_yaml_copies_no_sentence_of_the_clinc_tuning_file():
    import json

    def words(text: str) -> str:
        return " ".join(re.findall(r"[^\W_]+", text.casefold().replace("'", "")))

    with CLINC.open(encoding="utf-8") as file:
        lines = {words(json.loads(line)["text"]) for line in file}
    texts = [t for terms in KB.concepts.values() for t in terms]
    texts += [e for intent in KB.intents for e in intent.examples] + list(KB.out_of_scope) + list(KB.background)
    copied = [t for t in texts if len(words(t).split()) >= 5 and words(t) in lines]
    assert not copied
