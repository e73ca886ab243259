"""The SQLite results store, the leaderboard files and submission verification, on real runs."""
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from matpo_gym.bench.leaderboard import LeaderboardBuildConfig, build_leaderboard, leaderboard_build
from matpo_gym.bench.run import RunConfig, run
from matpo_gym.bench.store import SCHEMA_VERSION, ResultsStore, StoreError
from matpo_gym.bench.verify import LeaderboardVerifyConfig, leaderboard_verify, verify_submission

FRAMES_RUNS = [(policy, noise) for policy in ("scripted", "random") for noise in (0.0, 0.2)]


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    """Four world-frames runs (scripted / random x noise 0 / 0.2, both modes) and one world-gaia run."""
    out = tmp_path_factory.mktemp("runs")
    for policy, noise in FRAMES_RUNS:
        run(RunConfig(policy=policy, noise=noise, limit=4, out=out, quiet=True, save_trajectories=False))
    run(RunConfig(env="world-gaia", mode="single", limit=4, out=out, quiet=True, save_trajectories=False))
    return out


def folders(runs_dir: Path) -> list[Path]:
    return sorted(p for p in runs_dir.iterdir() if p.is_dir())


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def markdown_tables(text: str) -> dict[str, list[dict[str, str]]]:
    """Env heading -> the rows of the table under it, as column -> cell."""
    tables, env, header = {}, None, None
    for line in text.splitlines():
        if line.startswith("## "):
            env, header = line[3:].strip(), None
            tables[env] = []
        elif line.startswith("|") and env is not None:
            cells = [c.strip() for c in line.strip("|").split("|")]
            if header is None:
                header = cells
            elif not set(line) <= set("|-: "):
                tables[env].append(dict(zip(header, cells)))
    return tables


# -- the store -----------------------------------------------------------------------------------


def test_import_run_stores_one_run_per_mode_with_its_records(runs_dir, tmp_path):
    folder = runs_dir / "world-frames-scripted-noise0.2-seed0"
    db = tmp_path / "results.sqlite"
    with ResultsStore(db) as store:
        ids = store.import_run(folder)
        assert ids == ["world-frames-scripted-noise0.2-seed0/matpo", "world-frames-scripted-noise0.2-seed0/single"]
        claimed = {s["mode"]: s for s in json.loads((folder / "summary.json").read_text())}
        meta = json.loads((folder / "run.json").read_text())
        for run_id, stored in zip(ids, store.runs()):
            assert stored.id == run_id
            assert (stored.env, stored.policy, stored.noise, stored.seed, stored.scorer) == (
                "world-frames", "scripted", 0.2, 0, "exact_match")
            assert stored.config == meta["config"] and stored.versions == meta["versions"]
            assert stored.started == meta["started"] and stored.imported_at
            assert stored.summary == claimed[stored.mode]
            on_disk = read_jsonl(folder / f"{stored.mode}.jsonl")
            assert store.records(run_id) == [{k: v for k, v in r.items() if k != "trajectories"} for r in on_disk]
    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    columns = {row[1] for row in raw.execute("PRAGMA table_info(records)")}
    assert {"run_id", "key", "task_id", "family", "score", "reward", "stop_reason", "prediction", "gold",
            "metrics", "record"} <= columns
    query = "SELECT key, score, gold FROM records WHERE run_id = ? ORDER BY seq"
    key, score, gold = raw.execute(query, (ids[1],)).fetchone()
    first = read_jsonl(folder / "single.jsonl")[0]
    assert (key, score, gold) == (first["key"], first["score"], first["gold"])
    raw.close()


def test_reimport_replaces_the_run_and_picks_up_resumed_questions(runs_dir, tmp_path):
    folder = tmp_path / "r"
    shutil.copytree(runs_dir / "world-frames-random-noise0-seed0", folder)
    with ResultsStore(tmp_path / "results.sqlite") as store:
        first = store.import_run(folder)
        assert store.import_run(folder) == first
        assert len(store.runs()) == 2 and len(store.records(first[1])) == 4
        run(RunConfig(policy="random", mode="single", limit=6, out=tmp_path, name="r", quiet=True))
        store.import_run(folder)
        assert len(store.runs()) == 2
        assert len(store.records(first[1])) == 6 and store.run(first[1]).summary["n"] == 6


