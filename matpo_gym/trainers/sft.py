"""SFT warm start: imitate the scripted policy's successful episodes, planner and worker turns.

A randomly initialised model never writes a well-formed tool call, so RL has no signal to start
from. Demonstrations come from :class:`~matpo_gym.policies.scripted.SearchReadPolicy` on the
train split; only episodes it answered correctly are kept (rejection sampling). A trajectory is
one sequence when each turn's prompt (encoded by ``chat_prompt_ids``, as the policies encode it at
rollout time) extends the previous prompt and completion, which holds unless the context was
cut; otherwise it splits where the prefix breaks. The loss is
on the generated tokens (completion plus end-of-turn), plus, with ``sft_context_weight``, a
down-weighted loss on the tokens the model reads (prompts, pages), and the LM head runs on the
scored positions alone: a multi-turn demonstration costs one forward pass, not one per turn. The
logged ``loss`` is the generated tokens' mean NLL either way.

Launched on several processes, each trains on its share of every batch and the loss is a mean over
the tokens of all of them; with ``sharding = "fsdp"`` a process whose share is empty still runs a
zero-weight forward and backward, since FSDP's collectives run inside them.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import random
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from matpo_gym.core.messages import Prompt
from matpo_gym.envs.gym_env import MatpoEnv
from matpo_gym.envs.spec import EnvSpec
from matpo_gym.policies.hf import chat_prompt_ids, resolve_device
from matpo_gym.policies.scripted import SearchReadPolicy
from matpo_gym.rollout import EpisodeRequest, rollout
from matpo_gym.trainers.config import TrainConfig, run_metadata
from matpo_gym.trainers.distributed import DataParallel
from matpo_gym.trainers.precision import resolve_precision
from matpo_gym.trainers.provenance import demonstration_worlds, world_record
from matpo_gym.trainers.recipe import env_spec_for
from matpo_gym.trainers.schedule import learning_rate, set_learning_rate
from matpo_gym.trainers.sharding import (
    load_optimizer_state,
    model_logprobs,
    save_checkpoint,
    shard_model,
)
from matpo_gym.trainers.state import (
    Checkpoints,
    MetricsLog,
    enable_activation_checkpointing,
    load_model,
    plot_curves,
    seed_everything,
)


@dataclass(frozen=True, slots=True)
class Demonstration:
    """A token sequence and which of its tokens the model must learn to generate."""

    ids: list[int]
    generated: list[bool]
    role: str

    @property
    def targets(self) -> int:
        return sum(self.generated)

    @property
    def longest_turn(self) -> int:
        """Tokens of the longest generated turn (a run of targets): what a rollout's
        ``max_new_tokens`` must allow, or the model learns actions it can never finish.

        >>> Demonstration([1, 2, 3, 4, 5, 6], [False, True, True, False, True, False], "single").longest_turn
        2
        """
        longest = run = 0
        for target in self.generated:
            run = run + 1 if target else 0
            longest = max(longest, run)
        return longest


def merge_turns(turns: Sequence[tuple[list[int], list[int]]], role: str) -> list[Demonstration]:
    """One sequence per run of turns whose prompt extends everything before it.

    >>> [d.ids for d in merge_turns([([1, 2], [3]), ([1, 2, 3, 4], [5]), ([9], [8])], "single")]
    [[1, 2, 3, 4, 5], [9, 8]]
    """
    merged: list[Demonstration] = []
    ids: list[int] = []
    generated: list[bool] = []
    for prompt, completion in turns:
        if ids and prompt[: len(ids)] == ids:
            new = prompt[len(ids):]
        else:
            if ids:
                merged.append(Demonstration(ids, generated, role))
            ids, generated, new = [], [], prompt
        ids = ids + new + completion
        generated = generated + [False] * len(new) + [True] * len(completion)
    if ids:
        merged.append(Demonstration(ids, generated, role))
    return merged


def collate_demonstrations(demos: Sequence[Demonstration], pad_id: int) -> tuple[torch.Tensor, ...]:
    """Right-padded ``input_ids``, ``attention_mask`` and the loss mask of shifted targets [B, T-1]."""
    width = max(len(d.ids) for d in demos)
    input_ids = torch.full((len(demos), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(demos), width), dtype=torch.long)
    mask = torch.zeros((len(demos), width - 1), dtype=torch.bool)
    for row, demo in enumerate(demos):
        input_ids[row, : len(demo.ids)] = torch.tensor(demo.ids)
        attention[row, : len(demo.ids)] = 1
        mask[row, : len(demo.ids) - 1] = torch.tensor(demo.generated[1:], dtype=torch.bool)
    return input_ids, attention, mask


def target_weights(attention: torch.Tensor, generated: torch.Tensor, context_weight: float) -> torch.Tensor:
    """Loss weight of each shifted target [B, T-1]: 1 for generated tokens, ``context_weight`` for the
    other real tokens, 0 for padding.

    >>> target_weights(torch.tensor([[1, 1, 1, 0]]), torch.tensor([[False, True, False]]), 0.25)
    tensor([[0.2500, 1.0000, 0.0000]])
    """
    real = attention[:, 1:].bool()
    weights = torch.where(generated, 1.0, context_weight)
    return weights * real


def world_demonstrations(spec: EnvSpec, tokenizer: Any, modes: Sequence[str], demos: int,
                         seed: int, decompose: bool = False) -> list[Demonstration]:
    """The scripted policy's correctly answered episodes of one world's train split (the first
    ``demos`` questions of a seeded shuffle, per mode), as the model's template tokenises them;
    ``decompose``: its planner sends one worker per hop."""
    samples: list[Demonstration] = []
    eos = tokenizer.eos_token_id
    policy = SearchReadPolicy(decompose=decompose)
    for mode in modes:
        def make_env(mode: str = mode) -> MatpoEnv:
            return MatpoEnv(spec, mode=mode, split="train")  # type: ignore[arg-type]

        tasks = list(make_env().tasks)
        random.Random(seed).shuffle(tasks)
        requests = [EpisodeRequest(t, f"{t.id}/demo") for t in tasks[:demos]]
        for result in rollout(make_env, policy, requests, batch_size=64):
            if result.score < 1.0:
                continue
            for trajectory in result.trajectories:
                turns = []
                for turn in trajectory.turns:
                    prompt = chat_prompt_ids(tokenizer, Prompt(trajectory.role, turn.prompt, trajectory.id))
                    completion = tokenizer.encode(turn.completion, add_special_tokens=False)
                    if eos is not None:
                        completion.append(eos)
                    turns.append((prompt, completion))
                samples += merge_turns(turns, trajectory.role.value)
    return samples


def _cpu_only() -> None:
    """Keep a demonstration worker off the GPU: it needs none, and a library that grabs most of the
    device's memory on import (JAX does) would starve the trainer, once per worker."""
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ["JAX_PLATFORMS"] = "cpu"


