import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from matpo_gym.bench.results import ResultsFile
from matpo_gym.bench.run import RunConfig, run
from matpo_gym.cli import main

HERE = Path(__file__).parent


def read_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_run_writes_records_and_summary(tmp_path, capsys):
    summaries = run(RunConfig(limit=6, out=tmp_path, name="r", quiet=True))
    assert [s.mode for s in summaries] == ["matpo", "single"]
    for mode in ("matpo", "single"):
        records = read_records(tmp_path / "r" / f"{mode}.jsonl")
        assert len(records) == 6 and len({r["key"] for r in records}) == 6
        assert all(r["mode"] == mode and r["trajectories"] for r in records)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary[0]["n"] == 6
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta["config"]["limit"] == 6 and "gymnasium" in meta["versions"]
    out = capsys.readouterr().out
    assert "accuracy" in out and "matpo" in out and "single" in out


def test_scripted_solves_easy_questions_and_random_does_not(tmp_path):
    [scripted] = run(RunConfig(mode="single", limit=30, out=tmp_path, name="s", quiet=True))
    [floor] = run(RunConfig(mode="single", policy="random", limit=30, out=tmp_path, name="f", quiet=True))
    assert scripted.accuracy >= 0.4
    assert floor.accuracy <= 0.1


def test_rerun_resumes_instead_of_repeating(tmp_path):
    config = RunConfig(mode="single", limit=4, out=tmp_path, name="r", quiet=True)
    run(config)
    path = tmp_path / "r" / "single.jsonl"
    first = read_records(path)
    config.limit = 8
    run(config)
    second = read_records(path)
    assert second[:4] == first
    assert len(second) == 8 and len({r["key"] for r in second}) == 8


