import json

import pytest

from matpo_gym.bench.ablate import AblateConfig, ablate
from matpo_gym.bench.run import RunConfig, run
from matpo_gym.cli import main, parse
from matpo_gym.config import ConfigError


def read_records(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def worker_task_messages(path):
    """The first user message of every worker trajectory in a results file."""
    return [
        next(m["content"] for m in t["messages"] if m["role"] == "user")
        for r in read_records(path)
        for t in r["trajectories"]
        if t["role"] == "worker"
    ]


@pytest.fixture(scope="module")
def switch_ablation(tmp_path_factory):
    out = tmp_path_factory.mktemp("vary")
    config = AblateConfig(
        limit=3,
        noise="0",
        mode="matpo",
        vary=("query_recap=on,off",),
        out=out,
        name="v",
        quiet=True,
        bootstrap=200,
    )
    return ablate(config)


def test_each_cell_is_a_run_with_its_overrides(switch_ablation):
    for value, recap in (("on", True), ("off", False)):
        folder = switch_ablation.folder / f"query_recap={value}" / "noise0"
        meta = json.loads((folder / "run.json").read_text())
        assert meta["config"]["set"] == [f"query_recap={value}"]
        assert meta["switches"]["overrides"] == [f"query_recap={value}"]
        assert meta["switches"]["values"]["query_recap"] is recap
        assert meta["env_spec"]["prompts"]["query_recap"] is recap
        messages = worker_task_messages(folder / "matpo.jsonl")
        assert messages and all(m.startswith("Your task:") != recap for m in messages)


def test_ablation_json_and_markdown_name_cells_by_their_settings(switch_ablation):
    data = json.loads((switch_ablation.folder / "ablation.json").read_text())
    assert data["vary"] == {"query_recap": ["on", "off"]} and data["rates"] == [0.0]
    cells = {c["settings"]["query_recap"]: c for c in data["cells"]}
    assert set(cells) == {"on", "off"}
    assert cells["off"]["name"] == "query_recap=off, noise=0, mode=matpo"
    assert cells["off"]["run"] == "query_recap=off/noise0" and cells["off"]["n"] == 3
    markdown = (switch_ablation.folder / "ablation.md").read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0] == "| query_recap | noise | matpo |"
    assert [row.split("|")[1].strip() for row in rows[1:]] == ["on", "off"]
    assert "and query_recap" in markdown
    assert switch_ablation.cell("matpo", 0.0, (("query_recap", "off"),)).n == 3
    with pytest.raises(KeyError, match="query_recap=maybe"):
        switch_ablation.cell("matpo", 0.0, (("query_recap", "maybe"),))


def test_switch_plot_is_written(switch_ablation):
    if "png" not in switch_ablation.files:
        pytest.skip("matplotlib is not installed")
    assert switch_ablation.files["png"].read_bytes().startswith(b"\x89PNG")
    assert "query_recap=off" in switch_ablation.files["svg"].read_text()


def test_two_axes_and_noise_give_the_cartesian_product(tmp_path):
    config = AblateConfig(
        limit=2,
        noise="0,1",
        mode="single",
        out=tmp_path,
        name="g",
        quiet=True,
        bootstrap=100,
        vary=("query_recap=on,off", "limits.single_turns=2,20"),
        set=("summary_chars=500",),
    )
    result = ablate(config)
    assert len(result.cells) == 2 * 2 * 2
    folders = sorted(
        p.parent.relative_to(tmp_path / "g").as_posix()
        for p in (tmp_path / "g").rglob("single.jsonl")
    )
    assert folders == [
        f"query_recap={q}+limits.single_turns={t}/noise{r}"
        for q in ("off", "on")
        for t in ("2", "20")
        for r in ("0", "1")
    ]
    meta = json.loads(
        (
            tmp_path / "g" / "query_recap=off+limits.single_turns=2" / "noise1" / "run.json"
        ).read_text()
    )
    assert meta["switches"]["overrides"] == [
        "summary_chars=500",
        "query_recap=off",
        "limits.single_turns=2",
    ]
    assert (
        meta["env_spec"]["limits"]["single_turns"] == 2
        and meta["env_spec"]["limits"]["summary_chars"] == 500
    )
    header = result.markdown_table().splitlines()[0]
    assert header == "| query_recap | limits.single_turns | noise | single |"
    data = json.loads((tmp_path / "g" / "ablation.json").read_text())
    assert data["overrides"] == ["summary_chars=500"]
    assert {
        (c["settings"]["query_recap"], c["settings"]["limits.single_turns"], c["rate"])
        for c in data["cells"]
    } == {(q, t, r) for q in ("on", "off") for t in ("2", "20") for r in (0.0, 1.0)}


