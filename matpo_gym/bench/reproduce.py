"""``matpo-bench reproduce``: the paper's comparison in miniature, from scratch, resumably.

One SFT warm start on scripted demonstrations, then single-agent GRPO and MATPO (planner +
worker, one model) trained from it with the same model, questions, group size, steps, token
limits and seeds, then both evaluated on held-out questions of the FRAMES-, WebWalkerQA- and
GAIA-like families at several tool-noise rates and context budgets, then a report
(:mod:`matpo_gym.bench.reproduce_report`) built only from the records those stages wrote.

Every stage writes into ``<out>/`` and is skipped when its output is complete, so an interrupted
run picks up where it stopped. The environments are written to ``<out>/envs/`` as ordinary env
files, so any stage can be rerun by hand with ``matpo-bench train`` / ``matpo-bench run``.

The pressure knobs (why MATPO should help): pages are ``filler_paragraphs`` long, a browse window
holds ``browse_max_chars``, and every model call sees at most ``context_tokens``. A single agent
carries every page it read in one context; a worker reads pages in its own context and hands the
planner a summary of at most ``summary_chars``. The report sweeps ``context_tokens`` at
evaluation to show how the gap moves with the pressure.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from matpo_gym.bench.reproduce_config import (
    METHODS,
    PRESETS,
    ReproduceConfig,
    from_manifest,
    save_manifest,
)
from matpo_gym.bench.reproduce_envs import EnvFiles, write_envs
from matpo_gym.bench.results import read_jsonl, write_bytes_atomic
from matpo_gym.config import ConfigError

# -- stages --------------------------------------------------------------------------------------


def build_model(config: ReproduceConfig) -> Path:
    from matpo_gym.models.tiny import TinyModelConfig, ensure_tiny

    hidden = config.hidden_size
    return ensure_tiny(TinyModelConfig(
        vocab_size=config.vocab_size, hidden_size=hidden, num_layers=config.num_layers,
        num_heads=max(1, hidden // 64), num_kv_heads=max(1, hidden // 128), intermediate_size=hidden * 8 // 3,
        num_entities=config.num_entities,
    ))


TURN_CHECK_QUESTIONS = 32
"""Training questions per mode whose demonstrations :func:`check_turn_budget` measures."""


def longest_demonstrated_turn(config: ReproduceConfig, envs: EnvFiles, model: Path) -> int:
    """Tokens of the longest turn the demonstrator plays on a sample of each SFT stage's questions,
    in the model's own tokenizer and template (its end-of-turn token included)."""
    from transformers import AutoTokenizer

    from matpo_gym.envs.spec import load_env_spec
    from matpo_gym.trainers.sft import world_demonstrations

    tokenizer = AutoTokenizer.from_pretrained(model)
    stages = dict.fromkeys([envs.sft] + ([envs.sft_tune] if config.sft_tune_steps else []))  # once each
    demos = [demo for env in stages for demo in world_demonstrations(
        load_env_spec(str(env)), tokenizer, ("matpo", "single"), TURN_CHECK_QUESTIONS, 0, config.decompose)]
    return max((d.longest_turn for d in demos), default=0)


def check_turn_budget(config: ReproduceConfig, envs: EnvFiles, model: Path, stream: TextIO) -> None:
    """Refuse a ``max_new_tokens`` shorter than a demonstrated turn: the warm start would learn
    actions it can never finish in a rollout (a delegation cut before ``</tool_call>``). A run
    whose training already started under that cap resumes with it (its records are made with it),
    and is told."""
    longest = longest_demonstrated_turn(config, envs, model)
    if longest <= config.max_new_tokens:
        return
    cut = (f"the demonstrations have turns of {longest} tokens, but max_new_tokens is {config.max_new_tokens}, "
           "so generation cuts those actions off")
    if (config.out / "sft" / "metrics.jsonl").is_file():
        _say(stream, f"warning: {cut}; this run trained with that cap, so it resumes with it.")
        return
    raise ConfigError(f"reproduce: {cut}; give --max-new-tokens {longest} or more.")


def _checkpoint(out: Path, steps: int) -> Path | None:
    """The finished run's last checkpoint, or None while the run is incomplete."""
    path = out / "checkpoints" / f"step-{steps}"
    return path if path.is_dir() else None


def _train(train_config: Any) -> Path:
    from matpo_gym.trainers import main as train_main

    done = _checkpoint(train_config.out, train_config.steps)
    if done is None:
        train_main(train_config)
        done = _checkpoint(train_config.out, train_config.steps)
    if done is None:
        raise RuntimeError(f"Training in {train_config.out} ended without its final checkpoint.")
    return done


