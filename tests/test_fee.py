"""The fee arithmetic of FAQ 6.1 and 6.2: exact integer dollars, figures from the YAML."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cptbot.errors import InputError
from cptbot.fee import MAX_DOCTORS, MAX_USERS, Estimate, estimate_fee, format_money
from cptbot.knowledge import FeeSettings, load_faq

FEE = FeeSettings(rate_per_user=17, users_per_doctor=4, as_of=2021)


def test_fee_settings_come_from_the_faq_yaml():
    assert load_faq().fee == FEE


def test_estimate_uses_four_users_per_doctor_by_default():
    est = estimate_fee(FEE, doctors=3)
    assert est == Estimate(doctors=3, users=12, rate=17, annual_fee=204, default_users=12, default_fee=204)


def test_estimate_with_fewer_users_shows_both_figures():
    est = estimate_fee(FEE, doctors=5, users=12)
    assert (est.annual_fee, est.default_users, est.default_fee) == (204, 20, 340)


def test_rate_and_users_per_doctor_are_data_not_code():
    est = estimate_fee(FeeSettings(rate_per_user=20, users_per_doctor=3, as_of=2030), doctors=2)
    assert (est.users, est.annual_fee) == (6, 120)


def test_estimate_to_dict_has_exactly_the_protocol_keys():
    data = estimate_fee(FEE, doctors=2, users=5).to_dict()
    assert data == {"doctors": 2, "users": 5, "rate": 17, "annual_fee": 85, "default_users": 8, "default_fee": 136}
    assert json.loads(json.dumps(data)) == data


def test_largest_practice_is_exact():
    est = estimate_fee(FEE, doctors=MAX_DOCTORS, users=MAX_USERS)
    assert est.annual_fee == 1_700_000 and isinstance(est.annual_fee, int)


def test_hundred_thousand_doctors_is_rejected():
    assert MAX_DOCTORS < 100_000
    with pytest.raises(InputError, match=r"100,000 doctors .*allowed: 1 to 10,000"):
        estimate_fee(FEE, doctors=100_000)


@pytest.mark.parametrize(
    ("doctors", "users", "message"),
    [
        (0, None, r"0 doctors .*at least 1 doctor.*allowed: 1 to 10,000"),
        (-3, None, r"-3 doctors .*allowed: 1 to 10,000"),
        (MAX_DOCTORS + 1, None, r"10,001 doctors .*allowed: 1 to 10,000"),
        (3, 2, r"2 users is fewer than the practice's 3 doctors.*every doctor is a user.*allowed: 3 to 100,000"),
        (1, 0, r"0 users is fewer than the practice's 1 doctor\b"),
        (3, MAX_USERS + 1, r"100,001 users .*allowed: 3 to 100,000"),
        (2.5, None, r"whole number, got 2\.5"),
        (True, None, r"whole number, got True"),
        ("3", None, r"whole number, got '3'"),
        (3, 7.0, r"whole number, got 7\.0"),
    ],
)
def test_estimate_rejects_counts_outside_the_allowed_range(doctors, users, message):
    with pytest.raises(InputError, match=message):
        estimate_fee(FEE, doctors=doctors, users=users)


def test_estimate_settings_are_keyword_only():
    with pytest.raises(TypeError):
        estimate_fee(FEE, 3)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("dollars", "text"),
    [(0, "$0"), (17, "$17"), (204, "$204"), (15_300, "$15,300"), (1_700_000, "$1,700,000"), (-5, "-$5")],
)
def test_format_money_groups_thousands(dollars, text):
    assert format_money(dollars) == text


@pytest.mark.parametrize("bad", [1.5, "17", None, True])
def test_format_money_takes_whole_dollars_only(bad):
    with pytest.raises(InputError, match="whole dollars"):
        format_money(bad)


@settings(max_examples=200, deadline=None)
@given(
    doctors=st.integers(1, MAX_DOCTORS),
    extra=st.integers(0, MAX_USERS),
    rate=st.integers(1, 100_000),
    per=st.integers(1, 1_000),
)
def test_any_valid_practice_pays_users_times_rate(doctors, extra, rate, per):
    fee = FeeSettings(rate_per_user=rate, users_per_doctor=per, as_of=2021)
    users = min(doctors + extra, MAX_USERS)
    est = estimate_fee(fee, doctors=doctors, users=users)
    assert est.annual_fee == users * rate
    assert est.default_fee == est.default_users * rate
    assert est.users >= est.doctors >= 1
    default = estimate_fee(fee, doctors=doctors)
    assert default.users == default.default_users == min(doctors * per, MAX_USERS)
