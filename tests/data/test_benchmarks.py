"""The real-benchmark loaders on small made-up fixtures in each benchmark's schema.

No benchmark rows are used: every question, answer and id below is invented for these tests.
"""

import dataclasses
import doctest
import json
import uuid

import pytest

datasets = pytest.importorskip("datasets")
pd = pytest.importorskip("pandas")

from matpo_gym.data import benchmarks, frames, gaia, webwalkerqa
from matpo_gym.data.benchmarks import DatasetUnavailable, data_files
from matpo_gym.data.frames import load_frames, parse_links
from matpo_gym.data.gaia import GaiaCoverageWarning, gaia_text_ids, load_gaia
from matpo_gym.data.webwalkerqa import load_webwalkerqa
from matpo_gym.envs.sources import load_source
from matpo_gym.envs.spec import load_env_spec

WIKI = "https://en.wikipedia.org/wiki/"

FRAMES_ROWS = [
    {
        "Prompt": "Which river runs past the town of Veldmar, and when was its first bridge built?",
        "Answer": "The Ostra; 1873",
        "reasoning_types": "Temporal reasoning | Multiple constraints",
        "wiki_links": f"['{WIKI}Veldmar', '{WIKI}Ostra_River']",
        "wikipedia_link_10": f"{WIKI}Tenth_link",
        "wikipedia_link_1": f"{WIKI}Veldmar",
        "wikipedia_link_2": f"{WIKI}Ostra_River",
        "wikipedia_link_11+": f"['{WIKI}Extra_one', '{WIKI}Extra_two']",
    },
    {
        "Prompt": "How many years passed between the founding of Krelvo Industries and its first merger?",
        "Answer": "42",
        "reasoning_types": "Numerical reasoning",
        "wiki_links": f"['{WIKI}Krelvo_Industries']",
        "wikipedia_link_10": None,
        "wikipedia_link_1": f"{WIKI}Krelvo_Industries",
        "wikipedia_link_2": None,
        "wikipedia_link_11+": None,
    },
    {
        "Prompt": "Who designed the Tamsin lighthouse?",
        "Answer": "Orrel Vance",
        "reasoning_types": " Tabular reasoning|Post processing ",
        "wiki_links": f"['{WIKI}Tamsin_lighthouse', '{WIKI}Orrel_Va",  # cut off: malformed
        "wikipedia_link_10": None,
        "wikipedia_link_1": f"{WIKI}Tamsin_lighthouse",
        "wikipedia_link_2": None,
        "wikipedia_link_11+": None,
    },
]

WEBWALKER_INFO = [
    {
        "domain": "conference",
        "type": "single_source",
        "difficulty_level": "easy",
        "lang": "en",
        "source_website": ["https://conf.example.org/dates/"],
        "golden_path": ["root->dates"],
    },
    {
        "domain": "organization",
        "type": "multi_source",
        "difficulty_level": "hard",
        "lang": "zh",
        "source_website": ["https://org.example.cn/a/", "https://org.example.cn/b/"],
        "golden_path": ["root->about->a", "root->news->b"],
    },
]

WEBWALKER_ROWS = [
    {
        "question": "When is the paper deadline of the Example Conference 2031?",
        "answer": "March 3, 2031",
        "root_url": "https://conf.example.org/",
        "info": WEBWALKER_INFO[0],
    },
    {
        "question": "Which two labs did the Example Organisation open in 2030?",
        "answer": "The Harbour Lab and the Ridge Lab",
        "root_url": "https://org.example.cn/",
        "info": WEBWALKER_INFO[1],
    },
]

FIXTURE_IDS = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"matpo-gym-fixture-{i}")) for i in range(103)]


