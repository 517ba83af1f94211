"""Moving a session by hand: the phases' minimum spacing to the neighbouring sessions (protocols.py,
derived rule; at a phase boundary the shorter spacing applies)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ketaclinic.clinical.protocol_library import PROTOCOLS
from ketaclinic.clinical.schedule import spacing_problems

ESK = PROTOCOLS["esk-trd-label"]  # induction: 8 sessions twice weekly (>= 2 days); then weekly (>= 6 days)
MON = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
D = timedelta(days=1)


def test_a_move_keeping_the_phase_spacing_raises_nothing() -> None:
    others = [(1, MON), (3, MON + 7 * D)]
    assert spacing_problems(ESK, 2, MON + 3 * D, others) == []
    assert spacing_problems(ESK, 2, MON + 2 * D, others) == []  # exactly two days is allowed


def test_too_close_to_the_session_before_and_after_is_named_with_the_rule() -> None:
    others = [(1, MON), (3, MON + 3 * D)]
    problems = spacing_problems(ESK, 2, MON + D + 20 * timedelta(hours=1), others)
    assert len(problems) == 2
    assert problems[0].startswith("session 2 would be 1 d 20 h after session 1")
    assert problems[1].startswith("session 2 would be 1 d 4 h before session 3")
    assert all("at least 2 days apart" in p for p in problems)


def test_at_a_phase_boundary_the_shorter_spacing_applies() -> None:
    # Session 8 ends induction (>= 2 days), session 9 starts weekly maintenance (>= 6 days).
    assert spacing_problems(ESK, 9, MON + 3 * D, [(8, MON)]) == []
    (problem,) = spacing_problems(ESK, 9, MON + D, [(8, MON)])
    assert "at least 2 days apart" in problem and "'Maintenance (weeks 5–8): weekly'" in problem
    # Within maintenance the weekly spacing holds.
    (problem,) = spacing_problems(ESK, 10, MON + 4 * D, [(9, MON)])
    assert "at least 6 days apart" in problem
