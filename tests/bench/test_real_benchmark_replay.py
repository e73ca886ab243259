"""`matpo-bench run --env frames` end to end, offline: FRAMES-schema rows the test writes, and web
tool results replayed from a recorded cache (what a run with a network would have stored)."""

import json
from pathlib import Path

import pytest

from matpo_gym.cli import main
from matpo_gym.envs.spec import load_env_spec
from matpo_gym.tools.cache import ToolCache
from matpo_gym.tools.web import tool_namespace

ROWS = [
    {"Unnamed: 0": 0, "Prompt": "What is the population of Veldmarsk?", "Answer": "48213",
     "reasoning_types": "Numerical reasoning", "wiki_links": "['https://en.wikipedia.org/wiki/Veldmarsk']"},
    {"Unnamed: 0": 1, "Prompt": "In what year was Orlen Dynamics founded?", "Answer": "1911",
     "reasoning_types": "Temporal reasoning", "wiki_links": "['https://en.wikipedia.org/wiki/Orlen_Dynamics']"},
]
PAGES = {
    "Veldmarsk": "Veldmarsk is a river town.\nPopulation: 48213\nFounded: 1204",
    "Orlen Dynamics": "Orlen Dynamics makes turbines.\nFounded: 1911\nEmployees: 5200",
}


@pytest.fixture
def frames_env(tmp_path: Path) -> Path:
    data = tmp_path / "frames.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    builtin = load_env_spec("frames")
    cache = tmp_path / "tools.sqlite"
    with ToolCache(cache) as store:
        for row in ROWS:
            title = next(name for name in PAGES if name in row["Prompt"])
            url = f"https://en.wikipedia.org/wiki/{title.replace(' ', '_')}"
            store.put("search", {"query": row["Prompt"]},
                      f"1. {title}\n   URL: {url}\n   {PAGES[title].splitlines()[0]}",
                      namespace=tool_namespace("search", builtin.tools))
            store.put("browse", {"url": url}, f"Title: {title}\nURL: {url}\n\n{PAGES[title]}",
                      namespace=tool_namespace("browse", builtin.tools))
    env_file = tmp_path / "frames-local.toml"
    original = Path(builtin.root, "frames.toml").read_text()
    env_file.write_text(original.replace('# path = "/path/to/local/copy"', f'path = "{data}"'))
    (tmp_path / "prompts").symlink_to(Path(builtin.root) / "prompts")
    return env_file


def test_frames_run_replays_offline_from_the_tool_cache(frames_env, tmp_path, capsys):
    cache = frames_env.parent / "tools.sqlite"
    code = main(["run", "--env", str(frames_env), "--policy", "scripted", "--limit", "2", "--out", str(tmp_path),
                 "--name", "replay", "--tool-cache", str(cache), "--cache-mode", "replay", "--quiet"])
    assert code == 0, capsys.readouterr().err
    for mode in ("matpo", "single"):
        records = [json.loads(line) for line in (tmp_path / "replay" / f"{mode}.jsonl").read_text().splitlines()]
        # FRAMES is evaluated with 2 samples per question (the env's [eval] repeats)
        assert sorted(r["prediction"] for r in records) == ["1911", "1911", "48213", "48213"]
        assert all(r["score"] == 1.0 and r["stats"]["tool_errors"] == 0 for r in records)
        assert records[0]["task_metadata"]["wiki_links"][0].startswith("https://en.wikipedia.org/wiki/")


def test_frames_without_data_says_how_to_get_it(capsys, tmp_path):
    assert main(["run", "--env", "frames", "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "google/frames-benchmark" in err and "path" in err
