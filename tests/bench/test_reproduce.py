"""``matpo-bench reproduce`` end to end at smoke scale: every stage runs, the report is complete,
its numbers come from the run's own records, held-out questions are never trained on, and a
rerun resumes instead of retraining."""

from __future__ import annotations

import dataclasses
import io
import json
import math
from pathlib import Path

import pytest

pytest.importorskip("torch")

from matpo_gym.bench.reproduce import ReproduceConfig, reproduce, rl_config, write_envs  # noqa: E402
from matpo_gym.bench.reproduce_report import ROWS  # noqa: E402
from matpo_gym.config import ConfigError  # noqa: E402
from matpo_gym.envs.gym_env import MatpoEnv  # noqa: E402
from matpo_gym.envs.spec import load_env_spec  # noqa: E402
from matpo_gym.trainers.provenance import imitated_worlds, same_questions  # noqa: E402


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def repro(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReproduceConfig, Path]:
    root = tmp_path_factory.mktemp("reproduce")
    config = ReproduceConfig(preset="smoke", out=root / "out", report=root / "report", device="cpu", quiet=True)
    stream = io.StringIO()
    report = reproduce(config, stream=stream)
    (root / "stages.log").write_text(stream.getvalue())
    return config.resolved(), report


def test_report_is_complete(repro):
    config, report = repro
    text = report.read_text()
    for heading in ("Accuracy per family", "Accuracy vs tool noise", "Pressure: accuracy vs context budget",
                    "Held-out accuracy under sampling", "Where sampled episodes fail",
                    "What RL changed on held-out questions", "Training stability",
                    "Training budget"):
        assert heading in text
    for family in config.eval_families:
        assert f"{family}-like" in text
    assert "n=" in text and "[" in text  # every accuracy carries n and an interval
    assert (f"offline world(s) ({config.sft_steps} steps on {config.sft_difficulty} questions, then "
            f"{config.sft_tune_steps} on {config.difficulty} questions at lr {config.sft_tune_lr:g}), then") in text
    assert (f"SFT imitates the `{config.train_family}` family's train split of world 0; RL trains on the train "
            f"split of world {config.rl_world_seed}, which no demonstration comes from") in text
    page = (config.report / "index.html").read_text()
    assert "<table>" in page and "default-src 'none'" in page
    pytest.importorskip("matplotlib")
    for name in ("learning_curves.png", "accuracy_vs_noise.png", "accuracy_vs_context.png"):
        assert (config.report / name).stat().st_size > 1000
        assert f"]({name})" in text