def test_half_written_line_is_dropped_on_open(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"key": "a", "score": 1}\n{"key": "b", "sc')
    results = ResultsFile(path)
    assert results.done_keys == {"a"}
    assert path.read_text() == '{"key": "a", "score": 1}\n'


def test_killed_run_resumes_where_it_stopped(tmp_path):
    command = [
        sys.executable, "-m", "matpo_gym.cli", "run", "--mode", "single", "--limit", "12",
        "--batch-size", "2", "--policy", f"{HERE / 'slow_policy.py'}:SlowPolicy",
        "--out", str(tmp_path), "--name", "k", "--quiet",
    ]
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1])}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    path = tmp_path / "k" / "single.jsonl"
    def complete_records() -> list[dict]:
        """The lines written whole: the writer may be mid-line when the file is read, or killed."""
        text = path.read_text() if path.exists() else ""
        return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines() if line.strip()]

    deadline = time.time() + 60
    while time.time() < deadline and len(complete_records()) < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = complete_records()
    assert 2 <= len(done_before) < 12
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    records = read_records(path)
    assert records[: len(done_before)] == done_before
    assert len(records) == 12 and len({r["key"] for r in records}) == 12


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--env", "nope"], "Unknown env 'nope'"),
        (["run", "--policy", "nope"], "Unknown policy 'nope'"),
        (["run", "--policy", "no_module_here:X"], "Cannot import policy module"),
        (["run", "--mode", "duo"], "Unknown mode"),
        (["run", "--env", "frames"], "huggingface-cli download"),
        (["run", "--noise", "2"], "rate"),
        (["run", "--limit", "-1"], "limit must be a positive number of questions"),
        (["run", "--limit", "0"], "limit must be a positive number of questions"),
        (["run", "--env", "my-envs/frames-copy.toml"], "No such env file: my-envs/frames-copy.toml"),
    ],
)
def test_cli_errors_are_one_clear_line(args, message, capsys, tmp_path):
    assert main([*args, "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("matpo-bench: error:") and message in err


def test_recorded_tool_results_replay_exactly(tmp_path):
    cache = str(tmp_path / "tools.sqlite")
    common = dict(mode="single", limit=5, out=tmp_path, quiet=True, tool_cache=cache)
    run(RunConfig(name="rec", cache_mode="record", **common))
    run(RunConfig(name="rep", cache_mode="replay", **common))
    recorded = read_records(tmp_path / "rec" / "single.jsonl")
    replayed = read_records(tmp_path / "rep" / "single.jsonl")
    assert [r["trajectories"] for r in recorded] == [r["trajectories"] for r in replayed]
    assert all(r["stats"]["tool_errors"] == 0 for r in replayed)

    # another world's calls are not in the recording: each is a clear miss
    run(RunConfig(name="miss", env="world-gaia", mode="single", limit=2, out=tmp_path, quiet=True,
                  tool_cache=cache, cache_mode="replay"))
    missed = read_records(tmp_path / "miss" / "single.jsonl")
    assert all(r["stats"]["tool_errors"] > 0 for r in missed)
    assert "not in the replay cache" in json.dumps(missed[0]["trajectories"])


class LenientJudge:
    """A judge that accepts every answer, served over HTTP to check the judge wiring."""

    name = "lenient-judge"

    def generate(self, prompts):
        from matpo_gym.policies.base import Completion

        return [Completion("The answer is acceptable.\nVERDICT: CORRECT") for _ in prompts]


def test_llm_judge_scores_and_its_verdicts_are_recorded(tmp_path, monkeypatch):
    from matpo_gym.policies.serve import serve_policy

    with serve_policy(LenientJudge()) as url:
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        [summary] = run(RunConfig(mode="single", policy="random", limit=4, out=tmp_path, name="j",
                                  quiet=True, judge="openai", judge_kind="simpleqa"))
    records = read_records(tmp_path / "j" / "single.jsonl")
    assert summary.accuracy == 1.0
    for record in records:
        assert record["metrics"]["judge"] == 1.0 and "exact_match" in record["metrics"]
        assert record["judge"]["label"] == "CORRECT" and record["gold"] in record["judge"]["prompt"]


def test_a_model_policys_own_tokenizer_sizes_the_context_budget(tiny_model_dir, tmp_path):
    """The budgets count the tokens the model reads, as in training, not a word estimate."""
    from matpo_gym.envs.context import conversation_tokens
    from matpo_gym.envs.gym_env import MatpoEnv
    from matpo_gym.policies.hf import HFPolicy

    policy = HFPolicy(str(tiny_model_dir), max_new_tokens=4, device="cpu")
    from matpo_gym.bench.run import select_tasks

    env = MatpoEnv("world-tiny", mode="single")
    env.reset(options={"task": select_tasks(env, 1, 0)[0]})  # the question the run below plays
    opening = env.episode.trajectories[0].messages
    estimated = conversation_tokens(opening)
    exact = conversation_tokens(opening, policy.count_tokens)
    assert abs(exact - estimated) >= 6, "the tiny tokenizer and the word estimate disagree on this prompt"
    cap = (estimated + exact) // 2  # between the two counts: only one of them fits
    run(RunConfig(env="world-tiny", mode="single", limit=1, seed=0, out=tmp_path, name="r", quiet=True,
                  set=(f"single_total_tokens={cap}",)), policy)
    records = read_records(tmp_path / "r" / "single.jsonl")
    first_turns = [r["trajectories"][0]["turns"] for r in records]
    if exact > cap:
        assert {r["stop_reason"] for r in records} == {"context_limit"} and not any(first_turns)
    else:
        assert all(first_turns), "the model's tokens fit the cap, so the model plays"


class CountingAgent:
    """Answers at once, a new number every episode: x0, x1, x2, ..."""

    name = "counting"

    def __init__(self):
        self.count = 0

    def generate(self, prompts):
        from matpo_gym.policies.base import Completion

        out = [Completion(f"<answer>x{self.count + i}</answer>") for i in range(len(prompts))]
        self.count += len(prompts)
        return out


class EvenJudge:
    """Passes an answer whose number is even."""

    name = "even-judge"

    def generate(self, prompts):
        import re

        from matpo_gym.policies.base import Completion

        numbers = [int(re.findall(r"x(\d+)", p.messages[-1].content)[-1]) for p in prompts]
        return [Completion("VERDICT: " + ("CORRECT" if n % 2 == 0 else "INCORRECT")) for n in numbers]


def test_each_sample_of_a_question_stores_the_verdict_on_its_own_answer(tmp_path):
    # the samples of a question are judged in one batch: each record keeps the verdict on its answer
    config = RunConfig(mode="single", limit=2, samples=4, out=tmp_path, name="j", quiet=True,
                       judge=f"{Path(__file__)}:EvenJudge")  # loaded as a plugin file
    run(config, policy=CountingAgent())
    records = read_records(tmp_path / "j" / "single.jsonl")
    assert len(records) == 8 and {r["score"] for r in records} == {0.0, 1.0}
    for record in records:
        assert record["prediction"] in record["judge"]["prompt"]  # x0 ... x7: no one inside another
        assert record["judge"]["score"] == record["score"]
        assert (record["judge"]["label"] == "CORRECT") == (int(record["prediction"][1:]) % 2 == 0)


def test_a_folder_resumes_only_with_the_settings_its_records_were_played_with(tmp_path):
    run(RunConfig(mode="single", limit=2, noise=0.5, noise_kinds="shuffle", out=tmp_path, name="r", quiet=True))
    with pytest.raises(ValueError, match="noise_kinds='shuffle', not noise_kinds='error'"):
        run(RunConfig(mode="single", limit=2, noise=0.5, noise_kinds="error", out=tmp_path, name="r", quiet=True))
    # the default names keep other kinds and other classes of one module apart
    names = {RunConfig(noise=0.5, noise_kinds=kinds).run_name() for kinds in ("all", "error", "shuffle")}
    names |= {RunConfig(policy=f"matpo_gym.policies.scripted:{cls}").run_name()
              for cls in ("SearchReadPolicy", "RandomPolicy")}
    assert len(names) == 5
    assert RunConfig(noise=0.5, noise_kinds="error").run_name() == "world-frames-scripted-noise0.5-error-seed0"


def test_a_moved_folder_or_another_spelling_of_its_env_file_still_resumes(tmp_path, monkeypatch):
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "mine.toml").write_text('extends = "world-frames"\n')
    absolute = str(tmp_path / "envs" / "mine.toml")
    run(RunConfig(env=absolute, mode="single", limit=2, out=tmp_path / "runs", name="r", quiet=True))
    results = tmp_path / "runs" / "r" / "single.jsonl"
    first = read_records(results)[0]
    results.write_text(json.dumps(first) + "\n")  # stopped after one question
    monkeypatch.chdir(tmp_path)
    run(RunConfig(env="envs/mine.toml", mode="single", limit=2, out=Path("runs"), name="r", quiet=True))
    assert len(read_records(results)) == 2


def test_runs_that_play_the_same_episodes_resume_one_folder(tmp_path):
    # noise kinds without noise, a catalogue policy by name or by file, the env's own split spelled out
    common = dict(mode="single", limit=2, out=tmp_path, name="r", quiet=True)
    run(RunConfig(noise_kinds="error", **common))
    run(RunConfig(noise_kinds="all", split="test", policy="policies/scripted.toml", **common))
    assert len(read_records(tmp_path / "r" / "single.jsonl")) == 2


def test_an_edited_env_or_policy_file_does_not_resume_the_old_records(tmp_path):
    (tmp_path / "mine.toml").write_text('extends = "world-tiny"\n')
    (tmp_path / "agent.toml").write_text('type = "random"\n[args]\nanswer_rate = 0.3\n')
    common = dict(env=str(tmp_path / "mine.toml"), policy=str(tmp_path / "agent.toml"), mode="single", limit=2,
                  out=tmp_path / "runs", name="r", quiet=True)
    run(RunConfig(**common))
    (tmp_path / "mine.toml").write_text('extends = "world-tiny"\n[limits]\nsingle_turns = 1\n')
    with pytest.raises(ValueError, match=r"env limits\.single_turns changed since"):
        run(RunConfig(**common))
    (tmp_path / "mine.toml").write_text('extends = "world-tiny"\n')
    (tmp_path / "agent.toml").write_text('type = "random"\n[args]\nanswer_rate = 1.0\n')
    with pytest.raises(ValueError, match=r"policy args\.answer_rate changed since"):
        run(RunConfig(**common))
    (tmp_path / "agent.toml").write_text('type = "random"\n[args]\nanswer_rate = 0.3\n')
    run(RunConfig(**common))  # the files as they were: the folder resumes
    assert len(read_records(tmp_path / "runs" / "r" / "single.jsonl")) == 2


def test_a_record_older_than_an_env_field_still_resumes(tmp_path):
    run(RunConfig(mode="single", limit=1, out=tmp_path, name="r", quiet=True))
    meta_path = tmp_path / "r" / "run.json"
    meta = json.loads(meta_path.read_text())
    del meta["env_spec"]["limits"]["total_tokens"]  # a field this run.json's version did not have
    del meta["policy_settings"]
    meta_path.write_text(json.dumps(meta))
    run(RunConfig(mode="single", limit=2, out=tmp_path, name="r", quiet=True))
    assert len(read_records(tmp_path / "r" / "single.jsonl")) == 2


def test_an_env_that_cannot_be_built_is_named_and_claims_no_folder(tmp_path):
    (tmp_path / "badfam.toml").write_text('extends = "world-tiny"\n[source]\nfamily = "hotpot"\n')
    with pytest.raises(ValueError, match="env 'badfam': unknown question family 'hotpot'"):
        run(RunConfig(env=str(tmp_path / "badfam.toml"), limit=1, out=tmp_path / "runs", quiet=True))
    assert not (tmp_path / "runs").exists()


def test_results_without_a_readable_run_json_are_not_resumed(tmp_path):
    run(RunConfig(mode="single", limit=2, out=tmp_path, name="r", quiet=True))
    meta = tmp_path / "r" / "run.json"
    meta.unlink()
    with pytest.raises(ValueError, match="holds results but no run.json"):
        run(RunConfig(mode="single", limit=2, noise=0.4, out=tmp_path, name="r", quiet=True))
    meta.write_text('{"config": {')
    with pytest.raises(ValueError, match="its run.json is unreadable"):
        run(RunConfig(mode="single", limit=2, out=tmp_path, name="r", quiet=True))


def test_a_rerun_of_fewer_modes_keeps_the_other_modes_plan_and_summary(tmp_path):
    run(RunConfig(limit=3, out=tmp_path, name="r", quiet=True))
    single = tmp_path / "r" / "single.jsonl"
    single.write_text(single.read_text().splitlines()[0] + "\n")  # single stopped after one question
    [matpo, kept] = run(RunConfig(mode="matpo", limit=3, out=tmp_path, name="r", quiet=True))
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert len(meta["plan"]["single"]) == 3 and len(meta["plan"]["matpo"]) == 3
    assert (kept.mode, kept.n) == ("single", 3) and kept.accuracy <= 1 / 3  # the two unplayed count as 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert [s["mode"] for s in summary] == ["matpo", "single"]


def test_a_resumed_run_drops_the_earlier_summary_until_it_finishes(tmp_path):
    run(RunConfig(mode="single", limit=2, out=tmp_path, name="r", quiet=True))
    assert (tmp_path / "r" / "summary.json").is_file()

    class Broken:
        name = "scripted"

        def generate(self, prompts):
            raise RuntimeError("down")

    from matpo_gym.policies.base import PolicyFailure

    with pytest.raises(PolicyFailure):
        run(RunConfig(mode="single", limit=4, out=tmp_path, name="r", quiet=True), policy=Broken())
    assert not (tmp_path / "r" / "summary.json").exists()


def test_question_scores_come_in_task_order_whatever_order_the_file_holds():
    from matpo_gym.bench.results import question_changes, question_means

    records = [{"key": f"{t}/s0", "task_id": t, "score": s} for t, s in (("q2", 1.0), ("q10", 0.0), ("q1", 1.0))]
    assert list(question_means(records)) == ["q1", "q10", "q2"]
    assert list(question_means(records[::-1])) == ["q1", "q10", "q2"]
    assert list(question_changes(records[::-1], records)) == ["q1", "q10", "q2"]


def test_a_replay_of_a_tool_cache_that_does_not_exist_is_refused(tmp_path):
    with pytest.raises(ValueError, match="Nothing to replay: the tool cache .*typo.sqlite does not exist"):
        run(RunConfig(mode="single", limit=1, out=tmp_path / "runs", cache_mode="replay",
                      tool_cache=tmp_path / "typo.sqlite", quiet=True))
    assert not (tmp_path / "typo.sqlite").exists() and not (tmp_path / "runs").exists()


def test_what_a_policy_or_prompt_answers_is_compared_and_how_fast_it_runs_is_not(tmp_path):
    import shutil

    from matpo_gym.catalogue import builtin_dir

    (tmp_path / "prompts").mkdir()
    for name in ("compact-planner.md", "compact-worker.md", "compact-single.md", "worker_task.md"):
        source = builtin_dir("envs") / "prompts" / name
        if source.is_file():
            shutil.copy(source, tmp_path / "prompts" / name)
    (tmp_path / "mine.toml").write_text('extends = "world-tiny"\n[prompts]\nsingle = "prompts/compact-single.md"\n')
    (tmp_path / "agent.toml").write_text('type = "random"\n[args]\nanswer_rate = 0.3\nseed = 1\n')
    common = dict(env=str(tmp_path / "mine.toml"), policy=str(tmp_path / "agent.toml"), mode="single", limit=2,
                  out=tmp_path / "runs", name="r", quiet=True)
    run(RunConfig(**common))
    (tmp_path / "agent.toml").write_text('type = "random"\n[args]\nanswer_rate = 0.3\n')  # seed back to its default
    with pytest.raises(ValueError, match=r"policy args\.seed changed since"):
        run(RunConfig(**common))
    (tmp_path / "agent.toml").write_text('type = "random"\n[args]\nanswer_rate = 0.3\nseed = 1\n')
    prompt = tmp_path / "prompts" / "compact-single.md"
    prompt.write_text(prompt.read_text() + "\nAlways answer in French.\n")
    with pytest.raises(ValueError, match=r"env prompt single changed since"):
        run(RunConfig(**common))


def test_a_run_of_an_env_whose_prompt_paths_moved_with_the_package_resumes(tmp_path):
    run(RunConfig(env="world-tiny", mode="single", limit=1, out=tmp_path, name="r", quiet=True))
    meta_path = tmp_path / "r" / "run.json"
    meta = json.loads(meta_path.read_text())
    for which in ("planner", "worker", "single", "worker_task"):  # as another checkout spells them
        meta["env_spec"]["prompts"][which] = "/elsewhere/matpo_gym/catalogue/envs/" + meta["env_spec"]["prompts"][which]
    meta_path.write_text(json.dumps(meta))
    run(RunConfig(env="world-tiny", mode="single", limit=2, out=tmp_path, name="r", quiet=True))
    assert len(read_records(tmp_path / "r" / "single.jsonl")) == 2