class SFTTrainer:
    """Supervised fine-tuning on scripted demonstrations."""

    def __init__(self, config: TrainConfig):
        config.noise_config()  # refuses noise, which SFT's clean demonstrations would not see
        self.config = config
        self.start_step = 0
        self.sharded = config.sharding == "fsdp"

    def setup(self) -> None:
        cfg = self.config
        seed_everything(cfg.seed)
        self.parallel = DataParallel(cpu=cfg.device == "cpu")
        self.device = self.parallel.device if cfg.device == "auto" else resolve_device(cfg.device)
        self.checkpoints = Checkpoints(cfg.out)
        resume = self.checkpoints.latest()
        self.precision = resolve_precision(cfg.precision, self.device.type)
        self.model, self.tokenizer = load_model(str(resume or cfg.init_from or cfg.model), self.device, self.precision,
                                                sharded=self.sharded)
        if cfg.gradient_checkpointing:
            enable_activation_checkpointing(self.model)
        if self.sharded:
            self.model = shard_model(self.model, self.device, self.precision)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.metrics = MetricsLog(cfg.out / "metrics.jsonl")
        self.spec = env_spec_for(cfg, cfg.env)
        specs = self.demonstration_specs()
        if not cfg.quiet and self.parallel.is_main:
            print(f"sft: playing up to {cfg.sft_demos:,} scripted episodes per mode in each of {len(specs)} "
                  "world(s) for the demonstrations...", file=sys.stderr, flush=True)
        self.samples = self.collect(specs)
        # what every checkpoint of this run records it imitated (its start's record is read once)
        self.imitated = world_record(specs, cfg.init_from or cfg.model)
        if not self.samples:
            raise RuntimeError("The scripted policy solved no training question; no demonstrations to learn from.")
        if resume is not None:
            load = functools.partial(load_optimizer_state, self.model, self.optimizer)
            self.start_step = int(Checkpoints.restore(resume, load)["step"])
            self.metrics.truncate_after(self.start_step)
        else:
            self.metrics.truncate_after(-1)  # a fresh start redoes whatever an interrupted attempt logged

    def demonstration_specs(self) -> list[EnvSpec]:
        """The env, plus ``sft_worlds - 1`` more offline worlds (world seeds after the env's own).

        A tiny model imitating one world memorises its few hundred names instead of learning to
        copy a name from its prompt; worlds with other names make copying the only way to fit.
        """
        if self.config.sft_worlds > 1 and self.spec.source.kind != "world":
            raise ValueError(f"sft_worlds > 1 needs an offline-world env; {self.spec.name!r} is not one.")
        return demonstration_worlds(self.spec, self.config.sft_worlds)

    def demonstrations(self, spec: EnvSpec) -> list[Demonstration]:
        """Trajectories of correctly answered scripted episodes, tokenised with the model's template."""
        cfg = self.config
        return world_demonstrations(spec, self.tokenizer, self._modes(), cfg.sft_demos, cfg.seed, cfg.sft_decompose)

    def collect(self, specs: Sequence[EnvSpec]) -> list[Demonstration]:
        """Every world's demonstrations, the worlds played in parallel processes (building a world's
        search index, parsing its pages and templating every turn is single-threaded CPU work)."""
        cfg = self.config
        args = [(spec, self.tokenizer, self._modes(), cfg.sft_demos, cfg.seed, cfg.sft_decompose) for spec in specs]
        workers = min(len(specs), os.cpu_count() or 1)
        if workers < 2:
            return [d for a in args for d in world_demonstrations(*a)]
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_cpu_only) as pool:
            return [d for part in pool.map(world_demonstrations, *zip(*args)) for d in part]

    def _modes(self) -> list[str]:
        return ["matpo", "single"] if self.config.sft_mode == "both" else [self.config.sft_mode]

    def train(self) -> dict[str, float]:
        cfg = self.config
        rng = random.Random(cfg.seed)
        order: list[int] = []

        def next_batch() -> list[Demonstration]:
            """The next batch of an endless sequence of shuffled passes over the samples."""
            while len(order) < cfg.sft_batch_size:
                order.extend(rng.sample(range(len(self.samples)), len(self.samples)))
            chunk = [self.samples[i] for i in order[: cfg.sft_batch_size]]
            del order[: cfg.sft_batch_size]
            return chunk

        for _ in range(self.start_step):  # a resumed run continues the data order where it stopped
            next_batch()
        row: dict[str, Any] = {}
        bar = tqdm(range(self.start_step, cfg.steps), initial=self.start_step, total=cfg.steps,
                   desc=f"sft {cfg.env}", unit="step", disable=cfg.quiet or not self.parallel.is_main)
        pad = self.tokenizer.pad_token_id
        padding = Demonstration([pad, pad], [False, True], "padding")
        for step in bar:
            share = self.parallel.shard(next_batch())  # each process trains on its share of the batch
            set_learning_rate(self.optimizer, learning_rate(step, cfg.steps, cfg.lr, cfg.lr_schedule, cfg.warmup_steps))
            started = time.perf_counter()
            self.model.train()
            input_ids, attention, mask = (t.to(self.device) for t in collate_demonstrations(share or [padding], pad))
            weights = target_weights(attention, mask, cfg.sft_context_weight)
            scored = weights > 0
            with self.precision.autocast(self.device):
                all_logprobs = model_logprobs(self.model, input_ids, attention, positions=scored)
            logprobs = all_logprobs[mask]
            tokens = self.parallel.sum(float(mask.sum()) if share else 0.0)
            weight = self.parallel.sum(float(weights.sum()) if share else 0.0)
            # a share-less process joins FSDP's collectives with a zero loss
            loss = -(all_logprobs * weights)[scored].sum() / weight * (1.0 if share else 0.0)
            generated_loss = -logprobs.sum().item() / tokens if share else 0.0
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if not self.sharded:
                self.parallel.sum_gradients(self.model)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            with torch.no_grad():
                correct = float((logprobs.exp() > 0.5).sum()) if share else 0.0
            row = {"step": step + 1, "loss": self.parallel.sum(generated_loss),
                   "token_accuracy": self.parallel.sum(correct) / tokens, "tokens": int(tokens),
                   "lr": self.optimizer.param_groups[0]["lr"],
                   "seconds": time.perf_counter() - started}
            if self.parallel.is_main:
                self.metrics.write(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}")
            last = step + 1 == cfg.steps
            if (cfg.save_every and (step + 1) % cfg.save_every == 0) or last:
                self.save(step + 1)
        bar.close()
        if self.parallel.is_main:
            plot_curves(self.metrics.read(), cfg.out / "curves.png", ("loss", "token_accuracy"))
        return row

    def save(self, step: int) -> None:
        save_checkpoint(self.checkpoints, self.parallel, step, self.model, self.tokenizer, self.optimizer,
                        {"algo": "sft", "config": run_metadata(self.config),
                         "imitated_worlds": self.imitated})

    def cleanup(self) -> None:
        pass


__all__ = ["SFTTrainer"]