def test_numbers_come_from_the_records(repro):
    config, _ = repro
    data = json.loads((config.report / "report.json").read_text())
    for method, mode in ROWS:
        seeds = (0,) if method == "sft" else config.seeds
        rates = config.noise_rates[:1] if method == "sft" else config.noise_rates  # the warm start: noise 0 only
        for family in config.eval_families:
            for rate in config.noise_rates[len(rates):]:
                assert data["noise"][f"{method}/{mode}"][family][f"{rate:g}"]["n"] == 0
            for rate in rates:
                scores = [r["score"] for s in seeds for r in records(
                    config.out / "eval" / f"{method}-{mode}-seed{s}-{family}-noise{rate:g}" / f"{mode}.jsonl")]
                assert len(scores) == config.eval_questions * len(seeds)
                cell = data["noise"][f"{method}/{mode}"][family][f"{rate:g}"]
                assert cell["n"] == len(scores)
                assert math.isclose(cell["accuracy"], sum(scores) / len(scores))
                assert cell["low"] <= cell["accuracy"] <= cell["high"]
            assert data["table"][f"{method}/{mode}"][family] == data["noise"][f"{method}/{mode}"][family]["0"]
        diagnosis = data["diagnosis"][f"{method}/{mode}"]
        first_cell = data["table"][f"{method}/{mode}"][config.eval_families[0]]
        assert diagnosis["episodes"] == first_cell["n"] and math.isclose(diagnosis["accuracy"], first_cell["accuracy"])
        assert diagnosis["answered"] >= diagnosis["accuracy"] - 1e-9  # a right answer is an answer
        # the sweep's point at the run's own budget is the main table's cell, not a second evaluation
        row, first = f"{method}/{mode}", config.eval_families[0]
        assert data["pressure"][row][str(config.context_tokens)] == data["table"][row][first]
        assert not (config.out / "eval" / f"{method}-{mode}-seed0-ctx{config.context_tokens}-noise0").exists()
        sampled_diagnosis, sampled_cell = data["diagnosis_sampled"][row], data["sampled"][row]
        # the warm start plays every seed's sampled questions, so RL's change pairs each with itself
        assert sampled_diagnosis["episodes"] == sampled_cell["n"] == config.eval_questions * config.eval_samples * len(
            set(config.seeds) | {0})
        assert math.isclose(sampled_diagnosis["accuracy"], sampled_cell["accuracy"])
    for algo in ("grpo", "matpo"):
        rewards = {s: [r["reward"] for r in records(config.out / f"{algo}-seed{s}" / "metrics.jsonl") if "reward" in r]
                   for s in config.seeds}
        assert all(len(v) == config.rl_steps for v in rewards.values())
        curve = data["curves"][algo]["reward"]
        assert [p["step"] for p in curve] == list(range(1, config.rl_steps + 1))
        assert math.isclose(curve[0]["mean"], sum(v[0] for v in rewards.values()) / len(rewards))
        held_out = data["curves"][algo]["eval_accuracy"]
        assert held_out[0]["step"] == 0 and held_out[0]["n"] == len(config.seeds)  # before any update
        assert data["curves"][algo]["eval_sampled_accuracy"][0]["step"] == 0
        # before / after RL: each run's first and last per-question scores, paired question by question
        logs = [[r for r in records(config.out / f"{algo}-seed{s}" / "metrics.jsonl")
                 if "eval_sampled_question_scores" in r] for s in config.seeds]
        sampled = data["held_out"][algo]["sampled"]
        before = [x for rows in logs for x in rows[0]["eval_sampled_question_scores"]]
        after = [x for rows in logs for x in rows[-1]["eval_sampled_question_scores"]]
        assert sampled["runs"] == len(config.seeds) and sampled["final_step"] == config.rl_steps
        # the sampled evaluation cell: eval_samples episodes per question, paired with the warm start
        mode = {"grpo": "single", "matpo": "matpo"}[algo]
        cell_path = "{}-{}-seed{}-sampled-noise0/{}.jsonl"
        played = {s: records(config.out / "eval" / cell_path.format(algo, mode, s, mode)) for s in config.seeds}
        warm = {s: records(config.out / "eval" / cell_path.format("sft", mode, s, mode)) for s in config.seeds}
        everything = [r for s in config.seeds for r in played[s]]
        assert len(everything) == config.eval_questions * config.eval_samples * len(config.seeds)
        pooled = data["sampled"][f"{algo}/{mode}"]
        assert pooled["n"] == len(everything)
        assert math.isclose(pooled["accuracy"], sum(r["score"] for r in everything) / len(everything))
        per_question = []  # seed by seed: the trained model and the warm start on that seed's questions
        for s in config.seeds:
            assert {r["task_id"] for r in warm[s]} == {r["task_id"] for r in played[s]}
            per_question += [sum(r["score"] for r in played[s] if r["task_id"] == q) / config.eval_samples
                             - sum(r["score"] for r in warm[s] if r["task_id"] == q) / config.eval_samples
                             for q in sorted({r["task_id"] for r in warm[s]})]
        change = data["sampled_change"][f"{algo}/{mode}"]
        assert change["n"] == config.eval_questions * len(config.seeds) and change["paired_seeds"] == len(config.seeds)
        assert math.isclose(change["mean"], sum(per_question) / len(per_question), abs_tol=1e-12)
        assert sampled["before"]["n"] == len(before) == config.curve_questions * len(config.seeds)
        assert math.isclose(sampled["before"]["mean"], sum(before) / len(before))
        assert math.isclose(sampled["change"]["mean"], (sum(after) - sum(before)) / len(before), abs_tol=1e-12)
    assert len(data["stability"]) == 2 * len(config.seeds)
    for row in data["stability"]:  # what each run had to learn from, averaged over its own steps
        steps = [r for r in records(config.out / f"{row['algo']}-seed{row['seed']}" / "metrics.jsonl") if "reward" in r]
        assert math.isclose(row["accuracy"], sum(r["accuracy"] for r in steps) / len(steps))
        assert math.isclose(row["signal"], sum(r["nonzero_advantage"] for r in steps) / len(steps))
    # evaluation time: every evaluation run's own clock (its records' largest), summed over the runs
    runs = sorted((config.out / "eval").glob("*/*.jsonl"))
    assert len(runs) > 2 * len(config.seeds)
    per_run = [max(r["seconds"] for r in records(path)) for path in runs]
    assert math.isclose(data["compute_seconds"]["evaluation"], sum(per_run))