@pytest.mark.parametrize(
    ("vary", "error", "message"),
    [
        (("query_recap",), ValueError, "expected NAME=v1,v2"),
        (("query_recap=",), ValueError, "expected NAME=v1,v2"),
        (("query_recap=on", "query_recap=off"), ValueError, "twice"),
        (("no_such_switch=1,2",), ConfigError, "Unknown switch"),
        (("query_recap=on,maybe",), ConfigError, "query_recap"),
    ],
)
def test_bad_vary_is_a_clear_error_before_anything_runs(vary, error, message, tmp_path):
    with pytest.raises(error, match=message):
        ablate(AblateConfig(out=tmp_path / "out", quiet=True, vary=vary))
    assert not (tmp_path / "out").exists()


def test_repeated_flags_accumulate_on_the_command_line():
    config = parse(
        [
            "ablate",
            "--vary",
            "query_recap=on,off",
            "--vary",
            "limits.worker_turns=2,5",
            "--set",
            "summary_chars=500",
        ]
    )
    assert config.vary == ("query_recap=on,off", "limits.worker_turns=2,5")
    assert config.set == ("summary_chars=500",)
    config = parse(["run", "--set", "query_recap=off", "--set", "limits.worker_turns=5"])
    assert config.set == ("query_recap=off", "limits.worker_turns=5") and config.samples is None


def test_run_with_overrides_gets_its_own_folder_and_records_them(tmp_path, capsys):
    assert (
        main(
            [
                "run",
                "--mode",
                "single",
                "--limit",
                "2",
                "--out",
                str(tmp_path),
                "--quiet",
                "--set",
                "limits.single_turns=3",
            ]
        )
        == 0
    )
    assert main(["run", "--mode", "single", "--limit", "2", "--out", str(tmp_path), "--quiet"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "world-frames-scripted-noise0-seed0",
        "world-frames-scripted-noise0-seed0-limits.single_turns=3",
    ]
    meta = json.loads((tmp_path / names[1] / "run.json").read_text())
    assert meta["switches"]["overrides"] == ["limits.single_turns=3"]
    assert meta["env_spec"]["limits"]["single_turns"] == 3
    assert "limits.single_turns=3" in capsys.readouterr().out


def test_a_named_run_folder_refuses_other_overrides(tmp_path):
    common = dict(mode="single", limit=1, out=tmp_path, name="n", quiet=True)
    run(RunConfig(**common, set=("query_recap=off",)))
    with pytest.raises(ValueError, match="played with overrides"):
        run(RunConfig(**common))
    run(RunConfig(**common, set=("query_recap=off",)))  # the same overrides resume


def test_bad_override_is_one_clear_cli_line(tmp_path, capsys):
    assert main(["run", "--set", "no_such_switch=1", "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("matpo-bench: error:") and "no_such_switch" in err


def test_varying_the_repeats_scores_each_cell_on_its_own_episodes(tmp_path):
    config = AblateConfig(
        limit=2,
        noise="0",
        mode="single",
        out=tmp_path,
        name="r",
        quiet=True,
        bootstrap=100,
        vary=("eval.repeats=1,3",),
    )
    result = ablate(config)
    one = result.cell("single", 0.0, (("eval.repeats", "1"),))
    three = result.cell("single", 0.0, (("eval.repeats", "3"),))
    assert (one.n, one.episodes) == (2, 2) and (three.n, three.episodes) == (2, 6)
    meta = json.loads((tmp_path / "r" / "eval.repeats=3" / "noise0" / "run.json").read_text())
    assert meta["samples"] == 3 and meta["env_spec"]["eval"]["repeats"] == 3
