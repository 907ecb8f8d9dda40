"""``python -m advinterp.chapter``: one chapter of a tier, passed only the parameters it declares."""

import pytest
import yaml

from advinterp.chapter import chapter_params, chapter_stem, main
from advinterp.core.params import key_values
from advinterp.sweeps.spec import notebook_parameters
from tests.chapter_tools import REPO


def test_a_chapter_is_named_by_its_number_or_its_stem():
    assert chapter_stem("4") == chapter_stem("04") == chapter_stem("04-consistent-loss") == "04-consistent-loss"
    with pytest.raises(ValueError, match=r"chapter='42' is not allowed: .*04-consistent-loss"):
        chapter_stem("42")


@pytest.mark.parametrize("config", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_a_chapter_gets_only_what_it_declares_and_all_the_config_gives_it(config):
    given = yaml.safe_load(config.read_text()) or {}
    for stem in ("01-adversarial-examples", "06-error-detection"):
        declared = notebook_parameters(stem)
        params = chapter_params(stem, config, {"seed": 3} if "seed" in declared else {})
        assert set(params) <= declared
        assert {k for k in given if k in declared} <= set(params)


def test_a_mistyped_override_stops_before_anything_runs(capsys):
    with pytest.raises(ValueError, match=r"did you mean 'eps'"):
        chapter_params("01-adversarial-examples", None, {"epss": 0.2})
    assert main(["1", "--set", "epss=0.2"]) == 2
    assert "epss" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"--set='seed' is not allowed"):
        key_values(["seed"])
    assert key_values(["seeds=[0, 1]", "data_root=/x"]) == {"seeds": [0, 1], "data_root": "/x"}


def test_a_config_that_is_not_a_mapping_is_named(tmp_path):
    missing, listed = tmp_path / "absent.yaml", tmp_path / "list.yaml"
    listed.write_text("- eps\n- 0.3\n")
    with pytest.raises(ValueError, match=r"config='.*absent.yaml' is not allowed: a YAML parameter file"):
        chapter_params("01-adversarial-examples", missing, {})
    with pytest.raises(ValueError, match=r"config='.*list.yaml' is not allowed: a YAML mapping"):
        chapter_params("01-adversarial-examples", listed, {})