def test_each_seed_is_evaluated_as_soon_as_it_is_trained(repro):
    """A run stopped while a later seed trains already holds both methods' main-table, sampled and
    context-sweep results for every earlier seed; the other noise rates come after all training."""
    config, _ = repro
    lines = (config.out.parent / "stages.log").read_text().splitlines()

    def first(prefix: str) -> int:
        return next(i for i, line in enumerate(lines) if line.startswith(prefix))

    tiers = 4
    for seed, later in zip(config.seeds, [*config.seeds[1:], None]):
        trained = first(f"[rl] matpo seed {seed}")
        for method, mode in (("grpo", "single"), ("matpo", "matpo")):
            for tier in range(1, tiers):
                evaluated = first(f"[eval] evaluate {method} ({mode}, seed {seed}) [tier {tier}/{tiers}")
                assert trained < evaluated
                if later is not None:
                    assert evaluated < first(f"[rl] grpo seed {later}")
    assert first(f"[eval] evaluate grpo (single, seed {config.seeds[0]}) [tier {tiers}/{tiers}") > first(
        f"[rl] matpo seed {config.seeds[-1]}")


def test_both_methods_start_from_the_second_sft_stage(repro):
    """With ``sft_tune_steps`` the warm start is a second SFT stage, on the run's own questions,
    trained from the first stage's end; every RL run records that it started there."""
    from matpo_gym.trainers.state import Checkpoints

    config, _ = repro

    def recorded(folder: str, steps: int) -> dict:
        return Checkpoints.state(config.out / folder / "checkpoints" / f"step-{steps}")["extra"]["config"]

    first = config.out / "sft" / "checkpoints" / f"step-{config.sft_steps}"
    second = config.out / "sft-tune" / "checkpoints" / f"step-{config.sft_tune_steps}"
    tune = recorded("sft-tune", config.sft_tune_steps)
    assert config.sft_tune_steps > 0 and tune["init_from"] == str(first)
    assert (tune["steps"], tune["lr"]) == (config.sft_tune_steps, config.sft_tune_lr)
    assert Path(tune["env"]) == write_envs(config).sft_tune
    assert Path(recorded("sft", config.sft_steps)["env"]) == write_envs(config).sft
    for algo in ("grpo", "matpo"):
        for seed in config.seeds:
            assert recorded(f"{algo}-seed{seed}", config.rl_steps)["init_from"] == str(second)
    lines = (config.out.parent / "stages.log").read_text().splitlines()
    assert lines[1] == f"[sft] SFT second stage ({config.sft_tune_steps} steps) -> {config.out / 'sft-tune'}"
    assert lines[0].startswith("[sft] SFT warm start") and lines[2].startswith("[eval] evaluate sft")


def test_both_methods_get_the_same_budget(repro):
    config, _ = repro
    data = json.loads((config.report / "report.json").read_text())
    assert data["budget"]["grpo"]["steps"] == data["budget"]["matpo"]["steps"] == config.rl_steps * len(config.seeds)
    for seed in config.seeds:
        episodes = {
            algo: [r["step"] for r in records(config.out / f"{algo}-seed{seed}" / "metrics.jsonl") if "reward" in r]
            for algo in ("grpo", "matpo")
        }
        assert episodes["grpo"] == episodes["matpo"]
    # both methods train with the same KL penalty to the warm start, the one the run records
    envs = write_envs(config)
    penalties = {rl_config(config, algo, 0, config.out / "sft", envs).kl_coef for algo in ("grpo", "matpo")}
    assert penalties == {config.rl_kl_coef} and config.rl_kl_coef > 0
    vllm = dataclasses.replace(config, rollout_engine="vllm")
    assert {rl_config(vllm, algo, 0, config.out / "sft", envs).rollout_engine for algo in ("grpo", "matpo")} == {"vllm"}


def test_evaluation_questions_are_never_trained_on(repro):
    config, _ = repro
    envs = write_envs(config)
    trained = {t.question for path in (envs.sft, envs.sft_tune, envs.train)
               for t in MatpoEnv(load_env_spec(str(path)), mode="single", split="train").tasks}
    evaluated = {r["question"] for path in (config.out / "eval").rglob("*.jsonl") for r in records(path)}
    assert evaluated and not evaluated & trained


