"""Moving a session by hand: the phases' minimum spacing to the neighbouring sessions (protocols.py,
derived rule; at a phase boundary the shorter spacing applies), and never more of a phase's sessions in 7
days than its cadence gives (a first weekly session within a week of the last induction one is flagged)."""

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
    assert len(problems) == 3
    assert problems[0].startswith("session 2 would be 1 d 20 h after session 1")
    assert problems[1].startswith("session 2 would be 1 d 4 h before session 3")
    assert all("at least 2 days apart" in p for p in problems[:2])
    assert problems[2].startswith("session 2 would make 3 sessions in the 7 days Mon 2 Mar – Sun 8 Mar")
    assert "twice weekly) allows 2 in any 7 days" in problems[2]


def test_at_a_phase_boundary_the_shorter_spacing_applies() -> None:
    # Session 8 ends induction (>= 2 days), session 9 starts weekly maintenance (>= 6 days).
    assert spacing_problems(ESK, 9, MON + 7 * D, [(8, MON)]) == []
    spacing, crowded = spacing_problems(ESK, 9, MON + D, [(8, MON)])
    assert "at least 2 days apart" in spacing and "'Maintenance (weeks 5–8): weekly'" in spacing
    # Three days after the last induction dose keeps the spacing but not the weekly cadence.
    (crowded,) = spacing_problems(ESK, 9, MON + 3 * D, [(8, MON)])
    assert "2 sessions in the 7 days" in crowded and "(weekly) allows 1" in crowded
    # Within maintenance the weekly spacing holds.
    problem, _crowded = spacing_problems(ESK, 10, MON + 4 * D, [(9, MON)])
    assert "at least 6 days apart" in problem
