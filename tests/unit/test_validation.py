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


def test_did_you_mean_names_the_closest_known_names():
    assert v.did_you_mean("epsilon", ["eps", "epsilons", "seed"]) == "'epsilon' (did you mean 'epsilons' or 'eps'?)"
    assert v.did_you_mean("n_probes", ["n_probe", "k"]) == "'n_probes' (did you mean 'n_probe'?)"
    assert v.did_you_mean("zzz", ["eps", "seed"]) == "'zzz'"
    assert v.did_you_mean("x", []) == "'x'"
    assert v.did_you_mean("abcd", ["abce", "abcf", "abcg", "abch"]).count(" or ") == 2, "at most three"


def test_did_you_mean_is_the_only_place_that_writes_the_hint():
    """Every 'did you mean' of the library is written by :func:`did_you_mean`."""
    from pathlib import Path

    package = Path(v.__file__).resolve().parents[1]
    writers = sorted(str(p.relative_to(package)) for p in package.rglob("*.py")
                     if "get_close_matches" in p.read_text() or "did you mean {" in p.read_text())
    assert writers == ["core/validation.py"]