def test_rl_trains_on_questions_the_warm_start_never_imitated(repro):
    """The SFT checkpoint's own record of its worlds, not the config, is what RL is checked against."""
    config, _ = repro
    envs = write_envs(config)
    sft = config.out / "sft-tune" / "checkpoints" / f"step-{config.sft_tune_steps}"
    imitated = imitated_worlds(sft)
    assert [w.seed for w in imitated] == [load_env_spec(str(envs.sft)).world.seed + i for i in range(config.sft_worlds)]
    rl_train = load_env_spec(str(rl_config(config, "matpo", 0, sft, envs).env))
    assert rl_train.world.seed == config.rl_world_seed
    assert not any(same_questions(rl_train.world, world) for world in imitated)
    sft_questions = {t.question for t in MatpoEnv(load_env_spec(str(envs.sft)), mode="single", split="train").tasks}
    rl_questions = {t.question for t in MatpoEnv(rl_train, mode="single", split="train").tasks}
    assert rl_questions and not rl_questions & sft_questions


def test_rerun_resumes_and_a_changed_config_is_refused(repro):
    config, report = repro
    checkpoint = config.out / "matpo-seed0" / "checkpoints" / f"step-{config.rl_steps}"
    before = checkpoint.stat().st_mtime_ns
    def figures() -> dict:
        return json.loads((config.report / "report.json").read_text())

    before_figures = figures()
    reproduce(ReproduceConfig(preset="smoke", out=config.out, report=config.report, device="cpu", quiet=True))
    assert checkpoint.stat().st_mtime_ns == before
    assert figures() == before_figures
    # how rollouts are generated is not what the reproduction is: another engine resumes the run
    reproduce(ReproduceConfig(preset="smoke", out=config.out, report=config.report, device="cpu", quiet=True,
                              rollout_engine="vllm"))
    assert checkpoint.stat().st_mtime_ns == before
    with pytest.raises(ConfigError, match="different settings"):
        reproduce(ReproduceConfig(preset="smoke", out=config.out, report=config.report, rl_steps=3, quiet=True))


def test_report_only_rebuilds_from_the_saved_settings(repro, tmp_path):
    config, _ = repro
    path = reproduce(ReproduceConfig(preset="cpu", out=config.out, report=tmp_path, report_only=True))
    assert "Preset `smoke`" in path.read_text()


def test_a_report_of_an_older_run_states_what_it_ran_with(repro, tmp_path):
    """Settings added after a run was made take the value that run used, not today's preset."""
    import shutil

    config, _ = repro
    old = tmp_path / "out"
    shutil.copytree(config.out, old)
    manifest = json.loads((old / "reproduce.json").read_text())
    for name in ("sft_batch_size", "sft_context_weight", "rl_world_seed", "sft_difficulty", "sft_tune_steps",
                 "sft_tune_lr"):
        del manifest[name]
    (old / "reproduce.json").write_text(json.dumps(manifest))
    reproduce(ReproduceConfig(out=old, report=tmp_path / "report", report_only=True))
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    text = (tmp_path / "report" / "reproduce.md").read_text()
    # before the second SFT stage, one stage imitated the run's own difficulty
    assert ("`matpo-bench reproduce --preset smoke --rl-world-seed 0 --sft-tune-steps 0 --sft-tune-lr 0.0005 "
            "--sft-context-weight 0`") in text
    # before rl_world_seed, RL trained on the warm start's own world: the report says so
    assert "RL trains on the train split of world 0, **questions the warm start imitated**" in text
    assert saved["config"].get("sft_context_weight") is None  # the record itself is left as it was


def test_the_report_names_the_machine_and_the_precision_it_computed_in(repro, tmp_path):
    """Timings depend on the CPU model and on bfloat16 matrix units; a record made before the
    precision was recorded still reads."""
    import shutil

    from matpo_gym.trainers.precision import cpu_info, resolve_precision

    config, report = repro
    (machine,) = json.loads((config.out / "machines.json").read_text())
    precision = resolve_precision("auto", "cpu").label
    assert machine["precision"] == precision and machine["device"].startswith(cpu_info().get("model name") or "CPU")
    assert f"Ran on {machine['device']} in {precision}." in report.read_text()
    old = tmp_path / "out"
    shutil.copytree(config.out, old)
    (old / "machines.json").write_text(json.dumps([{"device": "CPU, 2 cores (x86_64)", "torch": "2.13.0+cpu"}]))
    path = reproduce(ReproduceConfig(out=old, report=tmp_path / "report", report_only=True))
    assert "Ran on CPU, 2 cores (x86_64). Compute time" in path.read_text()


