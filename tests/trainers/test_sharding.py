"""``sharding = "fsdp"`` over a real two-process gloo group on loopback (CPU, FSDP2 ``fully_shard``).

One two-process session (module fixture) sets up sharded trainers and records what each check needs:
the sharded step against a single-process full replica on the same episodes, the shard sizes,
generation of different lengths per process with a count of the collectives it issued, and a
checkpoint that ``from_pretrained`` loads and a resumed trainer continues from; then sharded SFT runs
against single-process ones.
"""

import contextlib
import json
import math
import os
import socket
import traceback
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
mp = pytest.importorskip("torch.multiprocessing")

from matpo_gym.core.messages import Role  # noqa: E402
from matpo_gym.core.trajectory import EpisodeResult, EpisodeStats, Trajectory, Turn  # noqa: E402
from matpo_gym.trainers.config import TrainConfig  # noqa: E402

GROUPS, SIZE = 3, 4
"""Questions and rollouts each: process 0 trains questions 0 and 2, process 1 question 1, so
process 1 runs fewer micro-batches and must pad."""
COLLECTIVES = ("all_gather_single", "all_gather_into_tensor", "all_gather", "reduce_scatter_single",
               "reduce_scatter_tensor", "all_reduce", "broadcast", "barrier")
SFT_BATCHES = (3, 1)
TIMEOUT = 150


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def episodes(questions: list[int]) -> list[EpisodeResult]:
    """Fixed one-turn episodes: token ids and log-probs chosen, rewards alternating in each group."""
    results = []
    for q in questions:
        for g in range(SIZE):
            generator = torch.Generator().manual_seed(100 * q + g)
            prompt = torch.randint(10, 4000, (6 + q,), generator=generator).tolist()
            completion = torch.randint(10, 4000, (3 + g,), generator=generator).tolist()
            episode = f"q{q}/step0/g{g}"
            root = Trajectory(f"{episode}/single-0", episode, Role.SINGLE)
            root.turns.append(Turn((), "", "answer", prompt, completion, [-math.log(4096)] * len(completion)))
            reward = float(g % 2)
            results.append(EpisodeResult(episode, f"q{q}", "", "", "", reward, reward, "answer", [root],
                                         EpisodeStats()))
    return results


def config(model_dir: Path, out: Path, sharding: str, **overrides) -> TrainConfig:
    values = dict(algo="grpo", model=str(model_dir), env="world-tiny", out=out, steps=1, questions_per_step=2,
                  group_size=2, lr=1e-3, grad_clip=1e-3, max_new_tokens=8, micro_batch_tokens=48, eval_every=0,
                  eval_questions=2, save_every=1, device="cpu", precision="fp32", sharding=sharding, quiet=True)
    return TrainConfig(**{**values, **overrides})


def sft_config(model_dir: Path, out: Path, sharding: str, batch: int, steps: int = 2) -> TrainConfig:
    return config(model_dir, out, sharding, algo="sft", steps=steps, sft_demos=4, sft_batch_size=batch,
                  sft_mode="single", save_every=0)


def metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


@contextlib.contextmanager
def counted_collectives():
    """Every torch.distributed collective called inside, by name (FSDP calls them through the module)."""
    import torch.distributed as dist

    calls: list[str] = []
    originals = {name: getattr(dist, name) for name in COLLECTIVES if hasattr(dist, name)}

    def counting(name, function):
        def call(*args, **kwargs):
            calls.append(name)
            return function(*args, **kwargs)
        return call

    for name, function in originals.items():
        setattr(dist, name, counting(name, function))
    try:
        yield calls
    finally:
        for name, function in originals.items():
            setattr(dist, name, function)