def gaia_rows():
    """Four made-up GAIA rows: three whose ids are on the fixture list, one that is not."""
    ids = [FIXTURE_IDS[17], "not-on-the-list", FIXTURE_IDS[0], FIXTURE_IDS[5]]
    return [
        {
            "task_id": task_id,
            "Question": f"Made-up GAIA question number {n}?",
            "Level": n % 3 + 1,
            "Final answer": f"answer {n}",
            "file_name": "sheet.xlsx" if task_id == "not-on-the-list" else "",
            "Annotator Metadata": {"Steps": f"1. step for {n}", "Number of steps": "1"},
        }
        for n, task_id in enumerate(ids)
    ]


# -- helpers ---------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def private_datasets_cache(tmp_path_factory, monkeypatch):
    """Keep the arrow files ``datasets`` writes for local files out of the user's cache."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path_factory.getbasetemp() / "hf-datasets"))


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_frame(path, rows, **options):
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, sep="\t" if path.suffix == ".tsv" else ",", index=options.pop("index", False), **options)
    return path


def stringified_info(rows):
    return [{**row, "info": json.dumps(row["info"])} for row in rows]


def ids_file(tmp_path, ids=FIXTURE_IDS):
    path = tmp_path / "gaia_ids.txt"
    path.write_text("# made-up ids for tests\n" + "\n".join(ids) + "\n", encoding="utf-8")
    return path


# -- FRAMES ----------------------------------------------------------------------------------------


def test_frames_parquet_maps_questions_answers_and_metadata(tmp_path):
    tasks = load_frames(path=write_frame(tmp_path / "frames.parquet", FRAMES_ROWS))
    assert [t.id for t in tasks] == ["0", "1", "2"]  # no index column: the row number
    first = tasks[0]
    assert first.question.startswith("Which river") and first.answer == "The Ostra; 1873"
    assert first.family == "frames" and first.root_url is None
    assert first.metadata["reasoning_types"] == ["Temporal reasoning", "Multiple constraints"]
    assert first.metadata["wiki_links"] == [f"{WIKI}Veldmar", f"{WIKI}Ostra_River"]
    # numeric column order (1, 2, 10, 11+), whatever the file's order; a list cell is expanded
    assert first.metadata["wikipedia_links"] == [
        f"{WIKI}Veldmar", f"{WIKI}Ostra_River", f"{WIKI}Tenth_link", f"{WIKI}Extra_one", f"{WIKI}Extra_two",
    ]
    assert tasks[1].metadata["wikipedia_links"] == [f"{WIKI}Krelvo_Industries"]  # empty cells skipped
    assert tasks[2].metadata["reasoning_types"] == ["Tabular reasoning", "Post processing"]


def test_frames_malformed_wiki_links_keep_the_urls_found():
    tasks_links = parse_links(FRAMES_ROWS[2]["wiki_links"])
    assert tasks_links == [f"{WIKI}Tamsin_lighthouse", f"{WIKI}Orrel_Va"]
    assert parse_links("no links here [") == []
    assert parse_links(None) == [] and parse_links(float("nan")) == []
    assert parse_links(f"'{WIKI}Single'") == [f"{WIKI}Single"]


def test_frames_csv_with_an_index_column_uses_it_as_id(tmp_path):
    frame = pd.DataFrame(FRAMES_ROWS, index=[100, 101, 102])
    path = tmp_path / "frames.csv"
    frame.to_csv(path)  # pandas writes the index as an unnamed first column: "Unnamed: 0"
    tasks = load_frames(path=path)
    assert [t.id for t in tasks] == ["100", "101", "102"]
    assert tasks[1].answer == "42"
    assert tasks[2].metadata["wiki_links"] == [f"{WIKI}Tamsin_lighthouse", f"{WIKI}Orrel_Va"]


def test_frames_jsonl_with_an_index_column(tmp_path):
    rows = [{"index": 7 + n, **row} for n, row in enumerate(FRAMES_ROWS)]
    tasks = load_frames(path=write_jsonl(tmp_path / "frames.jsonl", rows))
    assert [t.id for t in tasks] == ["7", "8", "9"]


def test_frames_numeric_answers_in_csv_stay_whole_numbers(tmp_path):
    rows = [{"Prompt": f"Q{n}?", "Answer": a} for n, a in enumerate([1873, 42])]
    tasks = load_frames(path=write_frame(tmp_path / "numbers.csv", rows))
    assert [t.answer for t in tasks] == ["1873", "42"]
    assert tasks[0].metadata["wiki_links"] == [] and tasks[0].metadata["reasoning_types"] == []


def test_answers_that_read_like_missing_values_stay_answers(tmp_path):
    rows = [{"Prompt": f"Q{n}?", "Answer": a} for n, a in enumerate(["None", "NA", "null", "N/A"])]
    for suffix in (".csv", ".tsv"):
        tasks = load_frames(path=write_frame(tmp_path / f"answers{suffix}", rows))
        assert [t.answer for t in tasks] == ["None", "NA", "null", "N/A"], suffix


def test_task_file_aliases_are_whole_strings_and_musique_aliases_count(tmp_path):
    from matpo_gym.data.benchmarks import DatasetUnavailable
    from matpo_gym.data.jsonl import load_tasks_jsonl

    path = write_jsonl(tmp_path / "tasks.jsonl", [
        {"question": "Capital?", "answer": "Paris", "aliases": "Paris, France"},
        {"id": "2hop__1", "question": "City?", "answer": "NYC", "answer_aliases": ["New York City"]},
    ])
    first, second = load_tasks_jsonl(path)
    assert first.aliases == ("Paris, France",) and second.aliases == ("New York City",)
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"question": "Q?", "answer": ["a", "b"]}])
    with pytest.raises(DatasetUnavailable, match="'answer' must be a string or a number"):
        load_tasks_jsonl(bad)


def test_frames_hub_snapshot_folder_reads_test_tsv_only(tmp_path):
    snapshot = tmp_path / "frames-benchmark"
    write_frame(snapshot / "test.tsv", FRAMES_ROWS)
    write_frame(snapshot / "test_old.tsv", FRAMES_ROWS, index=True)  # same rows, with an index column
    (snapshot / "README.md").write_text("---\nlicense: apache-2.0\n---\n")
    tasks = load_frames(path=snapshot)
    assert [t.id for t in tasks] == ["0", "1", "2"]


def test_a_folder_reads_every_data_file_once(tmp_path):
    folder = tmp_path / "parts"
    write_frame(folder / "part-a.parquet", FRAMES_ROWS[:2])
    write_jsonl(folder / "part-b.jsonl", FRAMES_ROWS[2:])
    write_jsonl(folder / "part-a.jsonl", FRAMES_ROWS[:2])  # the same table again: read once, as parquet
    write_jsonl(folder / ".cache" / "junk.jsonl", [{"x": 1}])  # hidden folders are skipped
    assert [f.name for f in data_files(folder, split="test")] == ["part-a.parquet", "part-b.jsonl"]
    tasks = load_frames(path=folder)
    assert sorted(t.question for t in tasks) == sorted(r["Prompt"] for r in FRAMES_ROWS)


def test_save_to_disk_folders(tmp_path):
    datasets.Dataset.from_list(FRAMES_ROWS).save_to_disk(str(tmp_path / "frames-saved"))
    assert len(load_frames(path=tmp_path / "frames-saved")) == 3

    saved = datasets.DatasetDict({
        "main": datasets.Dataset.from_list(stringified_info(WEBWALKER_ROWS)),
        "silver": datasets.Dataset.from_list(stringified_info(WEBWALKER_ROWS[:1])),
    })
    saved.save_to_disk(str(tmp_path / "ww-saved"))
    assert len(load_webwalkerqa(path=tmp_path / "ww-saved", split="main")) == 2
    assert len(load_webwalkerqa(path=tmp_path / "ww-saved", split="silver")) == 1
    with pytest.raises(DatasetUnavailable, match="no split 'dev'"):
        load_webwalkerqa(path=tmp_path / "ww-saved", split="dev")


# -- WebWalkerQA -----------------------------------------------------------------------------------


def test_webwalkerqa_jsonl_with_info_dicts_and_split_files(tmp_path):
    folder = tmp_path / "WebWalkerQA"
    write_jsonl(folder / "main.jsonl", WEBWALKER_ROWS)
    write_jsonl(folder / "silver.jsonl", WEBWALKER_ROWS[:1] * 3)
    tasks = load_webwalkerqa(path=folder, split="main")
    assert [t.id for t in tasks] == ["0", "1"]
    assert len(load_webwalkerqa(path=folder, split="silver")) == 3
    second = tasks[1]
    assert second.family == "webwalkerqa" and second.root_url == "https://org.example.cn/"
    assert second.answer == "The Harbour Lab and the Ridge Lab"
    assert second.metadata == {**WEBWALKER_INFO[1], "split": "main"}


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_webwalkerqa_info_as_a_json_string(tmp_path, suffix):
    tasks = load_webwalkerqa(path=write_frame(tmp_path / f"main{suffix}", stringified_info(WEBWALKER_ROWS)))
    assert tasks[0].metadata == {**WEBWALKER_INFO[0], "split": "main"}
    assert tasks[1].metadata["golden_path"] == ["root->about->a", "root->news->b"]


def test_webwalkerqa_github_spelling_and_bad_info(tmp_path):
    rows = [
        {
            "Question": "Where is the venue?", "Answer": "Hall 3", "Root_Url": "https://conf.example.org/",
            "Info": {"Hop": "Multi-source", "Domain": "Conference", "Language": "English",
                     "Difficulty_Level": "Medium", "Source_Website": ["https://conf.example.org/venue/"],
                     "Golden_Path": ["root->venue"]},
        },
    ]
    task = load_webwalkerqa(path=write_jsonl(tmp_path / "github.jsonl", rows))[0]
    assert task.question == "Where is the venue?" and task.root_url == "https://conf.example.org/"
    assert task.metadata["type"] == "multi_source" and task.metadata["difficulty_level"] == "medium"
    assert task.metadata["lang"] == "English" and task.metadata["golden_path"] == ["root->venue"]

    broken = [{**WEBWALKER_ROWS[0], "info": "{not json"}]
    task = load_webwalkerqa(path=write_jsonl(tmp_path / "broken.jsonl", broken))[0]
    assert task.metadata["domain"] == "" and task.metadata["golden_path"] == []


# -- GAIA ------------------------------------------------------------------------------------------


def test_gaia_keeps_listed_ids_in_dataset_order_and_reports_coverage(tmp_path):
    path = write_jsonl(tmp_path / "metadata.jsonl", gaia_rows())
    with pytest.warns(GaiaCoverageWarning, match="found 3 of the 103 listed task ids"):
        tasks = load_gaia(path=path, ids_file=ids_file(tmp_path))
    assert [t.id for t in tasks] == [FIXTURE_IDS[17], FIXTURE_IDS[0], FIXTURE_IDS[5]]
    first = tasks[0]
    assert first.family == "gaia" and first.answer == "answer 0" and first.question.endswith("number 0?")
    assert first.metadata["level"] == 1 and first.metadata["file_name"] == ""
    assert first.metadata["annotator_metadata"] == {"Steps": "1. step for 0", "Number of steps": "1"}
    assert len(load_gaia(path=path, subset="all")) == 4


def test_gaia_hub_snapshot_reads_the_metadata_table_of_the_split(tmp_path):
    validation = tmp_path / "GAIA" / "2023" / "validation"
    write_jsonl(validation / "metadata.jsonl", gaia_rows())
    write_frame(validation / "metadata.parquet", gaia_rows())  # the same table twice: read once
    write_jsonl(validation / "metadata.level1.jsonl", gaia_rows()[:1])
    write_frame(validation / "5b2a14e8.csv", [{"x": 1, "y": 2}])  # an attachment, not a question
    (validation / "attachment.json").write_text('{"a": 1}')
    write_jsonl(tmp_path / "GAIA" / "2023" / "test" / "metadata.jsonl",
                [{**row, "task_id": f"test-{n}", "Final answer": "?"} for n, row in enumerate(gaia_rows())])
    tasks = load_gaia(path=tmp_path / "GAIA", split="validation", subset="all")
    assert len(tasks) == 4 and all(not t.id.startswith("test-") for t in tasks)


def test_gaia_csv_metadata_as_json_string(tmp_path):
    rows = [{**row, "Annotator Metadata": json.dumps(row["Annotator Metadata"])} for row in gaia_rows()]
    with pytest.warns(GaiaCoverageWarning):
        tasks = load_gaia(path=write_frame(tmp_path / "gaia.csv", rows), ids_file=ids_file(tmp_path))
    assert tasks[0].metadata["annotator_metadata"]["Number of steps"] == "1"
    assert [t.metadata["level"] for t in tasks] == [1, 3, 1]


def test_gaia_all_ids_found_gives_no_warning(tmp_path, recwarn):
    listed = [{**gaia_rows()[0], "task_id": task_id} for task_id in FIXTURE_IDS]
    tasks = load_gaia(path=write_jsonl(tmp_path / "full.jsonl", listed), ids_file=ids_file(tmp_path))
    assert len(tasks) == 103
    assert not [w for w in recwarn if issubclass(w.category, GaiaCoverageWarning)]


def test_gaia_id_list_errors(tmp_path):
    path = write_jsonl(tmp_path / "metadata.jsonl", gaia_rows())
    with pytest.raises(DatasetUnavailable, match="lists 5 task ids"):
        load_gaia(path=path, ids_file=ids_file(tmp_path, FIXTURE_IDS[:5]))
    with pytest.raises(DatasetUnavailable, match="1 repeated"):
        gaia_text_ids(ids_file(tmp_path, FIXTURE_IDS[:102] + FIXTURE_IDS[:1]))
    with pytest.raises(DatasetUnavailable, match=r"WebThinker.*data/GAIA/dev\.json"):
        load_gaia(path=path, ids_file=tmp_path / "missing.txt")
    other_ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"other-{i}")) for i in range(103)]
    with pytest.raises(DatasetUnavailable, match="None of the 103 GAIA-text task ids"):
        load_gaia(path=path, ids_file=ids_file(tmp_path, other_ids))


def test_shipped_gaia_text_ids():
    ids = gaia_text_ids()
    assert len(ids) == len(set(ids)) == 103
    assert all(uuid.UUID(task_id).version == 4 for task_id in ids)


# -- errors ----------------------------------------------------------------------------------------


@pytest.fixture
def hub_offline(monkeypatch):
    """Make sure no test tries the network, whatever the environment says."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)


