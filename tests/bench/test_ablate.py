import doctest
import json
import math
import sys

import numpy as np
import pytest

from matpo_gym.bench import stats
from matpo_gym.bench.ablate import AblateConfig, ablate, question_scores
from matpo_gym.bench.stats import bootstrap_ci, mean_ci

# --- bootstrap_ci ---------------------------------------------------------------------------


def test_stats_docstring_examples():
    result = doctest.testmod(stats, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_all_equal_values_give_a_point_interval():
    assert bootstrap_ci([1, 1, 1, 1, 1]) == (1.0, 1.0)
    assert bootstrap_ci([0.0] * 7) == (0.0, 0.0)
    assert bootstrap_ci([1]) == (1.0, 1.0)


def test_no_values_give_nan():
    low, high = bootstrap_ci([])
    assert math.isnan(low) and math.isnan(high)
    ci = mean_ci([])
    assert ci.n == 0 and math.isnan(ci.mean)


def test_binomial_interval_contains_the_mean_with_a_sensible_width():
    values = np.array([1.0] * 30 + [0.0] * 70)
    low, high = bootstrap_ci(values, resamples=4000, seed=1)
    assert low < 0.3 < high
    # normal approximation: 2 * 1.96 * sqrt(0.3 * 0.7 / 100) = 0.18
    assert 0.14 < high - low < 0.22
    narrow = bootstrap_ci(values, resamples=4000, confidence=0.5, seed=1)
    assert low < narrow[0] < narrow[1] < high
    ci = mean_ci(values, resamples=4000, seed=1)
    assert (ci.n, ci.mean, ci.low, ci.high) == (100, 0.3, low, high)


def test_bootstrap_is_deterministic_under_a_seed():
    values = [0.5, 0.25, 1.0, 0.0, 0.75, 0.125, 0.375, 0.625, 0.875, 0.0625]
    assert bootstrap_ci(values, seed=7) == bootstrap_ci(values, seed=7)
    assert bootstrap_ci(values, seed=7) != bootstrap_ci(values, seed=8)  # the seed is used


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"values": [1, float("nan")]}, "finite"),
        ({"values": [1, 0], "resamples": 0}, "resamples"),
        ({"values": [1, 0], "confidence": 1.0}, "confidence"),
    ],
)
def test_bootstrap_rejects_bad_arguments(kwargs, message):
    values = kwargs.pop("values")
    with pytest.raises(ValueError, match=message):
        bootstrap_ci(values, **kwargs)


def test_samples_of_a_question_are_averaged_before_the_bootstrap():
    records = [
        {"key": "a/s0", "task_id": "a", "score": 1.0},
        {"key": "a/s1", "task_id": "a", "score": 0.0},
        {"key": "b/s0", "task_id": "b", "score": 1.0},
        {"key": "b/s1", "task_id": "b", "score": 1.0},
    ]
    assert sorted(question_scores(records)) == [0.5, 1.0]
    assert question_scores(records, keys={"b/s0"}) == [1.0]


# --- a real ablation --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ablation(tmp_path_factory):
    out = tmp_path_factory.mktemp("ablations")
    config = AblateConfig(limit=6, noise="0,0.5,1", out=out, name="a", quiet=True, bootstrap=500)
    return ablate(config)


def test_ablation_json_has_every_cell(ablation):
    data = json.loads((ablation.folder / "ablation.json").read_text())
    assert data["env"] == "world-frames" and data["policy"] == "scripted"
    assert data["rates"] == [0.0, 0.5, 1.0] and data["modes"] == ["matpo", "single"]
    cells = {(c["mode"], c["rate"]): c for c in data["cells"]}
    assert set(cells) == {(m, r) for m in ("matpo", "single") for r in (0.0, 0.5, 1.0)}
    for cell in cells.values():
        assert cell["n"] == 6 and cell["episodes"] == 6
        assert cell["ci_low"] <= cell["accuracy"] <= cell["ci_high"]
    for mode in ("matpo", "single"):
        # at rate 1 every tool call is disturbed; the scripted policy cannot recover its facts
        assert cells[(mode, 1.0)]["accuracy"] < cells[(mode, 0.0)]["accuracy"]
    for rate in ("0", "0.5", "1"):
        assert (ablation.folder / f"noise{rate}" / "matpo.jsonl").exists()


def test_ablation_plots_are_written(ablation):
    png = ablation.folder / "accuracy_vs_noise.png"
    svg = ablation.folder / "accuracy_vs_noise.svg"
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    text = svg.read_text()
    assert "<svg" in text and "world-frames" in text
    assert ablation.files["png"] == png and ablation.files["svg"] == svg


def test_ablation_markdown_has_one_row_per_rate(ablation, capsys):
    markdown = (ablation.folder / "ablation.md").read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0] == "| noise | matpo | single |"
    assert [row.split("|")[1].strip() for row in rows[1:]] == ["0", "0.5", "1"]
    assert all(row.count("(6)") == 2 for row in rows[1:])
    assert ablation.markdown_table() in markdown


def test_rerun_with_one_more_rate_only_runs_the_new_cell(tmp_path, capsys):
    config = AblateConfig(limit=4, noise="0,1", out=tmp_path, name="r", quiet=True, bootstrap=200)
    first = ablate(config)
    folder = tmp_path / "r"
    old = {p: p.read_bytes() for p in folder.glob("noise*/*.jsonl")}
    assert len(old) == 4

    config.noise = "0,0.5,1"
    second = ablate(config)
    assert {p: p.read_bytes() for p in old} == old
    cells = sorted(p.parent.name for p in folder.glob("noise*/*.jsonl"))
    assert cells == ["noise0"] * 2 + ["noise0.5"] * 2 + ["noise1"] * 2
    for mode in ("matpo", "single"):
        for rate in (0.0, 1.0):
            assert second.cell(mode, rate) == first.cell(mode, rate)
        assert second.cell(mode, 0.5).n == 4
    out = capsys.readouterr().out
    assert out.count("| noise | matpo | single |") == 2 and "| 0.5 |" in out


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"noise": "0,2"}, "outside \\[0, 1\\]"),
        ({"noise": "-0.1"}, "outside \\[0, 1\\]"),
        ({"noise": "nan"}, "outside \\[0, 1\\]"),
        ({"noise": "0,lots"}, "'lots' is not a number"),
        ({"noise": " , "}, "No noise rates"),
        ({"mode": "matpo,duo"}, "Unknown mode 'duo'"),
        ({"noise_kinds": "loud"}, "unknown noise kind 'loud'"),
        ({"samples": 0}, "samples must be a positive integer"),
        ({"limit": 0}, "limit must be"),
    ],
)
def test_bad_config_is_a_clear_error_before_anything_runs(overrides, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        ablate(AblateConfig(out=tmp_path / "out", quiet=True, **overrides))
    assert not (tmp_path / "out").exists()


def test_without_matplotlib_the_table_is_still_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails as if not installed
    result = ablate(AblateConfig(limit=2, noise="0", mode="single", out=tmp_path, name="p", quiet=True))
    assert set(result.files) == {"json", "md"}
    assert not (tmp_path / "p" / "accuracy_vs_noise.png").exists()
    assert "matpo-gym[plot]" in capsys.readouterr().out
