"""The conversation: transcripts of the fee estimate, FAQ answers, and saved states.

Transcripts use clear-cut phrasings, so they hold while the matcher's scores are tuned.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cptbot.dialog import MAX_STRIKES, Conversation, Reply, State
from cptbot.errors import StateError
from cptbot.fee import MAX_DOCTORS, MAX_USERS
from cptbot.knowledge import load_faq

KB = load_faq()
BOT = Conversation(KB)
DECISIONS = {"answer", "clarify", "decline", "ask"}


def talk(*messages: str, state: State | None = None) -> tuple[State, list[Reply]]:
    """Run messages through the bot, checking that every state survives JSON."""
    state = BOT.start() if state is None else state
    replies = []
    for text in messages:
        state, reply = BOT.respond(state, text)
        assert BOT.load_state(json.loads(json.dumps(BOT.dump_state(state)))) == state
        replies.append(reply)
    return state, replies


def last(*messages: str) -> Reply:
    return talk(*messages)[1][-1]


def figures(reply: Reply) -> tuple[int, int, int] | None:
    est = reply.estimate
    return None if est is None else (est.doctors, est.users, est.annual_fee)


# -- starting the estimate ----------------------------------------------------------------


@pytest.mark.parametrize("question", ["how much will this cost us", "estimate my CPT fee", "what will my practice pay for cpt"])
def test_fee_questions_about_our_practice_start_the_estimate(question):
    reply = last(question)
    assert (reply.decision, reply.label, reply.expecting) == ("ask", "estimate", "doctors")
    assert "How many doctors" in reply.text
    assert "$17" in reply.text and "4 users per doctor" in reply.text


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("we have 5 physicians and 12 users", (5, 12, 204)),
        ("what would 3 doctors and 8 users pay", (3, 8, 136)),
        ("3 doctors and 4 other staff, what is our fee?", (3, 7, 119)),
        ("how much for 2 docs and 6 logins", (2, 6, 102)),
        ("our fee with 4 providers and 10 seats?", (4, 10, 170)),
        ("we are 2 MDs and 3 nurses, how much do we pay", (2, 5, 85)),
        ("estimate for three doctors and twenty-five users", (3, 25, 425)),
    ],
)
def test_a_message_with_all_counts_gets_the_estimate_at_once(message, expected):
    reply = last(message)
    assert (reply.decision, reply.label, reply.expecting) == ("answer", "estimate", None)
    assert figures(reply) == expected


@pytest.mark.parametrize(
    ("question", "label"),
    [("how is the fee calculated", "6.1"), ("how many users per doctor does the ama assume", "6.2")],
)
def test_general_fee_questions_are_answered_and_offer_the_estimate(question, label):
    reply = last(question)
    assert (reply.decision, reply.label, reply.expecting, reply.estimate) == ("answer", label, None, None)
    assert reply.match is not None and reply.match.label == label
    assert reply.text.startswith(KB.intent(reply.match.intent).answer)
    assert "estimate your practice's annual fee" in reply.text


def test_accepting_the_offer_starts_the_estimate():
    reply = last("how is the fee calculated", "yes please")
    assert (reply.decision, reply.expecting) == ("ask", "doctors")


def test_counts_after_the_offer_start_the_estimate():
    assert figures(last("how is the fee calculated", "5 doctors and 12 users")) == (5, 12, 204)


# -- filling slots ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "doctors"),
    [
        ("3", 3),
        ("three", 3),
        ("twenty-five", 25),
        ("twenty five", 25),
        ("a dozen", 12),
        ("we have 7 physicians", 7),
        ("about 4 docs", 4),
        ("one hundred and twenty", 120),
        ("1,200", 1200),
        ("solo practice", 1),
        ("it's just me", 1),
        ("3.", 3),
        ("Ｔｈｒｅｅ", 3),
        ("３", 3),
    ],
)
def test_doctors_are_read_from_digits_and_number_words(answer, doctors):
    state, replies = talk("how much will this cost us", answer)
    assert state.doctors == doctors
    assert (replies[-1].decision, replies[-1].expecting) == ("ask", "users")


def test_asks_for_users_after_doctors_offering_the_ama_default():
    reply = last("estimate my CPT fee", "3")
    assert reply.expecting == "users"
    assert "default is 12 users ($204 a year)" in reply.text
    assert "from 3 to 100,000" in reply.text


@pytest.mark.parametrize("answer", ["not sure", "I don't know", "default", "", "   ", "no idea, use the AMA default"])
def test_estimate_uses_four_users_per_doctor_by_default(answer):
    state, replies = talk("estimate my CPT fee", "3", answer)
    assert figures(replies[-1]) == (3, 12, 204)
    assert state.use_default and state.expecting is None


@pytest.mark.parametrize(
    ("answer", "users"),
    [("7", 7), ("7 users", 7), ("twelve", 12), ("4 other staff", 7), ("2 nurses and 1 biller", 6), ("12 logins in total", 12)],
)
def test_users_answer_counts_everyone_or_adds_the_others(answer, users):
    assert figures(last("estimate my CPT fee", "3", answer)) == (3, users, users * 17)


def test_users_given_before_doctors_are_kept():
    _, replies = talk("we have 12 users, what's our fee?", "3")
    assert figures(replies[-1]) == (3, 12, 204)


@pytest.mark.parametrize(
    ("message", "expecting", "proposal"),
    [
        ("how much would we pay for 3 or 4 doctors", "doctors", None),
        ("what would 3-4 doctors cost us", "doctors", None),
        ("what will 5 cost us", "doctors", 5),
        ("what will a couple of doctors pay", "doctors", 2),
        ("we have 3 doctors and 4 staff, what's our fee", "users", None),
    ],
)
def test_ambiguous_counts_are_confirmed_not_guessed(message, expecting, proposal):
    state, replies = talk(message)
    reply = replies[-1]
    assert (reply.decision, reply.expecting, reply.estimate) == ("ask", expecting, None)
    assert state.proposal == proposal and state.strikes == 0


def test_staff_that_may_include_doctors_are_asked_about():
    reply = last("we have 3 doctors and 4 staff, what's our fee")
    assert "4 if the doctors are among them, 7 if not" in reply.text


def test_confirming_a_proposed_count_uses_it_and_denying_asks_again():
    assert talk("what will a couple of doctors pay", "yes")[0].doctors == 2
    state, replies = talk("what will a couple of doctors pay", "no")
    assert (state.doctors, state.proposal, replies[-1].expecting) == (None, None, "doctors")


def test_fewer_staff_than_doctors_can_only_be_others():
    assert figures(last("we have 3 doctors and 2 staff, what's our fee")) == (3, 5, 85)


# -- the result ----------------------------------------------------------------------------


def test_result_shows_arithmetic_default_sources_and_binding_terms():
    reply = last("we have 5 physicians and 12 users")
    text = reply.text
    assert "12 users × $17 = $204 a year" in text
    assert "5 doctors × 4 = 20 users, or $340 a year" in text
    for label in ("6.1", "6.2", "6.3"):
        assert f"FAQ {label}" in text
    assert "estimate from public information" in text
    assert "binding terms come from Optum360" in text
    assert reply.to_dict() == {
        "reply": text,
        "decision": "answer",
        "label": "estimate",
        "expecting": None,
        "estimate": {"doctors": 5, "users": 12, "rate": 17, "annual_fee": 204, "default_users": 20, "default_fee": 340},
    }


def test_result_with_default_users_says_it_used_the_ama_figure():
    text = last("estimate my CPT fee", "2", "not sure").text
    assert "8 users × $17 = $136 a year" in text and "used the AMA's estimate" in text


# -- no CPT codes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "messages",
    [
        ("we don't use CPT codes",),
        ("estimate my CPT fee", "we don't use CPT codes"),
        ("estimate my CPT fee", "3", "actually we do not use cpt codes at all"),
        ("we have 5 physicians and 12 users", "oh wait, we never use CPT"),
    ],
)
def test_no_cpt_codes_means_no_license_at_any_point(messages):
    state, replies = talk(*messages)
    reply = replies[-1]
    assert (reply.decision, reply.label, reply.expecting, reply.estimate) == ("answer", "6.4", None, None)
    assert "no CPT code license is necessary" in reply.text and "$0" in reply.text
    assert state == State()


# -- bad answers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ("-3", "negative"),
        ("0", "at least 1 doctor"),
        ("2.5", "not a whole number"),
        ("abc", "'abc' is not a number of doctors"),
        ("1e9", "power of ten"),
        ("lots", "'lots' is not a number of doctors"),
        ("100,000", "100,000 doctors is more than this estimate handles"),
        ("100000 doctors", "100,000 doctors is more than this estimate handles"),
        ("not sure", "I need the number of doctors"),
    ],
)
def test_bad_doctor_answers_get_a_specific_reprompt(answer, says):
    reply = last("estimate my CPT fee", answer)
    assert (reply.decision, reply.label, reply.expecting) == ("ask", "estimate", "doctors")
    assert says in reply.text
    assert "from 1 to 10,000" in reply.text


@pytest.mark.parametrize(
    ("answer", "says"),
    [("2", "2 users is fewer than the practice's 3 doctors"), ("-1", "negative"), ("7.5", "not a whole number"),
     ("200000", "more than this estimate handles"), ("many", "'many' is not a number of users")],
)
def test_bad_user_answers_get_a_specific_reprompt(answer, says):
    reply = last("estimate my CPT fee", "3", answer)
    assert (reply.decision, reply.expecting) == ("ask", "users")
    assert says in reply.text and "from 3 to 100,000" in reply.text


@pytest.mark.parametrize(
    "prefix", [("estimate my CPT fee",), ("estimate my CPT fee", "3"), ("what will a couple of doctors pay",)]
)
@pytest.mark.parametrize("bad", ["-3", "0", "2.5", "abc", "1e9", "lots", "100000 doctors"])
def test_a_rejected_answer_leaves_the_state_unchanged_but_for_a_strike(prefix, bad):
    before, _ = talk(*prefix)
    after, reply = BOT.respond(before, bad)
    assert reply.decision == "ask"
    assert after == replace(before, strikes=before.strikes + 1)


def test_three_bad_answers_in_a_row_offer_to_stop_and_hand_off():
    state, replies = talk("estimate my CPT fee", "abc", "-3", "lots")
    assert "Optum360" not in replies[2].text
    assert state.strikes == MAX_STRIKES
    assert "cancel" in replies[-1].text and "Optum360" in replies[-1].text and "(415) 993-4977" in replies[-1].text
    state, replies = talk("abc", state=state)
    assert state.strikes == MAX_STRIKES and "(415) 993-4977" in replies[-1].text


def test_a_good_answer_clears_the_strikes():
    state, _ = talk("estimate my CPT fee", "abc", "-3", "3")
    assert (state.strikes, state.doctors) == (0, 3)


# -- interruptions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "label"),
    [("who sells the CPT license?", "4"), ("why isn't the cpt license included in my monthly fee", "6.5")],
)
def test_faq_question_mid_estimate_is_answered_then_the_question_is_asked_again(question, label):
    before, _ = talk("estimate my CPT fee", "3")
    after, reply = BOT.respond(before, question)
    assert (reply.decision, reply.label, reply.expecting) == ("answer", label, "users")
    assert reply.text.startswith(KB.intent(reply.match.intent).answer)
    assert reply.text.rstrip().endswith("(a whole number from 3 to 100,000)")
    assert after == before


def test_who_is_optum360_mid_estimate_keeps_the_pending_question():
    before, _ = talk("estimate my CPT fee")
    after, reply = BOT.respond(before, "wait, who is Optum360?")
    assert reply.decision in ("answer", "clarify") and reply.expecting == "doctors"
    assert reply.label in ("4", "6.3") and "How many doctors" in reply.text
    assert after == before


@pytest.mark.parametrize("word", ["cancel", "never mind", "stop", "Stop.", "forget it"])
def test_cancel_leaves_the_estimate(word):
    state, replies = talk("estimate my CPT fee", "3", word)
    assert state == State()
    assert (replies[-1].decision, replies[-1].expecting) == ("answer", None)


@pytest.mark.parametrize("word", ["start over", "let's start again", "restart"])
def test_start_over_restarts_the_estimate(word):
    state, replies = talk("we have 5 physicians and 12 users", word)
    assert state == State(mode="estimate", expecting="doctors")
    assert (replies[-1].decision, replies[-1].expecting) == ("ask", "doctors")


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        (("estimate my CPT fee", "3", "actually it's 4 doctors", "not sure"), (4, 16, 272)),
        (("we have 5 physicians and 12 users", "actually it's 4 doctors"), (4, 12, 204)),
        (("we have 5 physicians and 12 users", "sorry, 15 users"), (5, 15, 255)),
        (("estimate my CPT fee", "2", "not sure", "actually 3 doctors"), (3, 12, 204)),
    ],
)
def test_actually_corrects_a_slot(messages, expected):
    assert figures(last(*messages)) == expected


def test_a_correction_below_the_users_is_rejected_and_changes_nothing():
    before, _ = talk("we have 5 physicians and 12 users")
    after, reply = BOT.respond(before, "actually it's 20 doctors")
    assert after == replace(before, strikes=1)
    assert "12 users is fewer than the practice's 20 doctors" in reply.text


# -- outside an estimate ------------------------------------------------------------------


def test_outside_an_estimate_the_reply_is_the_matchers_verdict():
    for question in ("who sells the CPT license?", "what is the weather in Paris tomorrow"):
        reply = last(question)
        match = BOT.matcher.match(question)
        assert (reply.decision, reply.label, reply.match) == (match.decision, match.label, match)
        assert reply.expecting is None


def test_declined_questions_have_no_label():
    reply = last("what is the weather in Paris tomorrow")
    assert (reply.decision, reply.label) == ("decline", None)


def clarify_state() -> State:
    intents = tuple(i.id for i in KB.intents if i.id in ("who_sells_license", "how_to_obtain", "fee_calculation"))
    return State(options=intents)


@pytest.mark.parametrize("pick", [1, 2, 3])
def test_after_a_clarify_a_number_picks_that_option(pick):
    state = clarify_state()
    intent = KB.intent(state.options[pick - 1])
    _, reply = BOT.respond(state, str(pick))
    assert (reply.decision, reply.label) == ("answer", intent.source)
    assert reply.text.startswith(intent.answer)


def test_a_real_clarify_reply_lists_its_options_and_remembers_them():
    question = next(
        q for q in ("wait, who is Optum360?", "optum", "license help", "who")
        if BOT.matcher.match(q).decision == "clarify"
    )
    state, reply = BOT.respond(BOT.start(), question)
    assert reply.decision == "clarify" and reply.options == BOT.matcher.match(question).candidates
    assert state.options == tuple(c.intent for c in reply.options)
    _, picked = BOT.respond(state, "1")
    assert picked.label == reply.options[0].label


def test_a_number_while_expecting_a_count_is_a_count_not_an_option():
    state, _ = talk("estimate my CPT fee")
    assert talk("2", state=replace(state))[0].doctors == 2


# -- saved states ---------------------------------------------------------------------------


GOOD = BOT.dump_state(talk("estimate my CPT fee", "3")[0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"doctors": -1}, "'doctors' is -1, allowed 1"),
        ({"doctors": "3"}, "'doctors' must be a whole number"),
        ({"doctors": 3.0}, "'doctors' must be a whole number"),
        ({"doctors": True}, "'doctors' must be a whole number"),
        ({"doctors": MAX_DOCTORS + 1}, "allowed 1 to 10,000"),
        ({"users": 2}, "2 users is fewer than 3 doctors"),
        ({"users": MAX_USERS + 1}, "'users' is 100001"),
        ({"strikes": -1}, "'strikes' is -1"),
        ({"strikes": 4}, "'strikes' is 4"),
        ({"strikes": None}, "'strikes' must be a whole number"),
        ({"mode": "admin"}, "'mode' is 'admin'"),
        ({"expecting": "coupon"}, "'expecting' is 'coupon'"),
        ({"options": ["drop_tables"]}, "unknown intent 'drop_tables'"),
        ({"options": "who_sells_license"}, "must be a list"),
        ({"use_default": 1}, "'use_default' must be true or false"),
        ({"proposal": 0}, "'proposal' is 0"),
        ({"version": 99}, "version 99"),
        ({"price": 0}, "unknown field 'price'"),
        ({"expecting": None}, "neither complete nor asking"),
        ({"mode": "idle"}, "holds no estimate"),
        ({"expecting": "doctors"}, "waiting for doctors that are already known"),
    ],
)
def test_load_state_rejects_tampered_states(change, message):
    data = {**GOOD, **change}
    with pytest.raises(StateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        BOT.load_state(data)


@pytest.mark.parametrize("data", [None, [], "state", 3, {}, {"mode": "idle"}])
def test_load_state_rejects_things_that_are_not_states(data):
    with pytest.raises(StateError):
        BOT.load_state(data)


def test_missing_field_is_named():
    data = dict(GOOD)
    del data["strikes"]
    with pytest.raises(StateError, match="missing field 'strikes'"):
        BOT.load_state(data)


def test_start_state_round_trips():
    assert BOT.load_state(json.loads(json.dumps(BOT.dump_state(BOT.start())))) == BOT.start()


def test_reply_to_dict_is_the_jsonl_protocol():
    reply = last("estimate my CPT fee")
    assert reply.to_dict() == {
        "reply": reply.text, "decision": "ask", "label": "estimate", "expecting": "doctors", "estimate": None,
    }


# -- any input -------------------------------------------------------------------------------

VOCABULARY = (
    "3 0 -3 2.5 1e9 100000 12 one three twenty-five a dozen couple doctors physicians docs users staff other "
    "nurses people and or actually cancel stop start over yes no not sure default we don't use cpt codes how "
    "much will this cost us estimate my fee who sells the license solo just me , . ? 1 2 $17 per doctor"
)
WORDS = st.sampled_from(VOCABULARY.split())
MESSAGES = st.one_of(
    st.lists(WORDS, max_size=8).map(" ".join),
    st.text(max_size=40),
    st.integers(-10**12, 10**12).map(str),
    st.sampled_from(["", " ", "\x00", "\u202e3", "٣", "³", "1" * 400, "\n\n", "1️⃣"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MESSAGES, min_size=1, max_size=8))
def test_any_messages_get_well_formed_replies_and_round_tripping_states(messages):
    state = BOT.start()
    for text in messages:
        state, reply = BOT.respond(state, text)
        assert isinstance(reply.text, str) and reply.text
        assert reply.decision in DECISIONS
        assert reply.expecting in (None, "doctors", "users")
        assert reply.expecting == state.expecting
        assert (reply.label is None) == (reply.decision == "decline")
        json.dumps(reply.to_dict())
        assert BOT.load_state(json.loads(json.dumps(BOT.dump_state(state)))) == state
        est = reply.estimate
        if est is not None:
            assert est.annual_fee == est.users * est.rate
            assert est.users >= est.doctors >= 1
            assert est.rate == KB.fee.rate_per_user
            assert est.default_users == est.doctors * KB.fee.users_per_doctor


@settings(max_examples=100, deadline=None)
@given(st.integers(1, MAX_DOCTORS), st.integers(0, 10 * MAX_USERS))
def test_any_counts_in_a_message_give_a_correct_estimate_or_a_reprompt(doctors, users):
    _, reply = BOT.respond(BOT.start(), f"we have {doctors} doctors and {users} users, what's our fee?")
    if doctors <= users <= MAX_USERS:
        assert figures(reply) == (doctors, users, users * 17)
    else:
        assert reply.estimate is None and reply.decision == "ask"


def test_asking_for_the_estimate_again_repeats_it():
    state, replies = talk("we have 5 physicians and 12 users", "how much will this cost us")
    assert figures(replies[-1]) == (5, 12, 204)
    assert state.doctors == 5 and state.expecting is None


def test_fee_questions_after_an_estimate_do_not_offer_another():
    state, replies = talk("we have 5 physicians and 12 users", "how is the fee calculated")
    assert replies[-1].label == "6.1" and "I can also estimate" not in replies[-1].text
    assert (state.mode, state.doctors) == ("estimate", 5)
