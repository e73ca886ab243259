"""The training-data loaders (plain MuSiQue, MATPO-data) on made-up fixtures in each schema.

Every question, answer and id below is invented for these tests; the files are written in the
published layouts (MuSiQue's jsonl release, the reference's verl-style parquet) and read back
through ``datasets`` exactly as real copies would be.
"""

import dataclasses
import doctest
import json

import pytest

datasets = pytest.importorskip("datasets")
pd = pytest.importorskip("pandas")

from matpo_gym.data import benchmarks, musique
from matpo_gym.data.benchmarks import DatasetUnavailable
from matpo_gym.data.musique import FORMAT_INSTRUCTION, load_matpo_data, load_musique
from matpo_gym.envs.sources import load_source
from matpo_gym.envs.spec import load_env_spec


def paragraph(idx, title, text, supporting=False):
    return {"idx": idx, "title": title, "paragraph_text": text, "is_supporting": supporting}


def step(sid, question, answer, support):
    return {"id": sid, "question": question, "answer": answer, "paragraph_support_idx": support}


MUSIQUE_ROWS = [
    {
        "id": "2hop__1001_2002",
        "question": "Who founded the company headquartered in the birthplace of Aldric Venhollow?",
        "answer": "Mirela Stone",
        "answer_aliases": ["M. Stone", "Mirela Stone"],
        "answerable": True,
        "paragraphs": [
            paragraph(0, "Aldric Venhollow", "Aldric Venhollow was born in Kessa.", True),
            paragraph(1, "Kessa Works", "Kessa Works was founded by Mirela Stone.", True),
        ],
        "question_decomposition": [step(1001, "birthplace of Aldric Venhollow", "Kessa", 0),
                                   step(2002, "founder of company in #1", "Mirela Stone", 1)],
    },
    {
        "id": "3hop1__3003_4004_5005",
        "question": "In which year did the river past the capital of Ostrava Minor first freeze?",
        "answer": "1791",
        "answer_aliases": [],
        "answerable": True,
        "paragraphs": [paragraph(0, "Ostrava Minor", "Its capital is Veldmar.")],
        "question_decomposition": [step(3003, "capital of Ostrava Minor", "Veldmar", 0),
                                   step(4004, "river past #1", "Ostra", None),
                                   step(5005, "year #2 first froze", "1791", None)],
    },
    {
        "id": "2hop__6006_7007",
        "question": "Which label signed the singer of Glass Harbour?",
        "answer": "",
        "answer_aliases": [],
        "answerable": False,  # MuSiQue-Full's unanswerable contrast copy: dropped
        "paragraphs": [],
        "question_decomposition": [step(6006, "singer of Glass Harbour", "Ione Park", None),
                                   step(7007, "label that signed #1", "Tidal", None)],
    },
    {
        "id": "4hop3__8008_9009_1010_1111",
        "question": "What is the motto of the school of the author of The Lantern Sea's sequel?",
        "answer": "Lux in fluctu",
        "answer_aliases": ["Light in the wave"],
        "answerable": True,
        "paragraphs": [],
        "question_decomposition": [step(i, f"step {i}", f"a{i}", None) for i in range(4)],
    },
    {
        "id": "custom-17",  # no hop prefix: hops from the decomposition
        "question": "Which bridge replaced the ferry founded by the mayor of Tamsin?",
        "answer": "Orrel Bridge",
        "answer_aliases": [],
        "answerable": True,
        "paragraphs": [],
        "question_decomposition": [step(1, "mayor of Tamsin", "Ada Vance", None),
                                   step(2, "ferry founded by #1", "Tamsin Ferry", None),
                                   step(3, "bridge that replaced #2", "Orrel Bridge", None)],
    },
]

SYSTEM_PROMPT = "In this environment you have access to a set of tools ... (the reference's prompt)"


def verl_row(index, question, answer, *, data_source="musique"):
    """A row as the reference's preprocessing writes it (verl RL parquet)."""
    return {
        "data_source": data_source,
        "prompt": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"{question} {FORMAT_INSTRUCTION}"},
        ],
        "ability": "qa",
        "reward_model": {"style": "rule", "ground_truth": answer},
        "extra_info": {"split": "train", "index": index, "answer": answer, "question": question,
                       "need_tools_kwargs": True},
    }