def session(rank: int, port: int, model_dir: Path, out: Path, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE="2")
    report: dict = {}
    try:
        from torch.distributed.tensor import DTensor

        from matpo_gym.trainers.rl import RLTrainer
        from matpo_gym.trainers.sharding import full_model_state, full_parameters, optimizer_state

        trainer = RLTrainer(config(model_dir, out, "fsdp"))
        trainer.setup()
        params = list(trainer.model.parameters())
        report["dtensors"] = all(isinstance(p, DTensor) for p in params)
        report["local"] = sum(p.to_local().numel() for p in params)
        report["total"] = sum(p.numel() for p in params)

        prompt = torch.tensor([[5, 6, 7]])
        with full_parameters(trainer.model), counted_collectives() as calls, torch.inference_mode():
            lengths = []
            for _ in range(1 + rank):  # process 1: two calls, each 30 tokens longer than process 0's one
                new = 4 + 30 * rank
                out_ids = trainer.model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=True,
                                                 max_new_tokens=new, min_new_tokens=new, pad_token_id=0)
                lengths.append(out_ids.shape[1] - prompt.shape[1])
        report["generated"], report["generation_collectives"] = lengths, list(calls)

        share = [q for q in range(GROUPS) if q % 2 == rank]
        with counted_collectives() as calls:
            stats = trainer.update(episodes(share))
        report["update"] = {k: stats[k] for k in ("grad_norm", "samples", "trained_tokens", "loss", "clip_fraction")}
        report["update_collectives"] = len(calls)
        weights = full_model_state(trainer.model)
        grads = {name: p.grad.full_tensor() for name, p in trainer.model.named_parameters()}
        before = optimizer_state(trainer.model, trainer.optimizer)
        if rank == 0:
            torch.save({"weights": weights, "grads": grads}, out / "sharded-step.pt")

        trainer.save(1)
        resumed = RLTrainer(config(model_dir, out, "fsdp", steps=2))
        resumed.setup()
        report["start_step"] = resumed.start_step
        after = optimizer_state(resumed.model, resumed.optimizer)
        if rank == 0:
            report["optimizer_restored"] = state_equal(before, after)
        report["row"] = resumed.train()

        from matpo_gym.trainers import main

        for batch in SFT_BATCHES:  # 3: process 0 trains 2 demonstrations, process 1 one; 1: process 1 none
            main(sft_config(model_dir, out / f"sft-{batch}", "fsdp", batch))
        queue.put((rank, report, None))
    except BaseException:  # noqa: BLE001 - the parent reports it
        queue.put((rank, report, traceback.format_exc()))
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def state_equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(state_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(state_equal(x, y) for x, y in zip(a, b))
    return a == b


def run_processes(target, args, count: int) -> dict[int, dict]:
    """Start ``count`` processes and collect their reports; a hang fails after TIMEOUT seconds."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    port = free_port()
    processes = [context.Process(target=target, args=(rank, port, *args, queue)) for rank in range(count)]
    for process in processes:
        process.start()
    reports: dict[int, dict] = {}
    try:
        for _ in processes:
            rank, report, error = queue.get(timeout=TIMEOUT)
            assert error is None, f"process {rank}:\n{error}"
            reports[rank] = report
        for process in processes:
            process.join(timeout=30)
            assert process.exitcode == 0
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
    return reports


@pytest.fixture(scope="module")
def sharded(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("fsdp")
    return out, run_processes(session, (tiny_model_dir, out), 2)


def test_one_sharded_step_equals_the_full_replica_step(sharded, tiny_model_dir, tmp_path):
    """Clipped gradients (so the clipping norm too) agree to float32 rounding of each tensor's
    largest. AdamW's first step is about lr * sign(g), so an element whose gradient cancels to
    AdamW's eps can move differently when the sums run in another order: the weights agree to
    1e-6 except for such rare elements, and those to 2% of the step."""
    from matpo_gym.trainers.rl import RLTrainer

    out, reports = sharded
    replica = RLTrainer(config(tiny_model_dir, tmp_path, "none"))
    replica.setup()
    initial = {name: value.clone() for name, value in replica.model.state_dict().items()}
    stats = replica.update(episodes(list(range(GROUPS))))
    # every process logs the whole step's figures, not its own share's
    assert [reports[r]["update"]["samples"] for r in (0, 1)] == [12, 12] and stats["samples"] == 12
    for key in ("trained_tokens", "loss", "clip_fraction"):
        assert [reports[r]["update"][key] for r in (0, 1)] == pytest.approx([stats[key]] * 2, rel=1e-4, abs=1e-7)
    assert stats["grad_norm"] > 10 * replica.config.grad_clip  # clipping scales every gradient
    for rank in (0, 1):  # the clipping norm is the global one, on every process
        assert reports[rank]["update"]["grad_norm"] == pytest.approx(stats["grad_norm"], rel=1e-5)
    # process 1 has fewer micro-batches; padded, it gathers and reduces as often as process 0
    assert reports[0]["update_collectives"] == reports[1]["update_collectives"] > 0
    sharded_step = torch.load(out / "sharded-step.pt")
    for name, param in replica.model.named_parameters():
        scale = float(param.grad.abs().max())
        torch.testing.assert_close(sharded_step["grads"][name], param.grad, rtol=1e-4, atol=2e-5 * scale, msg=name)
    lr, loose, count = replica.config.lr, 0, 0
    for name, value in replica.model.state_dict().items():
        sharded_value = sharded_step["weights"][name]
        torch.testing.assert_close(sharded_value, value, rtol=0, atol=0.02 * lr, msg=name)
        loose += int(((sharded_value - value).abs() > 1e-6).sum())
        count += value.numel()
        assert float((value - initial[name]).abs().max()) > 0.5 * lr  # the step moved every tensor
    assert loose / count < 1e-4, loose
def test_each_process_holds_half_of_the_weights(sharded):
    _, reports = sharded
    total = reports[0]["total"]
    assert reports[0]["dtensors"] and reports[1]["dtensors"]
    for rank in (0, 1):
        assert total / 2 <= reports[rank]["local"] <= total / 2 * 1.01  # dim-0 padding at most
    assert reports[0]["local"] + reports[1]["local"] >= total


def test_processes_generating_different_lengths_issue_no_collectives(sharded):
    _, reports = sharded
    assert reports[0]["generated"] == [4] and reports[1]["generated"] == [34, 34]
    assert reports[0]["generation_collectives"] == [] and reports[1]["generation_collectives"] == []


def test_a_sharded_checkpoint_loads_with_from_pretrained_and_resumes(sharded):
    from transformers import AutoModelForCausalLM

    out, reports = sharded
    assert reports[0]["start_step"] == reports[1]["start_step"] == 1
    assert reports[0]["optimizer_restored"]
    assert reports[0]["row"]["step"] == 2 and reports[1]["row"]["step"] == 2
    loaded = AutoModelForCausalLM.from_pretrained(out / "checkpoints" / "step-1")
    saved = torch.load(out / "sharded-step.pt")["weights"]
    for name, value in loaded.state_dict().items():
        torch.testing.assert_close(value, saved[name], rtol=0, atol=0, msg=name)
    assert (out / "checkpoints" / "step-2" / "config.json").exists()
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 1 and '"step": 2' in rows[0]


@pytest.mark.parametrize("batch", SFT_BATCHES)
def test_sharded_sft_matches_one_process(sharded, tiny_model_dir, tmp_path, batch):
    from matpo_gym.trainers import main

    out, _ = sharded
    main(sft_config(tiny_model_dir, tmp_path, "none", batch))
    sharded_rows, rows = metrics(out / f"sft-{batch}"), metrics(tmp_path)
    assert [r["tokens"] for r in sharded_rows] == [r["tokens"] for r in rows] and len(rows) == 2
    assert [r["loss"] for r in sharded_rows] == pytest.approx([r["loss"] for r in rows], rel=1e-5)
    assert rows[1]["loss"] != rows[0]["loss"]


def single(rank: int, port: int, model_dir: Path, out: Path, queue) -> None:
    """One process, no launcher: FSDP over a one-process group, then a replica resuming its checkpoint."""
    try:
        from matpo_gym.trainers import main

        main(sft_config(model_dir, out, "fsdp", 2, steps=1))
        report = {"group": torch.distributed.get_world_size()}
        main(sft_config(model_dir, out, "none", 2))
        queue.put((rank, report, None))
    except BaseException:  # noqa: BLE001 - the parent reports it
        queue.put((rank, {}, traceback.format_exc()))


def test_one_process_runs_fsdp_and_a_replica_resumes_it(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    from matpo_gym.trainers import main

    report = run_processes(single, (tiny_model_dir, tmp_path / "sharded"), 1)[0]
    assert report["group"] == 1
    AutoModelForCausalLM.from_pretrained(tmp_path / "sharded" / "checkpoints" / "step-1")
    main(sft_config(tiny_model_dir, tmp_path / "straight", "none", 2))
    resumed, straight = metrics(tmp_path / "sharded"), metrics(tmp_path / "straight")
    assert [r["step"] for r in resumed] == [1, 2]  # the optimizer state, keyed by name, loads into the replica
    assert [r["loss"] for r in resumed] == pytest.approx([r["loss"] for r in straight], rel=1e-5)