@pytest.mark.parametrize(
    "kind, split, must_say",
    [
        ("frames", "test", ["google/frames-benchmark", "'test'"]),
        ("webwalkerqa", "silver", ["callanwu/WebWalkerQA", "'silver'"]),
        ("gaia", "validation", ["gaia-benchmark/GAIA", "'2023_all'", "'validation'", "HF_TOKEN"]),
    ],
)
def test_no_path_and_no_hub_explains_how_to_get_the_data(tmp_path, monkeypatch, hub_offline, kind, split, must_say):
    monkeypatch.setattr(gaia, "GAIA_TEXT_IDS", ids_file(tmp_path))
    with pytest.raises(DatasetUnavailable) as error:
        benchmarks.load(kind, path=None, split=split)
    message = str(error.value)
    for text in [*must_say, "huggingface-cli download", f'extends = "{kind}"', "[source]", "path ="]:
        assert text in message, f"{text!r} not in: {message}"


def test_local_path_errors(tmp_path):
    with pytest.raises(DatasetUnavailable, match="does not exist"):
        load_frames(path=tmp_path / "nowhere.parquet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetUnavailable, match="No data files"):
        load_frames(path=tmp_path / "empty")
    (tmp_path / "frames.xlsx").write_bytes(b"PK")
    with pytest.raises(DatasetUnavailable, match="supported formats"):
        load_frames(path=tmp_path / "frames.xlsx")
    with pytest.raises(DatasetUnavailable, match="does not look like FRAMES data: no column 'Prompt'"):
        load_frames(path=write_jsonl(tmp_path / "ww.jsonl", WEBWALKER_ROWS))
    with pytest.raises(DatasetUnavailable, match="Unknown benchmark 'hotpotqa'"):
        benchmarks.load("hotpotqa", path=None, split="test")
    with pytest.raises(DatasetUnavailable, match="no split 'dev'; known splits: main, silver"):
        benchmarks.load("webwalkerqa", path=None, split="dev")


# -- through the env's task source -----------------------------------------------------------------


def with_path(name, path, split=None):
    spec = load_env_spec(name)
    source = dataclasses.replace(spec.source, path=str(path), split=split or spec.source.split)
    return dataclasses.replace(spec, source=source)


def test_load_source_reads_a_local_copy_for_each_benchmark(tmp_path, monkeypatch):
    frames_source = load_source(with_path("frames", write_frame(tmp_path / "frames" / "test.parquet", FRAMES_ROWS)))
    assert len(frames_source.tasks) == 3 and frames_source.site is None and frames_source.tasks[0].family == "frames"

    folder = tmp_path / "webwalker"
    write_jsonl(folder / "main.jsonl", WEBWALKER_ROWS)
    write_jsonl(folder / "silver.jsonl", WEBWALKER_ROWS[:1])
    walker = load_source(with_path("webwalkerqa", folder))
    assert [t.root_url for t in walker.tasks] == ["https://conf.example.org/", "https://org.example.cn/"]
    assert len(load_source(with_path("webwalkerqa", folder), split="silver").tasks) == 1

    monkeypatch.setattr(gaia, "GAIA_TEXT_IDS", ids_file(tmp_path))
    with pytest.warns(GaiaCoverageWarning):
        gaia_source = load_source(with_path("gaia", write_jsonl(tmp_path / "gaia" / "metadata.jsonl", gaia_rows())))
    assert [t.id for t in gaia_source.tasks] == [FIXTURE_IDS[17], FIXTURE_IDS[0], FIXTURE_IDS[5]]


@pytest.mark.parametrize("module", [frames, webwalkerqa])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_an_env_file_made_as_the_error_says_plays_the_local_copy(tmp_path, monkeypatch):
    from matpo_gym.catalogue import builtin_dir
    from matpo_gym.envs import MatpoEnv

    data = write_frame(tmp_path / "data" / "frames.parquet", FRAMES_ROWS)
    elsewhere = tmp_path / "project"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no envs/ folder here
    (elsewhere / "my-frames.toml").write_text(f'extends = "frames"\n[source]\npath = "{data}"\n')
    # a copy of the shipped file, moved away from its prompts/, keeps them too
    shipped = builtin_dir("envs").joinpath("frames.toml").read_text()
    (elsewhere / "copied.toml").write_text(shipped.replace("[source]\n", f'[source]\npath = "{data}"\n', 1))
    for name in ("my-frames.toml", "copied.toml"):
        env = MatpoEnv(str(elsewhere / name), mode="matpo")
        assert len(env.tasks) == 3
        observation, _ = env.reset(options={"index": 0})
        assert observation["messages"][0]["role"] == "system" and "Which river" in observation["messages"][1]["content"]