def test_export_then_import_round_trips_and_persists(runs_dir, tmp_path):
    db = tmp_path / "results.sqlite"
    with ResultsStore(db) as store:
        [run_id] = store.import_run(runs_dir / "world-gaia-scripted-noise0-seed0")
        exported = store.export_jsonl(run_id, tmp_path / "export" / "single.jsonl")
        assert all("trajectories" not in r for r in read_jsonl(exported))
        original = store.run(run_id)
        copy_id = store.import_jsonl(exported, {**original.meta(), "name": "copy"})
        assert copy_id == "copy/single"
    with ResultsStore(db) as reopened:
        assert [r.id for r in reopened.runs()] == ["copy/single", run_id]
        assert reopened.records(copy_id) == reopened.records(run_id)
        copied = reopened.run(copy_id)
        assert copied.summary == original.summary
        assert (copied.env, copied.policy, copied.mode, copied.scorer) == ("world-gaia", "scripted", "single", "gaia")
        # The mode comes from the records when the metadata leaves it out.
        assert reopened.import_jsonl(exported, {"name": "bare", "env": "world-gaia", "policy": "x"}) == "bare/single"


def test_unreadable_inputs_give_clear_errors(runs_dir, tmp_path):
    good = runs_dir / "world-frames-scripted-noise0-seed0"
    store = ResultsStore(tmp_path / "results.sqlite")
    with pytest.raises(StoreError, match="No run folder"):
        store.import_run(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="not a folder"):
        store.import_run(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="no run.json"):
        store.import_run(tmp_path / "empty")
    broken = tmp_path / "broken"
    shutil.copytree(good, broken)
    (broken / "run.json").write_text("{not json")
    with pytest.raises(StoreError, match="Corrupt .*run.json"):
        store.import_run(broken)
    shutil.copy(good / "run.json", broken / "run.json")
    (broken / "single.jsonl").write_text((good / "single.jsonl").read_text() + '{"key": "cut sh')
    with pytest.raises(StoreError, match=r"single.jsonl, line 5"):
        store.import_run(broken)
    for mode in ("matpo", "single"):
        (broken / f"{mode}.jsonl").unlink()
    with pytest.raises(StoreError, match="no results file"):
        store.import_run(broken)
    with pytest.raises(StoreError, match="No run 'nope/single'"):
        store.records("nope/single")
    with pytest.raises(StoreError, match="Unknown run metadata key 'colour'"):
        store.import_jsonl(good / "single.jsonl", {"name": "x", "env": "e", "policy": "p", "colour": 1})
    assert store.runs() == []  # nothing half-imported
    store.close()

    (tmp_path / "garbage.sqlite").write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match="not a readable results store"):
        ResultsStore(tmp_path / "garbage.sqlite")
    other = sqlite3.connect(tmp_path / "other.sqlite")
    other.execute("CREATE TABLE t (x)")
    other.commit()
    other.close()
    with pytest.raises(StoreError, match="not a matpo-gym results store"):
        ResultsStore(tmp_path / "other.sqlite")
    with sqlite3.connect(tmp_path / "results.sqlite") as raw:
        raw.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError, match="schema version 99"):
        ResultsStore(tmp_path / "results.sqlite")


# -- the leaderboard -----------------------------------------------------------------------------


def test_leaderboard_markdown_has_one_sorted_table_per_env(runs_dir, tmp_path):
    with ResultsStore(tmp_path / "results.sqlite") as store:
        for folder in folders(runs_dir):
            store.import_run(folder)
        files = build_leaderboard(store, tmp_path / "board")
        stored = {(r.name, r.mode): r.summary for r in store.runs()}
    assert files.rows == 9 and files.html.is_file()
    tables = markdown_tables(files.markdown.read_text())
    assert list(tables) == ["world-frames", "world-gaia"]
    assert len(tables["world-frames"]) == 8 and len(tables["world-gaia"]) == 1
    for rows in tables.values():
        accuracies = [float(row["accuracy"].split(" [")[0]) for row in rows]
        assert accuracies == sorted(accuracies, reverse=True)
        for row in rows:
            summary = stored[(row["run"], row["mode"])]
            assert row["n"] == f"{summary['questions']}x{summary['samples']}" == "4x1" and summary["n"] == 4
            # the interval over questions the run itself reported, not one over episodes
            assert row["accuracy"] == f"{summary['accuracy']:.3f} [{summary['ci_low']:.3f}, {summary['ci_high']:.3f}]"
            assert row["answered"] == f"{summary['answered']:.2f}"
            assert row["mean turns"] == f"{summary['mean_turns']:.1f}"
    frames = tables["world-frames"]
    assert {(r["policy"], r["noise"], r["mode"]) for r in frames} == {
        (policy, f"{noise:g}", mode) for policy, noise in FRAMES_RUNS for mode in ("matpo", "single")
    }
    assert frames[0]["policy"] == "scripted" and frames[-1]["policy"] == "random"