def test_a_run_resumed_in_another_precision_records_both(repro, tmp_path):
    """Precision is how a run computes, not what it is: a finished run resumed with
    --precision fp32 is accepted, and its record and report name each precision it ran in."""
    import shutil

    from matpo_gym.trainers.precision import resolve_precision

    config, _ = repro
    resumed = tmp_path / "out"
    shutil.copytree(config.out, resumed)
    path = reproduce(ReproduceConfig(preset="smoke", out=resumed, report=tmp_path / "report", device="cpu",
                                     precision="fp32", quiet=True), stream=io.StringIO())
    recorded = [m["precision"] for m in json.loads((resumed / "machines.json").read_text())]
    assert recorded == list(dict.fromkeys([resolve_precision("auto", "cpu").label, "float32"]))
    assert "in float32" in path.read_text()
    with pytest.raises(ConfigError, match="precision must be one of"):
        ReproduceConfig(preset="smoke", out=tmp_path / "x", precision="fp16").resolved()  # type: ignore[arg-type]


def _sampled_changes(out: Path, seeds, eval_samples: int) -> dict[str, dict[tuple[int, str], float]]:
    """Each trained method's per (seed, question) sampled change over its warm start, from the records."""
    cell = "{}-{}-seed{}-sampled-noise0/{}.jsonl"
    changes = {}
    for algo, mode in (("grpo", "single"), ("matpo", "matpo")):
        changes[algo] = {}
        for s in seeds:
            played = records(out / "eval" / cell.format(algo, mode, s, mode))
            warm = records(out / "eval" / cell.format("sft", mode, s, mode))
            for q in {r["task_id"] for r in played}:
                changes[algo][(s, q)] = (sum(r["score"] for r in played if r["task_id"] == q)
                                         - sum(r["score"] for r in warm if r["task_id"] == q)) / eval_samples
    return changes


