import math

import pytest

from advinterp.core import validation as v


@pytest.mark.parametrize("value", [-0.1, 1.5, math.nan, math.inf, "0.3", None, True])
def test_number_out_of_range_names_parameter(value):
    with pytest.raises(ValueError, match=r"^eps=.* is not allowed: a number in \[0.0, 1.0\]"):
        v.check_number("eps", value, 0.0, 1.0)


def test_number_open_bounds():
    assert v.check_number("lam", 0.5, 0.0, None, lo_open=True) == 0.5
    with pytest.raises(ValueError, match="lam=0.0"):
        v.check_number("lam", 0.0, 0.0, None, lo_open=True)


@pytest.mark.parametrize("value", [1.0, True, "3", -1])
def test_int_rejects_non_integers_and_range(value):
    with pytest.raises(ValueError, match="k="):
        v.check_int("k", value, 0, 10)


def test_choice_lists_allowed():
    with pytest.raises(ValueError, match="dataset='nope' is not allowed: one of 'a', 'b'"):
        v.check_choice("dataset", "nope", ["a", "b"])
    with pytest.raises(ValueError):
        v.check_choice("dataset", ["a"], ["a", "b"])  # unhashable, wrong type


def test_list_checks_items_and_uniqueness():
    assert v.check_seeds("seeds", [0, 1, 2]) == [0, 1, 2]
    with pytest.raises(ValueError, match=r"seeds\[1\]"):
        v.check_seeds("seeds", [0, -1])
    with pytest.raises(ValueError, match="without repeated"):
        v.check_seeds("seeds", [0, 0])
    with pytest.raises(ValueError, match="seeds="):
        v.check_seeds("seeds", 3)
    with pytest.raises(ValueError, match="seeds="):
        v.check_seeds("seeds", [])
