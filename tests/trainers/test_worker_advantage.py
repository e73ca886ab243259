"""The worker-advantage switch: ``scalar`` (the method, the default) and ``parent_mask`` (the
reference's quirk), on hand-computed examples and on real episodes."""

import json
import math

import pytest

torch = pytest.importorskip("torch")

from matpo_gym.cli import parse  # noqa: E402
from matpo_gym.config import ConfigError  # noqa: E402
from matpo_gym.core.messages import Role  # noqa: E402
from matpo_gym.core.trajectory import EpisodeResult, EpisodeStats, Trajectory, Turn  # noqa: E402
from matpo_gym.policies.base import Completion  # noqa: E402
from matpo_gym.trainers.advantages import (  # noqa: E402
    Credited,  # noqa: E402
    assign_credit,
    group_advantages,
)
from matpo_gym.trainers.batch import (  # noqa: E402
    Sample,
    collate,
    parent_mask_advantages,
    response_generated,
    samples_from_credit,
)
from matpo_gym.trainers.config import TrainConfig, load_recipe, run_metadata  # noqa: E402
from matpo_gym.trainers.loss import policy_loss  # noqa: E402
from matpo_gym.trainers.rl import token_advantage_loss  # noqa: E402


def ids(start: int, count: int) -> list[int]:
    return list(range(start, start + count))


def sample(prompt: int, completion: int, advantage: float, role: str = "worker") -> Sample:
    return Sample(ids(1, prompt), ids(100, completion), [-0.5] * completion, advantage, role)


# -- the pure rule ---------------------------------------------------------------------------------


def test_parent_mask_row_by_hand():
    # the planner's response (all after its first prompt): generated at 0, 1 and 3, environment at 2
    planner = [True, True, False, True]
    assert parent_mask_advantages(0, 3, planner, 0.8) == (0.8, 0.8, 0.0)
    # a later worker turn: response positions 3.. -- generated, then past the planner's end
    assert parent_mask_advantages(3, 3, planner, -1.0) == (-1.0, 0.0, 0.0)
    # no planner tokens (its turns carry no ids): zeros
    assert parent_mask_advantages(0, 2, [], 1.0) == (0.0, 0.0)


def test_the_reference_layout_ignores_prompt_lengths():
    # planner: prompt 300, worker call 40, worker result 120, answer 20; worker: prompt p, search
    # call 30, page 500, summary 60. The reference credits the worker's first 30 tokens (under the
    # planner's call) and none of the summary (past the planner's 180-token response), whatever
    # the two prompts' lengths
    planner = Trajectory("e/planner-0", "e", Role.PLANNER)
    planner.turns += [Turn((), "", "tool_call", ids(1, 300), ids(1000, 40), [-0.1] * 40),
                      Turn((), "", "answer", ids(1, 460), ids(2000, 20), [-0.1] * 20)]
    assert response_generated(planner.turns) == [True] * 40 + [False] * 120 + [True] * 20
    for prompt in (250, 300, 420):
        worker = Trajectory("e/worker-1", "e", Role.WORKER, parent_id=planner.id)
        worker.turns += [Turn((), "", "tool_call", ids(1, prompt), ids(3000, 30), [-0.2] * 30),
                         Turn((), "", "answer", ids(1, prompt + 530), ids(4000, 60), [-0.2] * 60)]
        credited = [Credited(planner, 0.5, 1.0, "q"), Credited(worker, 0.5, 1.0, "q")]
        rows = [s.token_advantages for s in samples_from_credit(credited, worker_advantage="parent_mask")
                if s.role == "worker"]
        assert rows == [(0.5,) * 30, (0.0,) * 60], prompt


# -- on trajectories -------------------------------------------------------------------------------

WORKER_CALL = '<tool_call>{"name": "worker", "arguments": {"subtask": "%s"}}</tool_call>'
BAD_CALL = '<tool_call>{"name": "worker", "arguments": {"task": "x"}}</tool_call>'