def train_sft(config: ReproduceConfig, model: Path, envs: EnvFiles, stream: TextIO) -> Path:
    """The warm start both methods start from: SFT on ``sft_difficulty``'s demonstrations, then,
    with ``sft_tune_steps``, a second stage on the run's own difficulty from the first one's end."""
    from matpo_gym.trainers.config import TrainConfig

    def stage(steps: int, lr: float, warmup: int, env: Path, folder: str, seed: int, **start: str) -> Any:
        return TrainConfig(
            algo="sft", env=str(env), out=config.out / folder, steps=steps, lr=lr, lr_schedule="cosine",
            warmup_steps=min(warmup, steps // 10), weight_decay=0.0, sft_demos=config.sft_demos,
            sft_batch_size=config.sft_batch_size, sft_mode="both", sft_worlds=config.sft_worlds,
            sft_context_weight=config.sft_context_weight, sft_decompose=config.decompose,
            save_every=max(1, steps // 4), seed=seed, device=config.device, precision=config.precision,
            quiet=config.quiet, **start,
        )

    _say(stream, f"[sft] SFT warm start ({config.sft_steps} steps) -> {config.out / 'sft'}")
    first = _train(stage(config.sft_steps, config.sft_lr, 100, envs.sft, "sft", 0, model=str(model)))
    if not config.sft_tune_steps:
        return first
    _say(stream, f"[sft] SFT second stage ({config.sft_tune_steps} steps) -> {config.out / 'sft-tune'}")
    return _train(stage(config.sft_tune_steps, config.sft_tune_lr, 50, envs.sft_tune, "sft-tune", 1,
                        init_from=str(first)))


def rl_config(config: ReproduceConfig, algo: str, seed: int, init: Path, envs: EnvFiles) -> Any:
    """Identical budgets for both methods: only ``algo`` (and so the mode) differs."""
    from matpo_gym.trainers.config import TrainConfig

    return TrainConfig(
        algo=algo, init_from=str(init), env=str(envs.train), eval_env=str(envs.eval[config.eval_families[0]]),
        out=config.out / f"{algo}-seed{seed}", steps=config.rl_steps,
        questions_per_step=config.questions_per_step, group_size=config.group_size, lr=config.rl_lr,
        kl_coef=config.rl_kl_coef,
        temperature=1.0, max_new_tokens=config.max_new_tokens, eval_every=config.eval_every,
        eval_questions=config.curve_questions, eval_samples=config.curve_samples,
        save_every=max(1, config.rl_steps // 3), seed=seed,  # an interrupted run loses a third at most
        rollout_batch=max(64, config.questions_per_step * config.group_size), rollout_engine=config.rollout_engine,
        device=config.device, precision=config.precision, quiet=config.quiet,
    )


@dataclass(frozen=True)
class Model:
    """A model to evaluate: which training produced it, and the mode it plays."""

    method: str
    """``sft`` (the shared warm start), ``grpo`` or ``matpo``."""
    mode: str
    seed: int
    checkpoint: Path


Cell = tuple[str, Path, float]
"""(label, env file, noise rate) of one evaluation run."""


SFT_SEED = 0
"""Seed of the SFT warm start's evaluation on every cell."""


def sft_seeds(seeds: Sequence[int]) -> tuple[int, ...]:
    """Seeds the warm start is evaluated under, given the RL ``seeds``: :data:`SFT_SEED` on every
    cell, each RL seed on the sampled cell. A cell's questions are drawn with its seed, so RL's
    change under sampling pairs each trained seed's questions with the warm start's answers to the
    same questions."""
    return (SFT_SEED, *(seed for seed in seeds if seed != SFT_SEED))


def model_plan(config: ReproduceConfig) -> list[tuple[str, str, int]]:
    """(method, mode, seed) of every evaluated model: the SFT warm start in both modes (see
    :func:`sft_seeds`), then each seed's GRPO and MATPO."""
    return [("sft", mode, seed) for seed in sft_seeds(config.seeds) for mode in ("single", "matpo")] + [
        (algo, mode, seed) for seed in config.seeds for algo, mode in METHODS.items()]


def sweep_label(config: ReproduceConfig, context_tokens: int) -> str:
    """The cell that holds the context sweep's point at ``context_tokens``: the main table's cell
    of the first family at the run's own budget (the same env, so not evaluated twice)."""
    return config.eval_families[0] if context_tokens == config.context_tokens else f"ctx{context_tokens}"


SAMPLED = "sampled"
"""Label of the cell that plays the first family with the sampling policy, ``eval_samples`` times
a question."""


def evaluation_plan(config: ReproduceConfig, method: str = "grpo",
                    seed: int = SFT_SEED) -> list[list[tuple[str, float]]]:
    """(label, noise rate) of every evaluation cell of a model trained by ``method``, in order of
    what the report needs first: every family at the first noise rate (the main table), the sampled
    cell (the held-out reward RL maximises), then the context sweep (label ``ctx<budget>``: few
    cells, and the question the setting exists for), then the other noise rates (see
    :data:`EARLY_TIERS` for when each tier runs). The SFT warm start is the table's reference row,
    not a compared method: its noise tier is empty, and under seeds other than :data:`SFT_SEED` it
    plays only the sampled cell."""
    first, *others = config.noise_rates
    sweep = [(f"ctx{ctx}", 0.0) for ctx in config.context_sweep if sweep_label(config, ctx) == f"ctx{ctx}"]
    tiers = [[(family, first) for family in config.eval_families],
             [(SAMPLED, 0.0)] if config.eval_samples else [],
             sweep,
             [] if method == "sft" else [(family, rate) for rate in others for family in config.eval_families]]
    if method == "sft" and seed != SFT_SEED:
        return [[cell for cell in tier if cell[0] == SAMPLED] for tier in tiers]
    return tiers


def evaluation_tiers(config: ReproduceConfig, envs: EnvFiles, method: str = "grpo",
                     seed: int = SFT_SEED) -> list[list[Cell]]:
    """:func:`evaluation_plan` with each cell's env file."""
    paths = {**envs.eval, SAMPLED: envs.eval[config.eval_families[0]],
             **{f"ctx{ctx}": path for ctx, path in envs.sweep.items()}}
    return [[(label, paths[label], rate) for label, rate in tier] for tier in evaluation_plan(config, method, seed)]


def evaluate(config: ReproduceConfig, model: Model, cells: list[Cell]) -> None:
    """Held-out evaluation of ``model`` on ``cells`` (those already complete are skipped): greedy,
    except the sampled cell."""
    import torch

    from matpo_gym.bench.run import RunConfig, run
    from matpo_gym.policies.hf import HFPolicy, load_pretrained, resolve_device, resolve_dtype
    from matpo_gym.trainers.precision import resolve_precision

    folder = config.out / "eval"
    pending = [c for c in cells if not cell_complete(config, model, c[0], c[2])]
    if not pending:
        return
    device = resolve_device(config.device)
    plan = resolve_precision(config.precision, device.type)
    # auto: bfloat16 weights on CUDA; else the weights' training dtype
    dtype = resolve_dtype("auto", device) if config.precision == "auto" else plan.weight_dtype()
    weights, tokenizer = load_pretrained(str(model.checkpoint), device, dtype)
    # float32 weights compute as they were trained and sampled in RL: bfloat16 autocast under bf16-mixed
    autocast = plan.autocast_dtype() if dtype == torch.float32 else None
    for label, path, rate in pending:
        samples = cell_samples(config, label)
        policy = HFPolicy.from_pretrained_objects(
            weights.eval(), tokenizer, name=f"tiny-{model.method}-{model.mode}-seed{model.seed}",
            temperature=1.0 if label == SAMPLED else 0.0, max_new_tokens=config.max_new_tokens, seed=model.seed,
            batch_size=max(32, config.eval_questions), autocast=autocast,
        )
        run(
            RunConfig(env=str(path), mode=model.mode, noise=rate, limit=config.eval_questions, samples=samples,
                      seed=model.seed, out=folder, name=cell_name(model, label, rate), quiet=config.quiet,
                      batch_size=config.eval_questions * samples),
            policy, stream=io.StringIO(),  # each cell's table is in the report
        )


def cell_samples(config: ReproduceConfig, label: str) -> int:
    """Episodes per question of a cell: ``eval_samples`` in the sampled cell, else one (greedy)."""
    return config.eval_samples if label == SAMPLED else 1


def cell_name(model: Model, label: str, rate: float) -> str:
    """The run folder of one evaluation cell; unique, so a results store can hold every cell."""
    return f"{model.method}-{model.mode}-seed{model.seed}-{label}-noise{rate:g}"


def cell_records_file(out: Path, model: Model, label: str, rate: float) -> Path:
    """The records file ``matpo-bench run`` writes for one evaluation cell of the run in ``out``."""
    return out / "eval" / cell_name(model, label, rate) / f"{model.mode}.jsonl"


def cell_complete(config: ReproduceConfig, model: Model, label: str, rate: float) -> bool:
    """Whether the cell's records hold every planned question."""
    records, _ = read_jsonl(cell_records_file(config.out, model, label, rate))  # a line cut by a crash is no record
    return len(records) >= config.eval_questions * cell_samples(config, label)


EARLY_TIERS = 3
"""Tiers each seed's models are evaluated on as soon as they are trained (the main table, the
sampled cell, the context sweep); the other noise rates wait until every seed is trained, so a
run cut short during RL still reports every seed it finished, both methods alike."""


def _evaluate_tiers(config: ReproduceConfig, models: list[Model], envs: EnvFiles,
                    tiers: slice, stream: TextIO) -> None:
    """Evaluate ``models`` tier by tier (every model on a tier before the next tier starts)."""
    plans = [evaluation_tiers(config, envs, model.method, model.seed) for model in models]
    count = len(plans[0]) if plans else 0
    for tier in range(count)[tiers]:
        for index, (model, plan) in enumerate(zip(models, plans), 1):
            if plan[tier]:
                _say(stream, f"[eval] evaluate {model.method} ({model.mode}, seed {model.seed}) "
                             f"[tier {tier + 1}/{count}, model {index}/{len(models)}]")
                evaluate(config, model, plan[tier])


# -- the whole pipeline --------------------------------------------------------------------------


def reproduce(config: ReproduceConfig, *, stream: TextIO | None = None) -> Path:
    """Run every missing stage, then write the report; returns the report's Markdown file."""
    from matpo_gym.bench.reproduce_report import build_report

    stream = stream or sys.stdout
    config = from_manifest(config) if config.report_only else config.resolved()
    config.out.mkdir(parents=True, exist_ok=True)
    if not config.report_only:
        save_manifest(config, write=False)  # another reproduction in this folder is refused first
        envs = write_envs(config)
        model_dir = build_model(config)
        check_turn_budget(config, envs, model_dir, stream)
        save_manifest(config)  # a refused setting leaves no manifest behind: a corrected rerun starts afresh
        record_machine(config)
        sft = train_sft(config, model_dir, envs, stream)
        early, late = slice(0, EARLY_TIERS), slice(EARLY_TIERS, None)
        models = [Model(method, mode, seed, sft) for method, mode, seed in model_plan(config) if method == "sft"]
        _evaluate_tiers(config, models, envs, early, stream)
        for seed in config.seeds:
            trained = []
            for method, mode in METHODS.items():
                folder = config.out / f"{method}-seed{seed}"
                _say(stream, f"[rl] {method} seed {seed} ({config.rl_steps} steps) -> {folder}")
                trained.append(Model(method, mode, seed, _train(rl_config(config, method, seed, sft, envs))))
            _evaluate_tiers(config, trained, envs, early, stream)
            models += trained
        _evaluate_tiers(config, models, envs, late, stream)
    _say(stream, f"[report] report -> {config.report}")
    return build_report(config)


def _say(stream: TextIO, text: str) -> None:
    print(text, file=stream, flush=True)


def machine_description(device: str, precision: str = "auto") -> dict[str, str]:
    """What this invocation computes on and in, for the report to name: a GPU by its name, a CPU
    by its model (a cpu-preset SFT step takes 0.6-0.85 s on 2 cores of a Xeon with AMX, 1.24 s in
    float32 on 2 cores of an AMD EPYC), and the precision training and evaluation compute in."""
    import os
    import platform

    import torch

    from matpo_gym.policies.hf import resolve_device
    from matpo_gym.trainers.precision import cpu_info, resolve_precision

    where = resolve_device(device)
    if where.type == "cuda":
        name = f"{torch.cuda.get_device_name(where)} (CUDA {torch.version.cuda})"
    else:
        name = f"{cpu_info().get('model name') or 'CPU'}, {os.cpu_count()} cores ({platform.machine()})"
    return {"device": name, "precision": resolve_precision(precision, where.type).label, "torch": torch.__version__}


def record_machine(config: ReproduceConfig) -> None:
    """Add this machine to ``machines.json`` (a resumed run may span several)."""
    path = config.out / "machines.json"
    seen = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    entry = machine_description(config.device, config.precision)
    if entry not in seen:
        write_bytes_atomic(path, (json.dumps(seen + [entry], indent=2) + "\n").encode("utf-8"))


__all__ = ["PRESETS", "EnvFiles", "Model", "ReproduceConfig", "reproduce", "write_envs"]
