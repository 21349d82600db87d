"""Ticket answering: distinct questions in order, pleasantries set aside, the fee from context."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cptbot import load_faq
from cptbot.dialog import Conversation
from cptbot.ticket import Ticket, answer_ticket, split_ticket, ticket_command

KB = load_faq()
BOT = Conversation(KB)

TWO_DOCTORS = """Hi team,

Hope you are doing well. We are a two doctor office in Ohio and just got an email about the CPT license.
How much will this cost? Also, who sells the cpt license? Who do we buy the license from?
Do I need a license if we don't use CPT codes?

Thanks in advance,
Jane Doe
Office Manager, Sunrise Family Clinic
(555) 123-4567"""


def intents(ticket: Ticket) -> list[str | None]:
    return [a.intent for a in ticket.answers]


def test_answers_each_distinct_question_in_order():
    ticket = answer_ticket(BOT, TWO_DOCTORS)
    assert intents(ticket) == ["fee_estimate", "who_sells_license", "no_codes_no_license"]


def test_two_phrasings_of_one_question_get_one_answer():
    ticket = answer_ticket(BOT, TWO_DOCTORS)
    sells = ticket.answers[1]
    assert sells.question == "Also, who sells the cpt license? Who do we buy the license from?"
    assert sells.answer == KB.intent("who_sells_license").answer


def test_fee_is_estimated_from_the_size_the_ticket_gives_without_a_follow_up():
    fee = answer_ticket(BOT, TWO_DOCTORS).answers[0]
    assert fee.decision == "answer" and fee.expecting is None
    assert fee.estimate is not None
    assert (fee.estimate.doctors, fee.estimate.users) == (2, 2 * KB.fee.users_per_doctor)
    assert fee.estimate.annual_fee == fee.estimate.users * KB.fee.rate_per_user
    assert "default" in fee.answer


def test_doctors_and_staff_in_the_ticket_give_the_exact_users():
    text = "We have 3 physicians and 4 other staff. What will we pay for the CPT license?\n\nBest regards,\nDr. Smith"
    estimate = answer_ticket(BOT, text).estimate
    assert estimate is not None and (estimate.doctors, estimate.users) == (3, 7)


def test_fee_question_without_a_size_asks_for_doctors_and_hands_over_the_state():
    ticket = answer_ticket(KB, "Hello,\nWhat will my practice pay for its CPT license?\nThanks!")
    (fee,) = ticket.answers
    assert fee.decision == "ask" and fee.expecting == "doctors" and fee.estimate is None
    state = BOT.load_state(json.loads(json.dumps(ticket.state)))
    _, reply = BOT.respond(state, "2")
    assert reply.expecting == "users"


def test_greetings_context_and_signature_are_set_aside_not_answered():
    ticket = answer_ticket(BOT, TWO_DOCTORS)
    assert "Hi team," in ticket.ignored and "Hope you are doing well." in ticket.ignored
    assert "Jane Doe" in ticket.ignored and "(555) 123-4567" in ticket.ignored
    assert all(a.intent not in {"greeting", "thanks", "goodbye"} for a in ticket.answers)


def test_a_question_the_faq_does_not_cover_is_declined_in_place():
    ticket = answer_ticket(BOT, "Who sells the cpt license? And can I pay by credit card?\nThanks!")
    assert [a.decision for a in ticket.answers] == ["answer", "decline"]
    assert ticket.answers[1].question == "And can I pay by credit card?"


def test_a_ticket_of_pleasantries_only_has_no_answers():
    ticket = answer_ticket(BOT, "Hi there!\n\nThanks so much,\nBob")
    assert ticket.answers == ()


def test_splitting_keeps_titles_and_cuts_the_signature():
    sentences, signature = split_ticket("Dr. Smith here. Who sells the cpt license?\n--\nDr. Smith\nSunrise Clinic")
    assert sentences == ["Dr. Smith here.", "Who sells the cpt license?"]
    assert signature == ["--", "Dr. Smith", "Sunrise Clinic"]


def test_to_dict_is_json_ready():
    data = answer_ticket(BOT, TWO_DOCTORS).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert set(data) == {"answers", "ignored", "state", "truncated"}
    assert set(data["answers"][0]) == {"question", "decision", "label", "intent", "answer", "expecting", "estimate"}


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=400))
def test_any_text_gets_a_ticket_never_an_exception(text):
    ticket = answer_ticket(BOT, text)
    assert len({a.intent for a in ticket.answers if a.decision == "answer"}) == sum(
        a.decision == "answer" for a in ticket.answers
    )


def test_ticket_command_reads_a_file_or_stdin(tmp_path):
    path = tmp_path / "ticket.txt"
    path.write_text(TWO_DOCTORS, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    assert ticket_command(BOT, str(path), out=out, err=err) == 0
    assert out.getvalue().startswith("1. How much will this cost?")
    out = io.StringIO()
    assert ticket_command(BOT, "-", as_json=True, out=out, err=err, stdin=io.StringIO(TWO_DOCTORS)) == 0
    assert len(json.loads(out.getvalue())["answers"]) == 3


@pytest.mark.parametrize("name", ["missing.txt", "."])
def test_ticket_command_fails_cleanly_on_unreadable_files(tmp_path, name):
    err = io.StringIO()
    assert ticket_command(BOT, str(tmp_path / name), out=io.StringIO(), err=err) == 2
    assert err.getvalue().startswith("cptbot ask: ") and "Traceback" not in err.getvalue()