def test_replicate_runs_are_pooled_and_other_settings_refused(repro, tmp_path):
    """--replicates pools RL's sampled change over runs of the same settings; MATPO - GRPO pairs
    each (seed, question) with itself; a run of other settings is no replicate."""
    import shutil

    config, _ = repro
    twin = tmp_path / "twin"
    shutil.copytree(config.out, twin)
    manifest = json.loads((twin / "reproduce.json").read_text())
    manifest["noise_rates"] = [0.0]  # another evaluation grid: still a replicate
    (twin / "reproduce.json").write_text(json.dumps(manifest))
    path = reproduce(ReproduceConfig(out=config.out, report=tmp_path / "report", report_only=True,
                                     replicates=(twin,)))
    rows = json.loads((tmp_path / "report" / "report.json").read_text())["replicates"]
    assert [r["run"] for r in rows] == [str(config.out), str(twin), "all 2 runs"]
    changes = _sampled_changes(config.out, config.seeds, config.eval_samples)
    difference = [changes["matpo"][k] - changes["grpo"][k] for k in changes["grpo"]]
    assert rows[0]["matpo - grpo"]["n"] == len(difference) == config.eval_questions * len(config.seeds)
    assert math.isclose(rows[0]["matpo - grpo"]["mean"], sum(difference) / len(difference), abs_tol=1e-12)
    for key in ("grpo", "matpo"):
        values = list(changes[key].values())
        assert math.isclose(rows[0][key]["mean"], sum(values) / len(values), abs_tol=1e-12)
        assert rows[2][key]["n"] == 2 * rows[0][key]["n"] and math.isclose(rows[2][key]["mean"], rows[0][key]["mean"])
    assert "all 2 runs" in path.read_text()

    manifest["rl_lr"] = 1.0
    (twin / "reproduce.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="not a replicate.*rl_lr"):
        reproduce(ReproduceConfig(out=config.out, report=tmp_path / "r2", report_only=True, replicates=(twin,)))
    with pytest.raises(ConfigError, match="names the run itself"):
        reproduce(ReproduceConfig(out=config.out, report=tmp_path / "r3", report_only=True,
                                  replicates=(config.out,)))


def test_a_warm_start_without_a_seeds_questions_pairs_the_other_seeds_and_says_so(repro, tmp_path):
    """A run made before the warm start played every seed's sampled questions pairs only seed 0's."""
    import shutil

    config, _ = repro
    old = tmp_path / "out"
    shutil.copytree(config.out, old)
    for mode in ("single", "matpo"):
        shutil.rmtree(old / "eval" / f"sft-{mode}-seed1-sampled-noise0")
    path = reproduce(ReproduceConfig(out=old, report=tmp_path / "report", report_only=True))
    change = json.loads((tmp_path / "report" / "report.json").read_text())["sampled_change"]["matpo/matpo"]
    assert change["paired_seeds"] == 1 and change["n"] == config.eval_questions
    assert f"(n={config.eval_questions}), 1 of {len(config.seeds)} seeds paired" in path.read_text()


def test_bad_settings_are_refused_with_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="group_size"):
        ReproduceConfig(preset="smoke", group_size=1).resolved()
    with pytest.raises(ConfigError, match="noise rate"):
        ReproduceConfig(preset="smoke", noise_rates=(0.0, 1.5)).resolved()
    for rates in ((0.4,), (0.1, 0.2), ()):  # the main table is read at noise 0: it must be played first
        with pytest.raises(ConfigError, match="the first noise rate must be 0"):
            ReproduceConfig(preset="smoke", noise_rates=rates).resolved()
    with pytest.raises(ConfigError, match="eval_samples must be 0"):
        ReproduceConfig(preset="smoke", eval_samples=-1).resolved()
    with pytest.raises(ConfigError, match="rl_kl_coef must be 0"):
        ReproduceConfig(preset="smoke", rl_kl_coef=-0.1).resolved()
    with pytest.raises(FileNotFoundError, match="matpo-bench reproduce"):
        reproduce(ReproduceConfig(out=tmp_path / "none", report=tmp_path / "r", report_only=True))


def test_a_generation_cap_shorter_than_a_demonstrated_turn_is_refused_before_training(tmp_path):
    """A warm start that imitates turns its rollouts cut off loses those episodes to the cap: a
    delegation cut before ``</tool_call>`` is an invalid action."""
    from matpo_gym.bench.reproduce import build_model, longest_demonstrated_turn

    config = ReproduceConfig(preset="smoke", out=tmp_path / "out", report=tmp_path / "r", device="cpu", quiet=True)
    resolved = config.resolved()
    longest = longest_demonstrated_turn(resolved, write_envs(resolved), build_model(resolved))
    assert 0 < longest <= resolved.max_new_tokens
    with pytest.raises(ConfigError, match=f"turns of {longest} tokens.*--max-new-tokens {longest} or more"):
        reproduce(dataclasses.replace(config, max_new_tokens=longest - 1), stream=io.StringIO())
    assert not (tmp_path / "out" / "sft").exists()
    assert not (tmp_path / "out" / "reproduce.json").exists()  # so the corrected command is no "other setting"


def test_a_run_trained_under_a_short_cap_resumes_with_it(repro, tmp_path):
    """A run made before the cap was checked keeps its records' cap: its rerun command still works."""
    import shutil

    from matpo_gym.bench.reproduce import build_model, longest_demonstrated_turn

    config, _ = repro
    old = tmp_path / "out"
    shutil.copytree(config.out, old)
    short = longest_demonstrated_turn(config, write_envs(config), build_model(config)) - 1
    manifest = json.loads((old / "reproduce.json").read_text())
    (old / "reproduce.json").write_text(json.dumps({**manifest, "max_new_tokens": short}))
    said = io.StringIO()
    reproduce(ReproduceConfig(preset="smoke", out=old, report=tmp_path / "report", device="cpu", quiet=True,
                              max_new_tokens=short), stream=said)
    assert "this run trained with that cap, so it resumes with it" in said.getvalue()
    assert (tmp_path / "report" / "reproduce.md").is_file()


