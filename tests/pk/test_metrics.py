"""Exposure summaries on hand-made curves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ketaclinic.pk.metrics import DISSOCIATION_LOWER_EDGE_NG_ML, default_threshold, exposure
from ketaclinic.pk.regimen import Drug


def test_triangle_curve() -> None:
    # 0 → 200 → 100 → 0 at 0/10/20/30 min, threshold 100:
    # rising crosses at 10·100/200 = 5 min → 5 min above; 10–20 fully above (10 min); falls at 20 min.
    ex = exposure(np.array([0.0, 10, 20, 30]), np.array([[0.0, 200, 100, 0]]), 100.0)
    assert ex.cmax_ng_ml[0] == 200 and ex.tmax_min[0] == 10
    assert ex.time_above_min[0] == pytest.approx(15.0)
    assert ex.falls_below_min[0] == pytest.approx(20.0)
    assert bool(ex.reached[0]) and not bool(ex.above_at_end[0])


def test_two_excursions_count_both_and_report_the_last_fall() -> None:
    # 0,150,50,150,50 at 0..40: above 10·(50/150)=3.33 + 5 + 5 + 5 = 18.33 min; last fall 30 + 5 = 35 min.
    ex = exposure(np.arange(0.0, 41, 10), np.array([[0.0, 150, 50, 150, 50]]), 100.0)
    assert ex.time_above_min[0] == pytest.approx(10 / 3 + 15)
    assert ex.falls_below_min[0] == pytest.approx(35.0)


def test_never_reached_and_still_above_at_end() -> None:
    ex = exposure(np.array([0.0, 10, 20]), np.array([[0.0, 50, 20], [0.0, 200, 150]]), 100.0)
    assert not bool(ex.reached[0]) and ex.time_above_min[0] == 0.0 and math.isnan(ex.falls_below_min[0])
    assert bool(ex.above_at_end[1]) and math.isnan(ex.falls_below_min[1])
    assert ex.time_above_min[1] == pytest.approx(15.0)  # from 5 min (rising) to 20 min


def test_default_threshold_is_the_lower_edge_of_the_dissociative_range() -> None:
    assert DISSOCIATION_LOWER_EDGE_NG_ML == 100.0  # pk.md §3: dissociation at 100–250 ng/mL
    assert default_threshold(Drug.KETAMINE).confirmed
    assert not default_threshold(Drug.ESKETAMINE).confirmed  # racemic data applied to esketamine
