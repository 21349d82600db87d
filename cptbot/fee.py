"""The CPT licence fee from FAQ 6.1 and 6.2: exact integer dollars, no I/O.

The annual fee is users x the AMA's rate per user per year; the AMA assumes a number of
users per doctor (the doctor included), and a practice with fewer users may have its fee
adjusted to its real count.  Rate and users-per-doctor come from `FeeSettings` (the YAML),
never from code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import InputError
from .knowledge import FeeSettings

MAX_DOCTORS = 10_000
"""Largest practice (in doctors) the estimate handles; bigger ones are surely typos."""

MAX_USERS = 100_000
"""Largest number of users the estimate handles."""


@dataclass(frozen=True)
class Estimate:
    """One practice's estimated annual fee, and the AMA-default figure beside it (dollars)."""

    doctors: int
    users: int
    rate: int
    annual_fee: int
    default_users: int
    default_fee: int

    def to_dict(self) -> dict[str, int]:
        """The six figures as a JSON-ready mapping (the `estimate` of the jsonl protocol)."""
        return asdict(self)


def _whole(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"the number of {what} must be a whole number, got {value!r}")
    return value


def check_doctors(doctors: object) -> int:
    """The number of doctors if it is a whole number from 1 to MAX_DOCTORS; else InputError."""
    doctors = _whole(doctors, "doctors")
    if doctors < 1:
        raise InputError(f"{doctors:,} doctors is not possible: a practice has at least 1 doctor (allowed: 1 to {MAX_DOCTORS:,})")
    if doctors > MAX_DOCTORS:
        raise InputError(f"{doctors:,} doctors is more than this estimate handles (allowed: 1 to {MAX_DOCTORS:,})")
    return doctors


def check_users(users: object, *, doctors: int) -> int:
    """The number of users if it is whole, at least `doctors` and at most MAX_USERS; else InputError."""
    users = _whole(users, "users")
    if users < doctors:
        noun = "doctor" if doctors == 1 else "doctors"
        raise InputError(
            f"{users:,} users is fewer than the practice's {doctors:,} {noun}, and every doctor is a user "
            f"(allowed: {doctors:,} to {MAX_USERS:,})"
        )
    if users > MAX_USERS:
        raise InputError(f"{users:,} users is more than this estimate handles (allowed: {doctors:,} to {MAX_USERS:,})")
    return users


def default_users(settings: FeeSettings, doctors: int) -> int:
    """The users the AMA assumes for this many doctors (FAQ 6.2), capped at MAX_USERS."""
    return min(doctors * settings.users_per_doctor, MAX_USERS)


def estimate_fee(settings: FeeSettings, *, doctors: int, users: int | None = None) -> Estimate:
    """Estimate a practice's annual fee; `users=None` takes the AMA default for `doctors`.

    Raises `InputError` naming the value and the allowed range when a count is not usable.
    """
    doctors = check_doctors(doctors)
    assumed = default_users(settings, doctors)
    users = check_users(assumed if users is None else users, doctors=doctors)
    rate = settings.rate_per_user
    return Estimate(
        doctors=doctors,
        users=users,
        rate=rate,
        annual_fee=users * rate,
        default_users=assumed,
        default_fee=assumed * rate,
    )


def format_money(dollars: int) -> str:
    """Whole dollars with thousands separators: 15300 -> '$15,300' (negative: '-$5')."""
    if isinstance(dollars, bool) or not isinstance(dollars, int):
        raise InputError(f"an amount of money must be whole dollars, got {dollars!r}")
    sign = "-" if dollars < 0 else ""
    return f"{sign}${abs(dollars):,}"