def test_a_run_cut_short_says_what_it_is_missing(repro, tmp_path):
    import shutil

    config, report = repro
    text = report.read_text()
    assert "Incomplete run" not in text
    assert "Rerun with `matpo-bench reproduce --preset smoke`" in text
    assert f"a KL penalty of {config.rl_kl_coef:g} to the warm start" in text
    cut = tmp_path / "out"
    shutil.copytree(config.out, cut)
    shutil.rmtree(cut / "eval" / f"matpo-matpo-seed0-{config.eval_families[0]}-noise0")
    log = cut / "matpo-seed1" / "metrics.jsonl"
    log.write_text("".join(line + "\n" for line in log.read_text().splitlines()[:2]))  # the step-0 eval, step 1
    path = reproduce(ReproduceConfig(out=cut, report=tmp_path / "report", report_only=True))
    families, rates, sweep = len(config.eval_families), len(config.noise_rates), len(config.context_sweep) - 1
    sampled = 1 if config.eval_samples else 0
    # SFT: noise 0 only, and under each other seed its sampled cell alone
    others = len(set(config.seeds) - {0})
    planned = 2 * (families + sweep + sampled) + 2 * others * sampled + 2 * len(config.seeds) * (
        families * rates + sweep + sampled)
    assert f"evaluation cells {planned - 1}/{planned}" in path.read_text()
    assert "**Incomplete run**" in path.read_text()
    progress = json.loads((tmp_path / "report" / "report.json").read_text())["progress"]
    assert progress["sft steps"] == [config.sft_steps, config.sft_steps]
    assert progress["sft second stage steps"] == [config.sft_tune_steps, config.sft_tune_steps]
    assert progress["matpo steps"][0] < progress["matpo steps"][1]
    stability = json.loads((tmp_path / "report" / "report.json").read_text())["stability"]
    runs = {(r["algo"], r["seed"]): r for r in stability}
    assert runs[("matpo", 1)]["steps"] == 1 and runs[("matpo", 1)]["collapsed"] is None  # still training: not judged
    assert runs[("matpo", 0)]["collapsed"] is not None


def test_a_run_stopped_before_rl_gives_no_relative_gain_and_no_reason_it_did_not_earn(repro, tmp_path):
    """With no GRPO records the relative gain is n/a, not "GRPO scored 0" (a claim about a score
    that does not exist yet)."""
    import shutil

    config, _ = repro
    cut = tmp_path / "out"
    shutil.copytree(config.out, cut, ignore=shutil.ignore_patterns("grpo-seed*", "matpo-seed*", "eval"))
    path = reproduce(ReproduceConfig(out=cut, report=tmp_path / "report", report_only=True))
    gain_row = next(line for line in path.read_text().splitlines() if line.startswith("| MATPO vs GRPO, relative"))
    assert gain_row.split(" | ")[1:] == ["n/a"] * len(config.eval_families) + ["n/a |"]


def test_a_line_cut_short_by_a_crash_leaves_the_report_as_without_it(repro, tmp_path, caplog):
    """A crash mid-write leaves half a JSON line at the end of a records file; the report of that
    run still builds, from the complete records."""
    import shutil

    config, _ = repro
    cut = tmp_path / "out"
    shutil.copytree(config.out, cut)
    evaluation = next((cut / "eval" / f"grpo-single-seed0-{config.eval_families[0]}-noise0").glob("*.jsonl"))
    for path in (evaluation, cut / "grpo-seed0" / "metrics.jsonl"):
        with path.open("a") as handle:
            handle.write('{"key": "half-writ')
    reproduce(ReproduceConfig(out=cut, report=tmp_path / "report", report_only=True))
    assert f"{evaluation}: a line does not parse" in caplog.text  # said, not silent
    before = json.loads((config.report / "report.json").read_text())
    after = json.loads((tmp_path / "report" / "report.json").read_text())
    for name in ("table", "noise", "sampled", "curves", "stability", "progress"):
        assert after[name] == before[name], name


def test_a_cell_whose_last_record_was_cut_by_a_crash_is_not_complete(repro, tmp_path):
    import shutil

    from matpo_gym.bench.reproduce import Model, cell_complete, cell_records_file

    config, _ = repro
    model = Model("grpo", "single", config.seeds[0], config.out)
    family = config.eval_families[0]
    assert cell_complete(config, model, family, 0.0)
    cut = tmp_path / "out"
    shutil.copytree(config.out, cut)
    path = cell_records_file(cut, model, family, 0.0)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1] + [lines[-1][: len(lines[-1]) // 2]]) + "\n")
    assert not cell_complete(dataclasses.replace(config, out=cut), model, family, 0.0)
