"""GRPO and MATPO: rollout -> reward -> credit -> clipped loss -> step, with one copy of the weights.

The same model generates planner and worker turns (one batched generate call per step of the
rollout) and is updated by one optimizer step on all of their tokens. The two algorithms differ
only in credit assignment (:func:`~matpo_gym.trainers.advantages.assign_credit`): GRPO plays
single-agent episodes and trains the root trajectory; MATPO plays planner + worker episodes and
gives every worker its planner rollout's advantage (``worker_advantage="parent_mask"`` instead
reproduces the reference's per-token quirk, trained through :func:`token_advantage_loss`).
With ``sharding = "fsdp"`` (:mod:`~matpo_gym.trainers.sharding`) rollouts run with the full weights
gathered, and every process runs as many micro-batches, padding with zero-weight ones.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import random
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from matpo_gym.core.trajectory import EpisodeResult
from matpo_gym.envs.gym_env import MatpoEnv, stable_seed
from matpo_gym.policies.hf import resolve_device
from matpo_gym.rollout import EpisodeRequest, rollout
from matpo_gym.trainers.advantages import assign_credit
from matpo_gym.trainers.batch import Sample, collate, micro_batches, samples_from_credit
from matpo_gym.trainers.config import Aggregation, TrainConfig, run_metadata
from matpo_gym.trainers.distributed import DataParallel
from matpo_gym.trainers.loss import LossStats, policy_loss
from matpo_gym.trainers.precision import resolve_precision
from matpo_gym.trainers.provenance import warn_if_imitated
from matpo_gym.trainers.recipe import env_spec_for, held_out_tasks
from matpo_gym.trainers.schedule import learning_rate, set_learning_rate
from matpo_gym.trainers.sharding import (
    full_named_parameters,
    full_parameters,
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

log = logging.getLogger(__name__)

CURVES = ("reward", "accuracy", "eval_accuracy", "eval_sampled_reward", "clip_fraction", "approx_kl",
          "tokens_per_second")


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def token_advantage_loss(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor, token_advantages: torch.Tensor,
    mask: torch.Tensor, *, aggregation: Aggregation = "token-mean", max_tokens: int | None = None,
    ref_logprobs: torch.Tensor | None = None, **options: Any,
) -> tuple[torch.Tensor, LossStats]:
    """:func:`~matpo_gym.trainers.loss.policy_loss` with one advantage per token (``[B, T]``).

    Each token becomes a row of length one, so the clipped ratio, dual clip, KL term and token
    mean are exactly those of the ``[B, T]`` batch; ``seq-mean-token-sum-norm`` averages over rows,
    so its loss is scaled by ``T`` back to a mean over the ``B`` sequences.
    """
    width = logprobs.shape[-1]

    def column(values: torch.Tensor) -> torch.Tensor:
        return values.reshape(-1, 1)

    loss, stats = policy_loss(
        column(logprobs), column(old_logprobs), token_advantages.reshape(-1), column(mask),
        ref_logprobs=None if ref_logprobs is None else column(ref_logprobs),
        aggregation=aggregation, max_tokens=max_tokens or width, **options,
    )
    if aggregation != "token-mean":
        loss = loss * width
        stats = stats._replace(loss=float(loss.detach()))
    return loss, stats


class RLTrainer:
    """GRPO (``algo="grpo"``) or MATPO (``algo="matpo"``) on a tool-use env."""

    def __init__(self, config: TrainConfig):
        if config.algo not in ("grpo", "matpo"):
            raise ValueError(f"RLTrainer runs grpo or matpo, not {config.algo!r}.")
        self.config = config
        self.start_step = 0
        self.sharded = config.sharding == "fsdp"

    # -- setup ---------------------------------------------------------------------------------

    def setup(self) -> None:
        from matpo_gym.policies.hf import HFPolicy

        cfg = self.config
        self.noise = cfg.noise_config()  # a bad kind fails before the model loads
        self.parallel = DataParallel(cpu=cfg.device == "cpu")
        seed_everything(cfg.seed + self.parallel.rank)
        self.device = self.parallel.device if cfg.device == "auto" else resolve_device(cfg.device)
        self.checkpoints = Checkpoints(cfg.out)
        resume = self.checkpoints.latest()
        self.precision = resolve_precision(cfg.precision, self.device.type)
        self.model, self.tokenizer = load_model(str(resume or cfg.init_from or cfg.model), self.device, self.precision,
                                                sharded=self.sharded)
        if cfg.gradient_checkpointing:
            enable_activation_checkpointing(self.model)
        self.reference = self._starting_weights(resume) if cfg.kl_coef > 0 else None
        if self.sharded:
            self.model = shard_model(self.model, self.device, self.precision)
            if self.reference is not None:
                self.reference = shard_model(self.reference, self.device, self.precision)
        autocast = self.precision.autocast_dtype()
        seed = cfg.seed + 1_000_003 * self.parallel.rank
        if cfg.rollout_engine == "vllm":
            from matpo_gym.policies.vllm import VLLMPolicy

            self.policy = VLLMPolicy(
                str(resume or cfg.init_from or cfg.model), temperature=cfg.temperature,
                max_new_tokens=cfg.max_new_tokens, seed=seed,
                gpu_memory_utilization=cfg.vllm_gpu_memory_utilization, colocate=True,
            )
        else:
            self.policy = HFPolicy.from_pretrained_objects(
                self.model, self.tokenizer, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, seed=seed,
                batch_size=cfg.rollout_batch, autocast=autocast,
            )
        self.greedy = HFPolicy.from_pretrained_objects(
            self.model, self.tokenizer, temperature=0.0, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed,
            batch_size=cfg.rollout_batch, autocast=autocast,
        )
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.train_spec = env_spec_for(cfg, cfg.env)
        self.eval_spec = env_spec_for(cfg, cfg.eval_env or cfg.env)
        if self.parallel.is_main:
            warn_if_imitated(cfg.init_from or cfg.model, self.train_spec)
        self.train_tasks = list(MatpoEnv(self.train_spec, mode=cfg.mode, split="train").tasks)
        self.eval_tasks = held_out_tasks(self.eval_spec, cfg.mode, cfg.eval_questions, cfg.seed)
        self.metrics = MetricsLog(cfg.out / "metrics.jsonl")
        self.parallel.barrier()
        if resume is not None:
            state = Checkpoints.restore(resume, functools.partial(load_optimizer_state, self.model, self.optimizer))
            self.start_step = int(state["step"])
            self.metrics.truncate_after(self.start_step)
        else:
            self.metrics.truncate_after(-1)  # a fresh start redoes whatever an interrupted attempt logged

    def _starting_weights(self, resume: Path | None) -> Any:
        """The KL anchor: the weights this run started from, also when it resumes from a later
        checkpoint (anchoring to that checkpoint would let every interruption move the anchor)."""
        cfg = self.config
        if resume is None:
            reference = copy.deepcopy(self.model)
        else:
            reference, _ = load_model(str(cfg.init_from or cfg.model), self.device, self.precision,
                                      sharded=self.sharded)
        return reference.eval().requires_grad_(False)

    def _make_env(self, spec, split: str):
        return lambda: MatpoEnv(spec, mode=self.config.mode, split=split, count_tokens=self.policy.count_tokens,
                                tasks=self.train_tasks if split == "train" else self.eval_tasks, noise=self.noise)

    # -- one step ------------------------------------------------------------------------------

    def _seed(self, *purpose: object) -> int:
        """This process's sampling seed for ``purpose``: a hash, not base + offset, since a policy
        samples its k-th call with seed + k and consecutive bases would share their draws."""
        return stable_seed(*purpose, self.config.seed, self.parallel.rank) % 2**62

    def _sampling_seed(self, step: int) -> int:
        """The seed of step ``step``'s rollouts on this process: a function of the step, not of how
        many calls came before, so a resumed run draws the samples of an uninterrupted one."""
        return self._seed("rollout", step)

    def _questions(self, step: int):
        rng = random.Random(f"{self.config.seed}/{step}")
        return rng.sample(self.train_tasks, min(self.config.questions_per_step, len(self.train_tasks)))

    def collect(self, step: int) -> list[EpisodeResult]:
        """G rollouts of each question of this step."""
        cfg = self.config
        requests = [
            EpisodeRequest(task, f"{task.id}/step{step}/g{g}")
            for task in self.parallel.shard(self._questions(step))
            for g in range(cfg.group_size)
        ]
        self.policy.reseed(self._sampling_seed(step))
        self.model.eval()
        with full_parameters(self.model, enabled=getattr(self.policy, "model", None) is self.model):
            return list(rollout(self._make_env(self.train_spec, "train"), self.policy, requests,
                                batch_size=cfg.rollout_batch))

    def update(self, results: list[EpisodeResult]) -> dict[str, float]:
        """Credit, then one optimizer step per epoch over every generated token."""
        cfg = self.config
        groups = [r.episode_id.split("/step")[0] for r in results]
        credited = assign_credit(results, groups, include_workers=cfg.algo == "matpo", scale=cfg.advantage_scale)
        counted = samples_from_credit(credited, skip_zero_advantage=False, worker_advantage=cfg.worker_advantage,
                                      merge=cfg.merge_turns and cfg.aggregation == "token-mean",
                                      frozen_roles=cfg.frozen_roles)
        # without a KL term a zero-advantage sample adds no gradient, so its forward pass is skipped;
        # the mean still runs over every generated token (``counted``), or the rest would scale up
        samples = [s for s in counted if s.advantage != 0.0] if cfg.kl_coef == 0 else counted
        # logged as what was minimised: the loss as weighted into the gradient, the rest per trained token
        stats = dict.fromkeys(("loss", "clip_fraction", "approx_kl", "ref_kl"), 0.0)
        grad_norm = 0.0
        total_tokens = self.parallel.sum(sum(s.generated_tokens for s in counted))
        total_samples = self.parallel.sum(len(counted))
        trained_tokens = self.parallel.sum(sum(s.generated_tokens for s in samples))
        trained_samples = self.parallel.sum(len(samples))
        if trained_samples:
            # one normaliser for every process: Dr. GRPO's constant must not depend on the rank
            max_len = self.parallel.max(max((s.generated_tokens for s in counted), default=1))
            chunks = list(micro_batches(samples, cfg.micro_batch_tokens))
            real = len(chunks)
            if self.sharded:  # FSDP gathers in every forward: every process runs as many micro-batches
                pad = self.tokenizer.pad_token_id
                chunks += [[Sample([pad], [pad], [0.0], 0.0, "padding")]] * (self.parallel.max(real) - real)
            self.model.train()
            for _ in range(cfg.epochs_per_step):
                self.optimizer.zero_grad(set_to_none=True)
                for index, chunk in enumerate(chunks):
                    batch = collate(chunk, self.tokenizer.pad_token_id).to(self.device)
                    generated = batch.loss_mask.bool()
                    with self.precision.autocast(self.device):
                        logprobs = model_logprobs(self.model, batch.input_ids, batch.attention_mask,
                                                  cfg.temperature, generated)
                    ref = None
                    if self.reference is not None:
                        with torch.no_grad(), self.precision.autocast(self.device):
                            ref = model_logprobs(self.reference, batch.input_ids, batch.attention_mask, cfg.temperature,
                                                 generated)
                    options: dict[str, Any] = {
                        "clip_eps": cfg.clip_eps, "clip_eps_high": cfg.clip_eps_high,
                        "dual_clip": cfg.dual_clip, "ref_logprobs": ref, "kl_coef": cfg.kl_coef,
                        "aggregation": cfg.aggregation, "max_tokens": max_len,
                    }
                    if batch.token_advantages is None:
                        loss, st = policy_loss(
                            logprobs, batch.old_logprobs, batch.advantages, batch.loss_mask, **options
                        )
                    else:
                        loss, st = token_advantage_loss(
                            logprobs, batch.old_logprobs, batch.token_advantages, batch.loss_mask,
                            **options,
                        )
                    if index >= real:  # padding: FSDP's gathers and reductions run, no gradient is added
                        (loss * 0.0).backward()
                        continue
                    weight = st.tokens / total_tokens if cfg.aggregation == "token-mean" else len(chunk) / total_samples
                    (loss * weight).backward()
                    stats["loss"] += float(loss.detach()) * weight / cfg.epochs_per_step
                    for key in ("clip_fraction", "approx_kl", "ref_kl"):
                        stats[key] += getattr(st, key) * st.tokens / max(1.0, trained_tokens) / cfg.epochs_per_step
                if not self.sharded:
                    self.parallel.sum_gradients(self.model)
                grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip))
                self.optimizer.step()
            self._sync_rollout_weights()
        # every figure over all processes' samples (a process holds only its share of the batch)
        figures = {key: self.parallel.sum(value) if trained_samples else math.nan for key, value in stats.items()}
        roles = [c.trajectory.role.value for c in credited]
        extra: dict[str, float] = {}
        if cfg.worker_advantage == "parent_mask":
            rows = [s.token_advantages for s in samples if s.token_advantages and s.advantage != 0.0]
            zeroed = self.parallel.sum(sum(row.count(0.0) for row in rows))
            extra["worker_tokens_zeroed"] = zeroed / max(1.0, self.parallel.sum(sum(len(row) for row in rows)))
        return {
            **figures,
            "grad_norm": grad_norm,
            "samples": int(trained_samples),
            "trained_tokens": int(trained_tokens),
            "worker_trajectories": int(self.parallel.sum(roles.count("worker"))),
            "nonzero_advantage": self.parallel.sum(sum(c.advantage != 0 for c in credited))
            / max(1.0, self.parallel.sum(len(credited))),
            **extra,
        }

    def _sync_rollout_weights(self) -> None:
        """Push the updated weights into a separate rollout engine (vLLM); HF shares them already."""
        load = getattr(self.policy, "load_weights", None)
        if load is not None:
            load(full_named_parameters(self.model))

    def evaluate(self) -> dict[str, float]:
        """Greedy accuracy on the held-out questions; with ``eval_samples``, also the sampling
        policy's mean reward and accuracy over that many rollouts of each."""
        figures = self._held_out(self.greedy, 1, "eval")
        if self.config.eval_samples:
            figures |= self._held_out(self.policy, self.config.eval_samples, "eval_sampled")
        return figures

    def _logged_evaluation(self) -> dict[str, float]:
        """:meth:`evaluate`'s figures and the seconds it took (the report counts them as RL's time)."""
        started = time.perf_counter()
        return {**self.evaluate(), "eval_seconds": time.perf_counter() - started}

    def _held_out(self, policy: Any, samples: int, prefix: str) -> dict[str, float]:
        requests = [EpisodeRequest(task, f"{task.id}/{prefix}/s{k}")
                    for task in self.parallel.shard(self.eval_tasks) for k in range(samples)]
        # the same draws at every evaluation of a run (they pair up question by question), and
        # never a training step's
        policy.reseed(self._seed(prefix))
        self.model.eval()
        with full_parameters(self.model):
            results = list(rollout(self._make_env(self.eval_spec, "test"), policy, requests,
                                   batch_size=self.config.rollout_batch))
        outcomes = self.parallel.gather([(r.task_id, r.score, r.reward, r.stop_reason == "answer") for r in results])
        by_question: dict[str, list[float]] = {}
        for task_id, score, _, _ in outcomes:
            by_question.setdefault(task_id, []).append(score)
        return {
            f"{prefix}_accuracy": mean([o[1] for o in outcomes]),
            f"{prefix}_reward": mean([o[2] for o in outcomes]),
            f"{prefix}_answered": mean([float(o[3]) for o in outcomes]),
            # per question, in the held-out order: evaluations of one run pair up question by question
            f"{prefix}_question_scores": [mean(by_question[t.id]) for t in self.eval_tasks if t.id in by_question],
        }

    # -- the loop ------------------------------------------------------------------------------

    def train(self) -> dict[str, float]:
        cfg = self.config
        row: dict[str, Any] = {}
        if self.start_step == 0 and cfg.eval_every:
            baseline = {"step": 0, **self._logged_evaluation()}  # held-out figures before any update
            if self.parallel.is_main:
                self.metrics.write(baseline)
        bar = tqdm(range(self.start_step, cfg.steps), initial=self.start_step, total=cfg.steps,
                   desc=f"{cfg.algo} {cfg.env}", unit="step", disable=cfg.quiet or not self.parallel.is_main)
        idle_steps = 0
        for step in bar:
            set_learning_rate(self.optimizer, learning_rate(step, cfg.steps, cfg.lr, cfg.lr_schedule, cfg.warmup_steps))
            started = time.perf_counter()
            results = self.collect(step)
            rollout_seconds = time.perf_counter() - started
            row = {"step": step + 1, **self._rollout_metrics(results), "rollout_seconds": rollout_seconds}
            generated = row["generated_tokens"]
            update_started = time.perf_counter()
            row.update(self.update(results))
            row["update_seconds"] = time.perf_counter() - update_started
            idle_steps += not row.get("samples")
            row["tokens_per_second"] = generated / max(rollout_seconds, 1e-9)
            last = step + 1 == cfg.steps
            if (cfg.eval_every and (step + 1) % cfg.eval_every == 0) or last:
                row.update(self._logged_evaluation())
            if self.parallel.is_main:
                self.metrics.write(row)
            bar.set_postfix(reward=f"{row['reward']:.3f}", eval=f"{row.get('eval_accuracy', float('nan')):.3f}")
            if (cfg.save_every and (step + 1) % cfg.save_every == 0) or last:
                self.save(step + 1)
        bar.close()
        if self.parallel.is_main:
            plot_curves(self.metrics.read(), cfg.out / "curves.png", CURVES)
            if idle_steps and idle_steps == cfg.steps - self.start_step:
                log.warning("%s: none of the %d steps trained anything: every group's rollouts scored alike, so "
                            "every advantage was 0 (a model that never answers right learns nothing from RL; start "
                            "it from an SFT warm start, init_from)", cfg.out, idle_steps)
        return row

    def _rollout_metrics(self, results: list[EpisodeResult]) -> dict[str, float]:
        """Rollout figures over every process's episodes."""
        rows = self.parallel.gather([
            (r.reward, r.score, r.stop_reason == "answer", sum(len(t.turns) for t in r.trajectories),
             r.stats.workers_spawned, r.stats.context_truncations,
             sum(len(t.completion_ids or []) for tr in r.trajectories for t in tr.turns))
            for r in results
        ])
        return {
            "reward": mean([x[0] for x in rows]),
            "accuracy": mean([x[1] for x in rows]),
            "answered": mean([float(x[2]) for x in rows]),
            "turns": mean([float(x[3]) for x in rows]),
            "workers": mean([float(x[4]) for x in rows]),
            "context_truncations": sum(x[5] for x in rows),
            "generated_tokens": sum(x[6] for x in rows),
        }

    def save(self, step: int) -> None:
        extra = {"algo": self.config.algo, "worker_advantage": self.config.worker_advantage,
                 "config": run_metadata(self.config)}
        save_checkpoint(self.checkpoints, self.parallel, step, self.model, self.tokenizer, self.optimizer, extra)

    def cleanup(self) -> None:
        self.reference = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    @property
    def final_checkpoint(self) -> Path | None:
        return self.checkpoints.latest()