def matpo_episode(episode_id: str, reward: float) -> EpisodeResult:
    """A planner that spawns two workers (turns 0 and 3); turn 1 is a worker call with bad arguments
    and turn 2 is malformed, so neither spawns one."""
    planner = Trajectory(f"{episode_id}/planner-0", episode_id, Role.PLANNER)
    planner.turns += [
        Turn((), WORKER_CALL % "find the capital", "tool_call", ids(1, 5), ids(200, 3), [-0.1] * 3),
        Turn((), BAD_CALL, "tool_call", ids(1, 7), ids(300, 2), [-0.1] * 2),
        Turn((), "no action", "invalid", ids(1, 8), ids(400, 1), [-0.1]),
        Turn((), WORKER_CALL % "find the river", "tool_call", ids(1, 10), ids(500, 4), [-0.1] * 4),
        Turn((), "<answer>Ostra</answer>", "answer", ids(1, 14), ids(600, 2), [-0.1] * 2),
    ]
    first = Trajectory(f"{episode_id}/worker-1", episode_id, Role.WORKER, parent_id=planner.id)
    first.turns += [
        Turn((), "search", "tool_call", ids(1, 3), ids(700, 6), [-0.2] * 6),   # positions 2..7
        Turn((), "summary", "answer", ids(1, 6), ids(800, 2), [-0.2] * 2),     # positions 5..6
    ]
    second = Trajectory(f"{episode_id}/worker-2", episode_id, Role.WORKER, parent_id=planner.id)
    second.turns += [Turn((), "summary", "answer", ids(1, 8), ids(900, 5), [-0.3] * 5)]  # 7..11
    return EpisodeResult(episode_id, "t", "q", "Ostra", "Ostra", reward, reward, "answer",
                         [planner, first, second], EpisodeStats())


def test_parent_mask_samples_by_hand():
    results = [matpo_episode("a", 1.0), matpo_episode("b", 0.0)]
    credited = assign_credit(results, ["q", "q"], include_workers=True)
    a, b = group_advantages([1.0, 0.0], ["q", "q"])
    samples = samples_from_credit(credited, worker_advantage="parent_mask")
    rows = [(s.role, s.advantage, s.token_advantages) for s in samples]
    # the planner's turns (prompt, completion) are (5, 3), (7, 2), (8, 1), (10, 4), (14, 2): from its
    # 5-token first prompt they sit at response positions 0-2, 2-3, 3, 5-8 and 9-10, so only
    # position 4 is not generated. worker-1 (first prompt 3): turn 0 at 0-5, turn 1 at 3-4;
    # worker-2 (first prompt 8): its only turn at 0-4
    expected_a = [
        *[("planner", a, None)] * 5,
        ("worker", a, (a, a, a, a, 0.0, a)),
        ("worker", a, (a, 0.0)),
        ("worker", a, (a, a, a, a, 0.0)),
    ]
    expected_b = [(role, b, None if row is None else tuple(b if v else 0.0 for v in row))
                  for role, _, row in expected_a]
    assert rows == expected_a + expected_b


def test_scalar_is_the_default_and_unchanged():
    assert TrainConfig().worker_advantage == "scalar"
    results = [matpo_episode("a", 1.0), matpo_episode("b", 0.0)]
    credited = assign_credit(results, ["q", "q"], include_workers=True)
    default = samples_from_credit(credited)
    assert default == samples_from_credit(credited, worker_advantage="scalar")
    assert all(s.token_advantages is None for s in default)
    a, b = credited[0].advantage, credited[3].advantage
    assert [s.advantage for s in default if s.role == "worker"] == [a, a, a, b, b, b]
    batch = collate(default, pad_id=0)
    assert batch.token_advantages is None and batch.advantages.shape == (len(default),)