def test_leaderboard_build_command_embeds_plots_and_stays_offline(runs_dir, tmp_path, capsys):
    out = tmp_path / "board"
    (out / "plots").mkdir(parents=True)
    (out / "plots" / "accuracy.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">'
        '<rect width="40" height="20" fill="teal"/></svg>'
    )
    (out / "plots" / "notes.txt").write_text("not a plot")
    config = LeaderboardBuildConfig(runs=str(runs_dir / "world-frames-*"), store=tmp_path / "s.sqlite", out=out)
    files = leaderboard_build(config)
    assert files.rows == 8 and [p.name for p in files.plots] == ["accuracy.svg"]
    assert "Imported 8 run mode(s) from 4 folder(s)" in capsys.readouterr().out
    page = files.html.read_text()
    assert page.count("<tbody>") == 1 and page.count("<tr>") == 8 + 1
    assert 'src="data:image/svg+xml;base64,' in page and "notes.txt" not in page
    assert "Content-Security-Policy" in page and "http://" not in page.replace('xmlns="http://www.w3.org', "")
    assert 'data-type="number"' in page and "data-sort=" in page
    # A second build with the same store adds nothing twice; a bad pattern is a clear error.
    assert leaderboard_build(config).rows == 8
    with pytest.raises(StoreError, match="No run folders"):
        leaderboard_build(LeaderboardBuildConfig(runs=[str(tmp_path / "none-*")], store=None, out=out))


# -- verification --------------------------------------------------------------------------------


def test_verify_accepts_genuine_runs(runs_dir, capsys):
    for folder in folders(runs_dir):
        report = verify_submission(folder)
        assert report.ok, report.format()
        assert report.records_checked == sum(len(read_jsonl(p)) for p in folder.glob("*.jsonl"))
    assert leaderboard_verify(LeaderboardVerifyConfig(folders(runs_dir)[0])) == 0
    assert capsys.readouterr().out.startswith("ACCEPTED")


def test_verify_rejects_an_edited_record_score(runs_dir, tmp_path, capsys):
    folder = tmp_path / "tampered"
    shutil.copytree(runs_dir / "world-frames-scripted-noise0-seed0", folder)
    records = read_jsonl(folder / "single.jsonl")
    wrong = next(r for r in records if r["score"] == 0.0)
    wrong["score"] = 1.0
    write_jsonl(folder / "single.jsonl", records)
    report = verify_submission(folder)
    assert not report.ok
    assert any(wrong["key"] in reason and "re-scored 0.0" in reason for reason in report.reasons), report.reasons
    assert leaderboard_verify(LeaderboardVerifyConfig(folder)) == 1
    assert capsys.readouterr().out.startswith("REJECTED")


@pytest.mark.parametrize("field, value, expected", [
    ("accuracy", 0.75, "claims accuracy 0.75"),
    ("n", 5, "claims n=5"),
])
def test_verify_rejects_an_edited_summary(runs_dir, tmp_path, field, value, expected):
    folder = tmp_path / "tampered"
    shutil.copytree(runs_dir / "world-frames-scripted-noise0.2-seed0", folder)
    summaries = json.loads((folder / "summary.json").read_text())
    summaries[0][field] = value
    (folder / "summary.json").write_text(json.dumps(summaries))
    report = verify_submission(folder)
    assert not report.ok and len(report.reasons) == 1 and expected in report.reasons[0]


def test_verify_rejects_unfinished_or_unreadable_submissions(runs_dir, tmp_path):
    folder = tmp_path / "partial"
    shutil.copytree(runs_dir / "world-gaia-scripted-noise0-seed0", folder)
    (folder / "summary.json").unlink()
    assert verify_submission(folder).reasons == ["no summary.json: the run did not finish"]
    (folder / "run.json").write_text("[]")
    assert "Corrupt" in verify_submission(folder).reasons[0]
    with pytest.raises(StoreError, match="No run folder"):
        verify_submission(tmp_path / "missing")


class AliasAnswerer:
    """Answers with an accepted alias rather than the gold spelling."""

    name = "alias-answerer"

    def generate(self, prompts):
        from matpo_gym.policies.base import Completion

        return [Completion("<answer>St Petersburg</answer>") for _ in prompts]


def test_answers_matching_an_alias_verify(tmp_path):
    from matpo_gym.bench.run import RunConfig, run
    from matpo_gym.bench.verify import verify_submission

    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"id": "q1", "question": "Which city did Peter the Great found?",
                                 "answer": "Saint Petersburg", "aliases": ["St Petersburg"]}) + "\n")
    env = tmp_path / "alias-env.toml"
    env.write_text(f'[source]\nkind = "jsonl"\npath = "{tasks}"\n[tools]\nnames = []\n')
    (tmp_path / "prompts").symlink_to(Path(__file__).parents[2] / "envs" / "prompts")
    run(RunConfig(env=str(env), mode="single", limit=None, out=tmp_path, name="alias", quiet=True),
        policy=AliasAnswerer())
    record = json.loads((tmp_path / "alias" / "single.jsonl").read_text().splitlines()[0])
    assert record["score"] == 1.0 and record["aliases"] == ["St Petersburg"]
    assert verify_submission(tmp_path / "alias").ok