MATPO_ROWS = [
    verl_row("2hop__1001_2002", MUSIQUE_ROWS[0]["question"], "Mirela Stone"),
    verl_row("3hop1__3003_4004_5005", MUSIQUE_ROWS[1]["question"], "1791"),
    verl_row("4hop2__8008_9009_1010_1212",
             "Who painted the mural in the station named after Ada Vance's ship?", "Tolan Reyes"),
]


@pytest.fixture(autouse=True)
def private_datasets_cache(tmp_path_factory, monkeypatch):
    """Keep the arrow files ``datasets`` writes for local files out of the user's cache."""
    cache = tmp_path_factory.getbasetemp() / "hf-datasets"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))


@pytest.fixture
def hub_offline(monkeypatch):
    """Make sure no test tries the network, whatever the environment says."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_parquet(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path, index=False)
    return path


def with_path(name, path, split=None):
    spec = load_env_spec(name)
    source = dataclasses.replace(spec.source, path=str(path), split=split or spec.source.split)
    return dataclasses.replace(spec, source=source)


# -- plain MuSiQue ---------------------------------------------------------------------------------


def test_musique_keeps_answerable_questions_with_aliases_and_hops(tmp_path):
    tasks = load_musique(path=write_jsonl(tmp_path / "musique_ans_v1.0_train.jsonl", MUSIQUE_ROWS))
    assert [t.id for t in tasks] == [
        "2hop__1001_2002", "3hop1__3003_4004_5005", "4hop3__8008_9009_1010_1111", "custom-17"
    ]
    first = tasks[0]
    assert first.question == MUSIQUE_ROWS[0]["question"]
    assert (first.answer, first.family) == ("Mirela Stone", "musique")
    assert first.aliases == ("M. Stone",)  # the answer itself is not repeated as an alias
    assert [t.metadata["hops"] for t in tasks] == [2, 3, 4, 3]
    assert [t.metadata["difficulty"] for t in tasks] == ["easy", "medium", "hard", "medium"]
    assert all(t.metadata["split"] == "train" and t.metadata["source"] == "musique" for t in tasks)


def test_musique_folder_picks_the_split_and_reads_full_files_once_per_id(tmp_path):
    folder = tmp_path / "musique"
    write_jsonl(folder / "musique_ans_v1.0_train.jsonl", MUSIQUE_ROWS[:2])
    write_jsonl(folder / "musique_full_v1.0_train.jsonl", MUSIQUE_ROWS[:3])  # the same ids again
    write_jsonl(folder / "musique_ans_v1.0_dev.jsonl", MUSIQUE_ROWS[3:])
    assert [t.id for t in load_musique(path=folder)] == ["2hop__1001_2002", "3hop1__3003_4004_5005"]
    dev = load_musique(path=folder, split="dev")
    assert [t.id for t in dev] == ["4hop3__8008_9009_1010_1111", "custom-17"]
    assert dev[0].metadata["split"] == "dev"


def test_musique_errors(tmp_path, hub_offline):
    with pytest.raises(DatasetUnavailable) as error:
        load_musique(path=None)
    message = str(error.value)
    for text in ["no hub copy", "github.com/StonyBrookNLP/musique", "musique_ans_v1.0_",
                 'extends = "musique"', "[source]", "path =", "world-musique"]:
        assert text in message, f"{text!r} not in: {message}"
    with pytest.raises(DatasetUnavailable, match="does not exist.*StonyBrookNLP"):
        load_musique(path=tmp_path / "nowhere.jsonl")
    with pytest.raises(DatasetUnavailable, match="does not look like MuSiQue data: no column 'id'"):
        load_musique(path=write_jsonl(tmp_path / "plain.jsonl", [{"question": "q", "answer": "a"}]))
    test_split = [{**row, "answer": "", "answer_aliases": []} for row in MUSIQUE_ROWS]
    with pytest.raises(DatasetUnavailable, match="no answerable MuSiQue question"):
        load_musique(path=write_jsonl(tmp_path / "musique_ans_v1.0_test.jsonl", test_split),
                     split="test")


# -- MATPO-data ------------------------------------------------------------------------------------


def test_matpo_data_verl_parquet(tmp_path):
    folder = tmp_path / "MATPO-data"
    write_parquet(folder / "train_musique.parquet", MATPO_ROWS)
    gaia = verl_row(0, "A GAIA question?", "7", data_source="gaia")
    write_parquet(folder / "val_gaia_repeat_8.parquet", [gaia] * 8)
    tasks = load_matpo_data(path=folder)
    assert [t.id for t in tasks] == [r["extra_info"]["index"] for r in MATPO_ROWS]  # no val rows
    assert tasks[0].question == MUSIQUE_ROWS[0]["question"] and tasks[0].answer == "Mirela Stone"
    assert [t.metadata["hops"] for t in tasks] == [2, 3, 4]
    assert tasks[2].metadata == {
        "hops": 4, "difficulty": "hard", "split": "train", "source": "matpo_data",
        "data_source": "musique",
    }


def test_matpo_data_question_from_the_chat_prompt_and_list_ground_truths(tmp_path):
    chat = [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"Which river runs past Veldmar? {FORMAT_INSTRUCTION}"}]
    truth = {"target": ["Ostra", "the Ostra River"]}
    rows = [{"prompt": chat, "reward_model": {"style": "rule", "ground_truth": truth}}]
    [task] = load_matpo_data(path=write_parquet(tmp_path / "train.parquet", rows))
    assert task.question == "Which river runs past Veldmar?"
    assert (task.answer, task.aliases) == ("Ostra", ("the Ostra River",))
    assert (task.id, task.metadata["hops"]) == ("0", None)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_matpo_data_plain_layouts(tmp_path, suffix):
    plain = [{"id": "2hop__1_2", "question": "Who founded Kessa Works?", "answer": "Mirela Stone",
              "answer_aliases": ["M. Stone"]}]
    writer = write_jsonl if suffix == ".jsonl" else write_parquet
    [task] = load_matpo_data(path=writer(tmp_path / f"train{suffix}", plain))
    assert (task.id, task.answer, task.aliases) == ("2hop__1_2", "Mirela Stone", ("M. Stone",))
    assert task.metadata["hops"] == 2
    # rows in MuSiQue's own schema go through the MuSiQue mapping (unanswerable ones dropped)
    tasks = load_matpo_data(path=writer(tmp_path / "musique" / f"train{suffix}", MUSIQUE_ROWS))
    assert len(tasks) == 4 and all(t.metadata["source"] == "matpo_data" for t in tasks)


def test_matpo_data_errors(tmp_path, hub_offline):
    with pytest.raises(DatasetUnavailable) as error:
        benchmarks.load("matpo_data", path=None, split="train")
    message = str(error.value)
    for text in ["veggiebird/MATPO-data", "huggingface-cli download", 'extends = "matpo-data"',
                 "[source]", "path =", "world-musique"]:
        assert text in message, f"{text!r} not in: {message}"
    with pytest.raises(DatasetUnavailable, match="no split 'test'; known splits: train"):
        benchmarks.load("matpo_data", path=None, split="test")
    with pytest.raises(DatasetUnavailable, match="does not look like MATPO-data"):
        load_matpo_data(path=write_jsonl(tmp_path / "other.jsonl", [{"text": "q", "label": "a"}]))
    with pytest.raises(DatasetUnavailable, match="no row with both a question and an answer"):
        load_matpo_data(path=write_jsonl(tmp_path / "e.jsonl", [{"question": "q", "answer": ""}]))


# -- through the envs ------------------------------------------------------------------------------


def test_training_envs_read_local_copies(tmp_path):
    train = write_jsonl(tmp_path / "m" / "musique_ans_v1.0_train.jsonl", MUSIQUE_ROWS)
    musique_env = with_path("musique", train)
    source = load_source(musique_env)
    assert len(source.tasks) == 4 and source.site is None
    assert musique_env.tools.backend == "web" and musique_env.tools.leakage_guard

    matpo_env = with_path("matpo-data", write_parquet(tmp_path / "d" / "train.parquet", MATPO_ROWS))
    source = load_source(matpo_env)
    assert [t.answer for t in source.tasks] == ["Mirela Stone", "1791", "Tolan Reyes"]
    assert matpo_env.limits.context_tokens == 32768 and matpo_env.scoring.format_weight == 0.1
    assert matpo_env.tools.leakage_guard


def test_docstring_examples():
    result = doctest.testmod(musique)
    assert result.attempted > 0 and result.failed == 0