def test_collate_lays_out_per_token_advantages():
    planner, worker = sample(5, 3, 0.8, "planner"), sample(3, 6, 0.8)
    worker = Sample(worker.prompt_ids, worker.completion_ids, worker.old_logprobs, 0.8, "worker",
                    parent_mask_advantages(0, 6, [True, True, False, True], 0.8))
    batch = collate([planner, worker], pad_id=0)
    assert batch.token_advantages is not None
    assert batch.token_advantages.shape == batch.loss_mask.shape == (2, 8)
    assert batch.token_advantages[0].tolist() == pytest.approx([0, 0, 0, 0, 0.8, 0.8, 0.8, 0])
    assert batch.token_advantages[1].tolist() == pytest.approx([0, 0, 0.8, 0.8, 0, 0.8, 0, 0])
    assert batch.loss_mask[1].tolist() == [0, 0, 1, 1, 1, 1, 1, 1]  # every generated token counts
    moved = batch.to("cpu")
    assert torch.equal(moved.token_advantages, batch.token_advantages)


# -- the loss --------------------------------------------------------------------------------------


def loss_inputs(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    logprobs = -torch.rand((3, 6), generator=generator)
    old = logprobs.detach() + 0.3 * torch.randn((3, 6), generator=generator)
    ref = logprobs.detach() + 0.1 * torch.randn((3, 6), generator=generator)
    rows = [[0, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0]]
    mask = torch.tensor(rows, dtype=torch.float32)
    return logprobs, old, ref, mask, torch.tensor([0.7, -1.2, 0.4])


@pytest.mark.parametrize("aggregation", ["token-mean", "seq-mean-token-sum-norm"])
@pytest.mark.parametrize("options", [{}, {"dual_clip": 3.0, "kl_coef": 0.05, "clip_eps_high": 0.3}])
def test_per_token_loss_with_a_broadcast_scalar_is_the_scalar_loss(aggregation, options):
    logprobs, old, ref, mask, advantages = loss_inputs()
    common = dict(aggregation=aggregation, max_tokens=5, ref_logprobs=ref, **options)
    scalar, scalar_stats = policy_loss(logprobs, old, advantages, mask, **common)
    rows = advantages.unsqueeze(-1).expand_as(mask) * mask
    tokens, token_stats = token_advantage_loss(logprobs, old, rows, mask, **common)
    assert float(tokens) == pytest.approx(float(scalar), rel=1e-6)
    for name in ("loss", "clip_fraction", "approx_kl", "ratio_mean", "ref_kl", "tokens"):
        expected = pytest.approx(getattr(scalar_stats, name), rel=1e-6)
        assert getattr(token_stats, name) == expected, name


def test_zeroed_worker_tokens_count_in_the_mean_but_get_no_gradient():
    logprobs, _, _, mask, _ = loss_inputs()
    old = logprobs.detach().clone()  # on-policy: every ratio is 1, nothing is clipped
    logprobs.requires_grad_(True)
    rows = torch.zeros_like(mask)
    rows[1, 2:4] = -1.2  # only two of the second row's four generated tokens keep the advantage
    loss, stats = token_advantage_loss(logprobs, old, rows, mask)
    loss.backward()
    # -min(r * A, clip(r) * A) = 1.2 at the two kept tokens, 0 elsewhere; 9 tokens in the mean
    assert float(loss.detach()) == pytest.approx(2 * 1.2 / 9, rel=1e-6) and stats.tokens == 9
    grad = logprobs.grad
    assert grad is not None and torch.count_nonzero(grad[rows == 0]) == 0
    assert grad[1, 2:4].tolist() == pytest.approx([1.2 / 9, 1.2 / 9], rel=1e-5)


# -- on real episodes ------------------------------------------------------------------------------


class WithTokenIds:
    """The scripted search-and-read policy, with made-up token ids sized like its text."""

    name = "scripted-with-ids"

    def __init__(self):
        from matpo_gym.policies.scripted import SearchReadPolicy

        self.inner = SearchReadPolicy()

    def generate(self, prompts):
        out = []
        for prompt, completion in zip(prompts, self.inner.generate(prompts)):
            prompt_length = max(2, sum(len(m.content.split()) for m in prompt.messages) // 4)
            generated = max(1, len(completion.text.split()))
            out.append(Completion(completion.text, list(range(1, prompt_length + 1)),
                                  list(range(1000, 1000 + generated)), [-0.5] * generated))
        return out


def test_parent_mask_on_real_episodes_lays_each_worker_against_its_planner():
    from matpo_gym.envs.gym_env import MatpoEnv
    from matpo_gym.envs.spec import load_env_spec
    from matpo_gym.rollout import EpisodeRequest, rollout

    spec = load_env_spec("world-tiny")
    tasks = list(MatpoEnv(spec, mode="matpo", split="test").tasks)[:6]
    requests = [EpisodeRequest(task, f"{task.id}/step0/g{g}") for task in tasks for g in range(2)]

    def make_env():
        return MatpoEnv(spec, mode="matpo", split="test")

    results = list(rollout(make_env, WithTokenIds(), requests, batch_size=4, threads=1))
    for result in results:  # rollouts of a question get different rewards: advantages are not 0
        result.reward = float(result.episode_id.endswith("g0"))
    groups = [r.episode_id.split("/step")[0] for r in results]
    credited = assign_credit(results, groups, include_workers=True)
    workers = [c for c in credited if c.trajectory.parent_id is not None]
    assert workers, "the scripted planner should delegate"

    by_id = {c.trajectory.id: c for c in credited}
    checked = 0
    for item in workers:
        planner = by_id[item.trajectory.parent_id]
        # the planner's row, built here from its turns: A on each completion's response positions
        first = len(planner.trajectory.turns[0].prompt_ids)
        row: dict[int, float] = {}
        for turn in planner.trajectory.turns:
            start = len(turn.prompt_ids) - first
            row.update({start + i: planner.advantage for i in range(len(turn.completion_ids))})
        samples = [s for s in samples_from_credit([item, planner], worker_advantage="parent_mask")
                   if s.role == "worker"]
        assert len(samples) == len(item.trajectory.turns)
        worker_first = len(item.trajectory.turns[0].prompt_ids)
        for worker_sample in samples:
            offset = len(worker_sample.prompt_ids) - worker_first
            expected = tuple(row.get(offset + i, 0.0) for i in range(len(worker_sample.completion_ids)))
            assert worker_sample.token_advantages == expected
            checked += 1
    assert checked


# -- configuration and run metadata ----------------------------------------------------------------


def test_the_switch_is_a_recipe_key_a_flag_and_recorded(tmp_path):
    args = ["train", "--recipe", "trainers/tiny-matpo.toml", "--worker-advantage", "parent_mask"]
    config = parse(args)
    assert isinstance(config, TrainConfig) and config.worker_advantage == "parent_mask"
    recipe = tmp_path / "quirk.toml"
    recipe.write_text('[train]\nalgo = "matpo"\nworker_advantage = "parent_mask"\n')
    assert load_recipe(recipe).worker_advantage == "parent_mask"
    recipe.write_text('[train]\nworker_advantage = "parent"\n')
    with pytest.raises(ConfigError, match="worker_advantage"):
        load_recipe(recipe)
    metadata = run_metadata(config)
    assert metadata["worker_advantage"] == "parent_mask" and isinstance(metadata["out"], str)
    json.dumps(metadata)


def test_a_parent_mask_run_records_the_switch_in_its_checkpoint(tiny_model_dir, tmp_path):
    from matpo_gym.trainers import main

    config = TrainConfig(
        algo="matpo", model=str(tiny_model_dir), out=tmp_path, steps=1, questions_per_step=2,
        group_size=2, max_new_tokens=16, context_tokens=1024, planner_turns=2, worker_turns=2,
        eval_every=0, eval_questions=2, save_every=1, quiet=True, worker_advantage="parent_mask",
    )
    main(config)
    state = torch.load(tmp_path / "checkpoints" / "step-1" / "trainer_state.pt", weights_only=False)
    assert state["extra"]["worker_advantage"] == "parent_mask"
    assert state["extra"]["config"]["worker_advantage"] == "parent_mask"
    row = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0.0 <= row["worker_tokens_zeroed"] <= 1.0 and not math.isnan(row["loss"] or 0.0)
