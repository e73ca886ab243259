"""World question families: every gold answer is recomputed from the rendered HTML alone."""

from __future__ import annotations

import itertools
import json
import re

import pytest
from world_reader import SiteReader, solve

from matpo_gym.data.tasks import Task
from matpo_gym.data.world import World, WorldConfig, build_world

FAMILIES = ("frames", "webwalker", "gaia", "musique")
DIFFICULTIES = ("easy", "medium", "hard")


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(WorldConfig(seed=11, num_entities=200))


@pytest.fixture(scope="module")
def reader(world: World) -> SiteReader:
    return SiteReader(world.store)


def all_tasks(world: World, family: str) -> list[Task]:
    return world.tasks(family, split="train") + world.tasks(family, split="test")


@pytest.mark.parametrize("family", FAMILIES)
def test_every_gold_answer_follows_from_the_pages(world: World, family: str) -> None:
    tasks = all_tasks(world, family)
    assert tasks
    for task in tasks:
        gold = task.metadata["gold_urls"]
        reader = SiteReader(world.store)
        assert solve(task.metadata["program"], reader, gold) == task.answer, task.question
        assert set(reader.read) == set(gold), task.question


@pytest.mark.parametrize("family", FAMILIES)
def test_metadata_is_complete_and_json_able(world: World, family: str) -> None:
    for task in all_tasks(world, family):
        meta = task.metadata
        assert task.family == family
        assert meta["difficulty"] in DIFFICULTIES
        assert isinstance(meta["hops"], int) and meta["hops"] >= 1
        assert meta["gold_urls"] and all(world.store.get(u) is not None for u in meta["gold_urls"])
        assert all(u.startswith(world.config.base_url + "/wiki/") for u in meta["gold_urls"])
        json.dumps(meta)
        assert task.answer and task.answer == task.answer.strip()
        if re.fullmatch(r"-?[\d,]+", task.answer):
            assert "," not in task.answer


@pytest.mark.parametrize("family", FAMILIES)
def test_questions_name_their_entities_exactly(world: World, family: str) -> None:
    def named(p: dict) -> list[str]:
        found = [p["name"]] if p["op"] == "entity" else []
        for child in [p.get("of")] + p.get("args", []):
            if isinstance(child, dict):
                found += named(child)
        return found

    names = {e.name for e in world.entities.values()}
    for task in all_tasks(world, family):
        for name in named(task.metadata["program"]):
            assert name in names and name in task.question


@pytest.mark.parametrize("size", [200, 500])
def test_webwalker_gold_paths_are_chains_of_real_links_from_the_root(size: int) -> None:
    world = build_world(WorldConfig(seed=11, num_entities=size, filler_paragraphs=0))
    reader = SiteReader(world.store)
    root = world.store.url_for("/")
    types = set()
    tasks = all_tasks(world, "webwalker")
    for task in tasks:
        path = task.metadata["gold_path"]
        types.add(task.metadata["type"])
        assert task.root_url == root and path[0] == root
        for here, there in itertools.pairwise(path):
            assert there in reader.links(here), (task.question, here, there)
        assert set(task.metadata["gold_urls"]) <= set(path)
    assert types == {"single_source", "multi_source"}
    if size > 400:
        assert any("/category/Person/2" in u for t in tasks for u in t.metadata["gold_path"])


def test_hops_grow_with_difficulty_in_musique(world: World) -> None:
    hops = {
        d: {t.metadata["hops"] for t in world.tasks("musique", split="train", difficulty=d)}
        for d in DIFFICULTIES
    }
    assert hops == {"easy": {2}, "medium": {3}, "hard": {4}}


def test_frames_hops_and_arithmetic(world: World) -> None:
    easy = world.tasks("frames", split="train", difficulty="easy")
    medium = world.tasks("frames", split="train", difficulty="medium")
    hard = world.tasks("frames", split="train", difficulty="hard")
    assert {t.metadata["hops"] for t in easy} == {1}
    assert {t.metadata["hops"] for t in medium} == {2}
    assert {t.metadata["program"]["op"] for t in hard} == {"diff"}
    assert max(t.metadata["hops"] for t in hard) == 3


def test_train_and_test_never_share_a_question(world: World) -> None:
    train, test = set(), set()
    for family in FAMILIES:
        train |= {" ".join(t.question.lower().split()) for t in world.tasks(family, split="train")}
        test |= {" ".join(t.question.lower().split()) for t in world.tasks(family, split="test")}
    assert not train & test
    assert 0.1 < len(test) / (len(train) + len(test)) < 0.3


def test_split_is_a_property_of_the_question_text_across_worlds() -> None:
    a = build_world(WorldConfig(seed=11, num_entities=200))
    b = build_world(WorldConfig(seed=11, num_entities=200, filler_paragraphs=5))
    for family in FAMILIES:
        assert a.tasks(family, split="test") == b.tasks(family, split="test")
        assert {t.metadata["split"] for t in a.tasks(family, split="test")} == {"test"}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_split_and_difficulty_has_questions(world: World, family: str) -> None:
    for split in ("train", "test"):
        for difficulty in DIFFICULTIES:
            assert len(world.tasks(family, split=split, difficulty=difficulty)) >= 5
    tasks = all_tasks(world, family)
    assert len({t.id for t in tasks}) == len(tasks)
    assert len({t.question for t in tasks}) == len(tasks)


def test_tasks_are_deterministic_and_change_with_the_seed(world: World) -> None:
    again = build_world(WorldConfig(seed=11, num_entities=200))
    other = build_world(WorldConfig(seed=12, num_entities=200))
    for family in FAMILIES:
        assert world.tasks(family) == again.tasks(family)
        assert {t.question for t in world.tasks(family)} != {
            t.question for t in other.tasks(family)
        }


def test_n_and_difficulty_select_a_prefix(world: World) -> None:
    full = world.tasks("gaia", split="train", difficulty="hard")
    assert world.tasks("gaia", split="train", difficulty="hard", n=3) == full[:3]
    assert world.tasks("gaia", split="train", n=0) == []


def test_bad_arguments_name_the_valid_choices(world: World) -> None:
    with pytest.raises(ValueError, match="frames.*gaia.*musique.*webwalker"):
        world.tasks("trivia")
    with pytest.raises(ValueError, match="train"):
        world.tasks("frames", split="validation")
    with pytest.raises(ValueError, match="easy"):
        world.tasks("frames", difficulty="extreme")


def test_gaia_covers_counts_comparisons_and_means(world: World) -> None:
    ops = {t.metadata["program"]["op"] for t in all_tasks(world, "gaia")}
    assert {"argmax", "argmin", "count", "sum", "diff", "mean"} <= ops


def test_answers_are_entity_names_in_musique(world: World) -> None:
    names = {e.name for e in world.entities.values()}
    assert all(t.answer in names for t in all_tasks(world, "musique"))


@pytest.mark.parametrize("family", FAMILIES)
def test_no_question_is_asked_twice_with_its_entities_in_another_order(world: World, family: str) -> None:
    # twins would be the same question, and could sit one in train and one in test
    from matpo_gym.data.world.questions import program_key

    keys = [program_key(t.metadata["program"]) for t in all_tasks(world, family)]
    assert len(set(keys)) == len(keys)
