"""The CI quality gate: a content or matcher change that makes the bot worse fails here.

Floors are set a little below the figures measured when they were last raised (shown
beside each constant, in %). Raise them as the matcher improves; the targets
of issue 2 are >= 95% right and <= 2% wrong in scope, <= 1% of CLINC150 everyday requests
answered and >= 90% of small talk recognised.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cptbot import EvalReport, Matcher, evaluate, load_faq, read_labelled

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parent.parent
# In CI a copy of the shared/ folder sits beside the clone (../shared); a git worktree may
# sit one level deeper, so the nearest ancestor holding shared/eval/ is used. Absent: skip.
CLINC = next(
    (p / "shared" / "eval" / "clinc150-dev.jsonl" for p in ROOT.parents if (p / "shared" / "eval").is_dir()),
    ROOT.parent / "shared" / "eval" / "clinc150-dev.jsonl",
)
CLINC_EVERY = 4  # the deterministic sample: every 4th line (4,400 of 17,600)

# (file, group, minimum % right, maximum % answered wrongly) -- measured: right, wrong
FLOORS = [
    ("dev.jsonl", "in_scope", 94.9, 3.0),  # measured 97.9, 1.6
    ("dev.jsonl", "small_talk", 97.0, 3.0),  # measured 100.0, 0.0
    ("dev.jsonl", "out_of_scope", 0.0, 13.6),  # measured -, 11.1 answered
    ("dev2.jsonl", "in_scope", 94.5, 2.0),  # measured 97.5, 0.6
    ("dev2.jsonl", "small_talk", 97.0, 3.0),  # measured 100.0, 0.0
    ("dev2.jsonl", "out_of_scope", 0.0, 5.3),  # measured -, 2.8 answered
    ("dev3.jsonl", "in_scope", 96.4, 2.0),  # measured 99.4, 0.6
    ("dev3.jsonl", "small_talk", 84.5, 3.0),  # measured 87.5, 0.0
    ("dev3.jsonl", "out_of_scope", 0.0, 8.2),  # measured -, 5.7 answered
    ("dev4_fees.jsonl", "in_scope", 93.0, 2.1),  # measured 96.0, 0.7
    ("dev4_fees.jsonl", "out_of_scope", 0.0, 14.5),  # measured -, 12.0 answered
    # Never FAQ examples (the matching thresholds are chosen on all of these sets).
    ("holdout.jsonl", "in_scope", 94.5, 2.0),  # measured 97.5, 0.6
    ("holdout.jsonl", "small_talk", 81.4, 4.1),  # measured 84.4, 3.1
    ("holdout.jsonl", "out_of_scope", 0.0, 9.9),  # measured -, 7.4 answered
    # Every 5th line of the eight phrasing sets whose other lines are FAQ examples.
    ("holdout2.jsonl", "in_scope", 94.9, 1.9),  # measured 97.9, 0.5
    ("holdout2.jsonl", "out_of_scope", 0.0, 4.0),  # measured -, 1.0 answered
    # The same for three later sets about the fee (what it costs, who pays, who sets it).
    ("holdout3.jsonl", "in_scope", 94.9, 1.9),  # measured 97.9, 0.5
    ("holdout3.jsonl", "out_of_scope", 0.0, 4.0),  # measured -, 0.0 answered (of 32 lines)
    # The same for four sets by personas: office managers, doctors on phones, pasted tickets,
    # and questions on the borders between two answers.
    ("holdout4.jsonl", "in_scope", 94.5, 1.9),  # measured 97.5, 0.5
    ("holdout4.jsonl", "out_of_scope", 0.0, 4.0),  # measured -, 0.0 answered (of 42 lines)
    # The same for four more: upset customers with the Optum letter, search-box keywords, many
    # kinds of practice (dentists, therapists ...), formal and British/Indian English.
    ("holdout5.jsonl", "in_scope", 93.9, 2.9),  # measured 96.9, 1.5
    ("holdout5.jsonl", "out_of_scope", 0.0, 4.8),  # measured -, 2.3 answered (of 44 lines)
    # The same for four more: many kinds of practice (NPs, podiatrists, FQHCs ...), near-topic
    # questions in the FAQ's own words, voice-to-text and stories, negatives and conditions.
    ("holdout6.jsonl", "in_scope", 95.5, 1.5),  # measured 98.5, 0.0
    ("holdout6.jsonl", "out_of_scope", 0.0, 11.3),  # measured -, 8.8 answered
    # The same for two more: plain questions about the money, and why/who complaints.
    ("holdout7.jsonl", "in_scope", 94.5, 2.6),  # measured 97.5, 1.2
    ("holdout7.jsonl", "out_of_scope", 0.0, 10.0),  # measured -, 0.0 answered (of 11 lines)
    # The same for eight more: forum posts, everyday questions, customers who avoid the FAQ's
    # words ("the code permit"), heavy typos, context-rich chat and 1-6 word messages.
    ("holdout8.jsonl", "in_scope", 94.1, 2.5),  # measured 97.1, 1.1
    ("holdout8.jsonl", "out_of_scope", 0.0, 4.1),  # measured -, 1.6 answered
    # The same for eight more: pasted e-mails, agents' notes of a call ("cust asks ..."),
    # billing jargon, thinking aloud, two questions at once, near-topic twins of every answer,
    # British and Indian English, and older owners who misname things ("the CTP licence").
    ("holdout9.jsonl", "in_scope", 92.5, 2.8),  # measured 95.5, 1.4
    ("holdout9.jsonl", "out_of_scope", 0.0, 8.5),  # measured -, 6.0 answered
    # The same for eight more: 1-7 word chat fragments, angry customers, English as a second
    # language, group practices counting their staff, voice-to-text ("see pee tee"), reactions
    # to the Optum letter or an invoice, rumours to confirm, and near-topic twins about HIPAA,
    # contracts, EHR features and AMA dues.
    ("holdout10.jsonl", "in_scope", 94.0, 2.3),  # measured 97.0, 0.9
    ("holdout10.jsonl", "out_of_scope", 0.0, 10.5),  # measured -, 8.0 answered
    # The same for eight more: what autocorrect makes of the names ("practice fashion"),
    # practices switching from another EHR, third parties asking for a practice, long
    # rambling tickets, every way of writing the numbers ("17 a head", "x4"), follow-ups
    # that lean on the chat ("and who sells it?"), questions wrapped in greetings and
    # thanks, and near-topic twins about PF's own invoice, HCPCS, the CPT app and more.
    ("holdout11.jsonl", "in_scope", 92.3, 2.7),  # measured 95.3, 1.3
    ("holdout11.jsonl", "out_of_scope", 0.0, 6.1),  # measured -, 3.6 answered
    # The same for eight more: every wording of the price, statements that leave the question
    # implied ("we never use CPT codes."), many kinds of practice, search-box keywords, formal
    # letters, customers who mix up the AMA, Optum, CMS and their insurer, mid-length tickets,
    # and near-topic twins ("is the licence fee tax-deductible?").
    ("holdout12.jsonl", "in_scope", 94.5, 2.5),  # measured 97.5, 1.1
    ("holdout12.jsonl", "out_of_scope", 0.0, 8.4),  # measured -, 5.9 answered
    # And eight more: vague price questions ("how much per year?"), reactions to the Optum
    # letter, English as a second language, agents' call notes, the fee arithmetic, pairs on
    # the border of two answers, near-topic money questions and long rambling emails.
    ("holdout13.jsonl", "in_scope", 91.6, 2.0),  # measured 94.6, 0.6
    ("holdout13.jsonl", "out_of_scope", 0.0, 4.0),  # measured -, 0.0 answered
    # Round 11, aimed at the weakest answers: must we have it, reactions to the fee, asking
    # for a person, how to get the licence, fees, who owns CPT, situations, misnamed parties.
    ("holdout14.jsonl", "in_scope", 89.9, 1.9),  # measured 92.9, 0.5
    ("holdout14.jsonl", "out_of_scope", 0.0, 5.9),  # measured -, 3.4 answered
    # Round 12: prices asked in context, where and how to get it, call notes, text messages,
    # quoted FAQ phrases, sceptics, the limits of the fee rule, follow-up messages.
    ("holdout15.jsonl", "in_scope", 92.3, 3.0),  # measured 95.3, 1.6
    ("holdout15.jsonl", "out_of_scope", 0.0, 14.8),  # measured -, 12.3 answered
    ("holdout16.jsonl", "in_scope", 92.9, 2.6),  # measured 95.9, 1.2
    ("holdout16.jsonl", "out_of_scope", 0.0, 5.2),  # measured -, 2.7 answered
    ("holdout17.jsonl", "in_scope", 90.6, 3.3),  # measured 93.6, 1.9
    ("holdout17.jsonl", "out_of_scope", 0.0, 8.7),  # measured -, 6.2 answered
]
CLINC_SMALL_TALK_MIN = 85.0  # measured 90.0% recognised (every 4th line; 92.1% on the whole file)
CLINC_ANSWERED_MAX = 1.0  # issue 2's target; measured 0.86% of everyday requests answered (0.75% on the whole file)


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(load_faq())


@pytest.fixture(scope="module")
def reports(matcher: Matcher) -> dict[str, EvalReport]:
    found = {}
    for name in sorted({name for name, *_ in FLOORS}):
        rows, problems = read_labelled(DATA / name)
        assert not problems, problems
        found[name] = evaluate(matcher, rows, name=name)
    return found


def test_labelled_sets_cover_every_faq_section(reports):
    kb = load_faq()
    rows, _ = read_labelled(DATA / "dev.jsonl")
    labelled = {label for row in rows for label in row.accept}
    assert set(kb.labels) <= labelled
    assert reports["dev.jsonl"].in_scope.lines >= 150


@pytest.mark.parametrize(("name", "group", "right_min", "wrong_max"), FLOORS, ids=[f"{f}-{g}" for f, g, *_ in FLOORS])
def test_quality_floor(reports, name, group, right_min, wrong_max):
    stats = reports[name].group(group)
    assert stats.lines > 0
    assert stats.share(stats.right) >= right_min, f"{name} {group}: right {stats.share(stats.right):.1f}%"
    assert stats.share(stats.wrong) <= wrong_max, f"{name} {group}: wrong {stats.share(stats.wrong):.1f}%"


@pytest.mark.skipif(not CLINC.exists(), reason=f"{CLINC} not present (it sits beside the repository in CI)")
def test_clinc150_everyday_requests_are_declined_and_small_talk_recognised(matcher):
    rows, problems = read_labelled(CLINC)
    assert not problems, problems[:3]
    report = evaluate(matcher, rows[::CLINC_EVERY], name="clinc150-dev sample")
    answered = report.out_of_scope.share(report.out_of_scope.wrong)
    recognised = report.small_talk.share(report.small_talk.right)
    assert answered <= CLINC_ANSWERED_MAX, f"{answered:.2f}% of everyday requests answered"
    assert recognised >= CLINC_SMALL_TALK_MIN, f"{recognised:.1f}% of small talk recognised"