# -- a run's plan, and names that collide ----------------------------------------------------------


def test_a_run_stopped_early_is_marked_incomplete_and_a_shorter_rerun_counts_its_own_plan(runs_dir, tmp_path):
    folder = tmp_path / "runs" / "cut"
    run(RunConfig(mode="single", limit=4, out=tmp_path / "runs", name="cut", quiet=True))
    records = read_jsonl(folder / "single.jsonl")
    write_jsonl(folder / "single.jsonl", records[:2])  # as if it was stopped after two questions
    (folder / "summary.json").unlink()
    with ResultsStore(tmp_path / "a.sqlite") as store:
        [run_id] = store.import_run(folder)
        summary = store.run(run_id).summary
        files = build_leaderboard(store, tmp_path / "board")
    assert summary["n"] == 4 and summary["outcomes"]["missing"] == 2  # the plan, not the two lines
    [row] = markdown_tables(files.markdown.read_text())["world-frames"]
    assert row["accuracy"].endswith("(incomplete: 2 of 4)")
    # a rerun with a smaller limit plays its own plan; the store and verify agree with its summary
    run(RunConfig(mode="single", limit=1, out=tmp_path / "runs", name="cut", quiet=True))
    claimed = json.loads((folder / "summary.json").read_text())[0]
    with ResultsStore(tmp_path / "b.sqlite") as store:
        [run_id] = store.import_run(folder)
        assert store.run(run_id).summary["n"] == claimed["n"] == 1
    assert verify_submission(folder).ok


def test_two_runs_of_one_name_from_different_folders_are_refused(runs_dir, tmp_path):
    twin = tmp_path / "elsewhere" / "world-gaia-scripted-noise0-seed0"
    shutil.copytree(runs_dir / "world-gaia-scripted-noise0-seed0", twin)
    with ResultsStore(tmp_path / "results.sqlite") as store:
        store.import_run(runs_dir / "world-gaia-scripted-noise0-seed0")
        with pytest.raises(StoreError, match="already stored, from"):
            store.import_run(twin)
        store.import_run(runs_dir / "world-gaia-scripted-noise0-seed0")  # the same folder again replaces it


def test_a_store_of_relative_paths_takes_the_same_folders_again_and_a_run_keeps_its_seed(tmp_path, monkeypatch):
    run(RunConfig(mode="single", limit=20, seed=1, out=tmp_path / "runs", name="s1", quiet=True))
    claimed = json.loads((tmp_path / "runs" / "s1" / "summary.json").read_text())[0]
    monkeypatch.chdir(tmp_path)
    with ResultsStore(tmp_path / "results.sqlite") as store:
        [run_id] = store.import_run(tmp_path / "runs" / "s1")
        with store._db:  # as a store written before sources were stored resolved holds them
            store._db.execute("UPDATE runs SET source = ?", ("runs/s1/single.jsonl",))
        [again] = store.import_run(Path("runs") / "s1")
        summary = store.run(run_id).summary
    assert again == run_id
    # the bootstrap draws with the run's own seed, so the stored interval is the run's
    assert (summary["ci_low"], summary["ci_high"]) == (claimed["ci_low"], claimed["ci_high"])


def test_a_pattern_skips_an_unfinished_run_and_a_named_one_is_refused(runs_dir, tmp_path, capsys):
    import shutil

    copies = tmp_path / "runs"
    for folder in folders(runs_dir)[:2]:
        shutil.copytree(folder, copies / folder.name)
    unfinished = copies / "zz-unfinished"
    unfinished.mkdir()
    shutil.copy(folders(runs_dir)[0] / "run.json", unfinished / "run.json")  # killed before its first episode
    files = leaderboard_build(LeaderboardBuildConfig(runs=str(copies / "*"), store=None, out=tmp_path / "board"))
    out = capsys.readouterr().out
    assert files.rows == 4 and "from 2 folder(s)" in out
    assert f"Skipped: {unfinished} has no results file" in out
    with pytest.raises(StoreError, match="has no results file"):
        leaderboard_build(LeaderboardBuildConfig(runs=[str(unfinished)], store=None, out=tmp_path / "board"))


def test_a_pattern_does_not_skip_a_run_name_collision(runs_dir, tmp_path):
    import shutil

    first, second = tmp_path / "a", tmp_path / "b"
    shutil.copytree(folders(runs_dir)[0], first / "x")
    shutil.copytree(folders(runs_dir)[1], second / "x")
    store = tmp_path / "s.sqlite"
    leaderboard_build(LeaderboardBuildConfig(runs=str(first / "*"), store=store, out=tmp_path / "board"))
    with pytest.raises(StoreError, match="already stored"):
        leaderboard_build(LeaderboardBuildConfig(runs=str(second / "*"), store=store, out=tmp_path / "board"))
