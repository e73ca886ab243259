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
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal, TextIO

from matpo_gym.config import ConfigError, to_dict
from matpo_gym.envs.spec import EnvSpec, load_env_spec

Preset = Literal["cpu", "gpu", "smoke"]
METHODS = {"grpo": "single", "matpo": "matpo"}
"""Trained algorithm -> the mode it is trained and evaluated in."""


@dataclass
class ReproduceConfig:
    """MATPO vs single-agent GRPO on the offline world: SFT, RL, evaluation grid, report.

    Fields left at ``None`` take the preset's value (``cpu``: a 2-core machine in well under an
    hour; ``gpu``: a bigger model and more steps for one GPU; ``smoke``: seconds, for tests).
    """

    preset: Preset = "cpu"
    out: Path = Path("runs/reproduce")
    """Run folder: envs, model, checkpoints, metrics, evaluation records."""
    report: Path = Path("leaderboards/reproduce")
    """Report folder (Markdown, HTML, plots, JSON)."""
    report_only: bool = False
    """Rebuild the report from the records already in ``out`` without running anything."""
    base_env: str = "world-tiny"
    """Env whose prompts, tools and scoring every generated env starts from."""
    train_family: str | None = None
    """World family of the training questions (the paper trains on MuSiQue)."""
    eval_families: tuple[str, ...] | None = None
    """World families of the held-out evaluation (FRAMES-, WebWalkerQA-, GAIA-like)."""
    difficulty: str | None = None
    """Keep only questions of this difficulty (``easy``...); empty string keeps all."""
    seeds: tuple[int, ...] | None = None
    noise_rates: tuple[float, ...] | None = None
    context_sweep: tuple[int, ...] | None = None
    """Evaluation context budgets for the pressure sweep (noise 0, first eval family)."""
    eval_questions: int | None = None
    """Held-out questions per family (test split, never trained on)."""
    # pressure knobs
    filler_paragraphs: int | None = None
    """Irrelevant paragraphs per page: page length."""
    browse_max_chars: int | None = None
    context_tokens: int | None = None
    summary_chars: int | None = None
    # model
    hidden_size: int | None = None
    num_layers: int | None = None
    vocab_size: int | None = None
    num_entities: int | None = None
    """World size, shared by the envs and the tokenizer's training text."""
    # budget (identical for both methods)
    sft_steps: int | None = None
    sft_demos: int | None = None
    sft_lr: float | None = None
    sft_batch_size: int | None = None
    sft_worlds: int | None = None
    """Offline worlds the SFT demonstrations come from (more worlds, more names to copy, not memorise)."""
    sft_context_weight: float | None = None
    """SFT loss weight of the tokens the model reads (prompts, pages) relative to those it writes."""
    rl_steps: int | None = None
    questions_per_step: int | None = None
    group_size: int | None = None
    rl_lr: float | None = None
    max_new_tokens: int | None = None
    turns: int | None = None
    """Turn limit of every role (planner, worker, single agent)."""
    format_weight: float | None = None
    eval_every: int | None = None
    curve_questions: int | None = None
    """Held-out questions of the learning-curve evaluation during training."""
    curve_samples: int | None = None
    """Sampled rollouts of each curve question (the policy RL trains, at temperature 1), besides the
    greedy one: the held-out reward RL maximises, which moves before the greedy answers flip."""
    device: str = "auto"
    quiet: bool = False

    def resolved(self) -> ReproduceConfig:
        """This config with every ``None`` filled from the preset."""
        if self.preset not in PRESETS:
            raise ConfigError(f"Unknown preset {self.preset!r}; use one of {', '.join(PRESETS)}.")
        values = PRESETS[self.preset]
        filled = {f.name: values[f.name] for f in fields(self) if getattr(self, f.name) is None}
        config = replace(self, **filled)
        config.validate()
        return config

    def validate(self) -> None:
        if not self.seeds:
            raise ConfigError("reproduce: give at least one seed.")
        if not self.eval_families:
            raise ConfigError("reproduce: give at least one evaluation family.")
        bad = [r for r in self.noise_rates or () if not 0 <= r <= 1]
        if bad:
            raise ConfigError(f"reproduce: noise rate {bad[0]} is outside [0, 1].")
        for name in ("sft_steps", "rl_steps", "questions_per_step", "group_size", "eval_questions", "turns"):
            if getattr(self, name) < 1:
                raise ConfigError(f"reproduce: {name} must be at least 1, got {getattr(self, name)}.")
        if self.group_size < 2:
            raise ConfigError("reproduce: group_size must be at least 2 (advantages compare rollouts).")


PRESETS: dict[str, dict[str, Any]] = {
    "cpu": dict(
        train_family="frames", eval_families=("frames", "webwalker", "gaia"), difficulty="easy",
        seeds=(0, 1, 2), noise_rates=(0.0, 0.1, 0.2, 0.4), context_sweep=(512, 768, 1024, 1536),
        eval_questions=24, filler_paragraphs=0, browse_max_chars=1200, context_tokens=1024,
        summary_chars=300, hidden_size=256, num_layers=4, vocab_size=4096, num_entities=1500,
        sft_steps=2400, sft_demos=512, sft_lr=1e-3, sft_batch_size=8, sft_worlds=8, sft_context_weight=0.5,
        rl_steps=24, questions_per_step=8, group_size=4,
        rl_lr=5e-5, max_new_tokens=64, turns=6, format_weight=0.1, eval_every=12, curve_questions=16, curve_samples=4,
    ),
    "gpu": dict(
        train_family="musique", eval_families=("frames", "webwalker", "gaia"), difficulty="",
        seeds=(0, 1, 2), noise_rates=(0.0, 0.1, 0.2, 0.4), context_sweep=(768, 1024, 1536, 2048),
        eval_questions=100, filler_paragraphs=2, browse_max_chars=1600, context_tokens=1536,
        summary_chars=400, hidden_size=512, num_layers=8, vocab_size=4096, num_entities=1500,
        sft_steps=3000, sft_demos=2048, sft_lr=5e-4, sft_batch_size=32, sft_worlds=8, sft_context_weight=0.5,
        rl_steps=60, questions_per_step=32, group_size=8,
        rl_lr=5e-5, max_new_tokens=96, turns=6, format_weight=0.1, eval_every=10, curve_questions=64, curve_samples=4,
    ),
    "smoke": dict(
        train_family="musique", eval_families=("frames", "gaia"), difficulty="easy",
        seeds=(0, 1), noise_rates=(0.0, 0.4), context_sweep=(256, 1024),
        eval_questions=2, filler_paragraphs=0, browse_max_chars=600, context_tokens=1024,
        summary_chars=200, hidden_size=32, num_layers=1, vocab_size=1024, num_entities=60,
        sft_steps=2, sft_demos=8, sft_lr=1e-3, sft_batch_size=16, sft_worlds=1, sft_context_weight=0.5,
        rl_steps=2, questions_per_step=2, group_size=2,
        rl_lr=1e-4, max_new_tokens=12, turns=6, format_weight=0.1, eval_every=1, curve_questions=2, curve_samples=2,
    ),
}


# -- environments --------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is a JSON string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def env_toml(spec: EnvSpec) -> str:
    """An env file equal to ``spec``, prompt paths made absolute so the file works anywhere."""
    data = to_dict(spec)
    data.pop("root")
    data["prompts"] = {
        key: str((Path(spec.root) / value).resolve()) if isinstance(value, str) else value
        for key, value in data["prompts"].items()
    }
    lines = [f"{key} = {_toml_value(value)}" for key, value in data.items()
             if not isinstance(value, dict) and value is not None]
    for key, value in data.items():
        if isinstance(value, dict):
            lines += ["", f"[{key}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in value.items() if v is not None]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class EnvFiles:
    """The generated env files of one reproduction."""

    train: Path
    eval: dict[str, Path]
    """Family -> env file at the configured context budget."""
    sweep: dict[int, Path]
    """Context budget -> env file of the first eval family."""


def make_spec(config: ReproduceConfig, family: str, split: str, context_tokens: int) -> EnvSpec:
    """The base env with this reproduction's family, world and pressure knobs."""
    base = load_env_spec(config.base_env)
    difficulty = config.difficulty or None
    name = f"repro-{family}-{split}-ctx{context_tokens}"
    return replace(
        base,
        name=name,
        description=f"matpo-bench reproduce: {family}-like questions ({split} split), context {context_tokens}.",
        source=replace(base.source, kind="world", family=family, difficulty=difficulty, split=split),
        world=replace(base.world, num_entities=config.num_entities, filler_paragraphs=config.filler_paragraphs),
        tools=replace(base.tools, browse_max_chars=config.browse_max_chars),
        limits=replace(base.limits, planner_turns=config.turns, worker_turns=config.turns,
                       single_turns=config.turns, context_tokens=context_tokens,
                       summary_chars=config.summary_chars),
        scoring=replace(base.scoring, format_weight=config.format_weight),
    )


def write_envs(config: ReproduceConfig) -> EnvFiles:
    folder = config.out / "envs"
    folder.mkdir(parents=True, exist_ok=True)

    def write(spec: EnvSpec) -> Path:
        path = folder / f"{spec.name}.toml"
        path.write_text(env_toml(spec), encoding="utf-8")
        load_env_spec(str(path))  # the file must read back as the same env
        return path

    train = write(make_spec(config, config.train_family, "train", config.context_tokens))
    evals = {f: write(make_spec(config, f, "test", config.context_tokens)) for f in config.eval_families}
    first = config.eval_families[0]
    sweep = {c: write(make_spec(config, first, "test", c)) for c in config.context_sweep}
    return EnvFiles(train, evals, sweep)


# -- stages --------------------------------------------------------------------------------------


def build_model(config: ReproduceConfig) -> Path:
    from matpo_gym.models.tiny import TinyModelConfig, ensure_tiny

    hidden = config.hidden_size
    return ensure_tiny(TinyModelConfig(
        vocab_size=config.vocab_size, hidden_size=hidden, num_layers=config.num_layers,
        num_heads=max(1, hidden // 64), num_kv_heads=max(1, hidden // 128), intermediate_size=hidden * 8 // 3,
        num_entities=config.num_entities,
    ))


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


def train_sft(config: ReproduceConfig, model: Path, envs: EnvFiles) -> Path:
    from matpo_gym.trainers.config import TrainConfig

    return _train(TrainConfig(
        algo="sft", model=str(model), env=str(envs.train), out=config.out / "sft", steps=config.sft_steps,
        lr=config.sft_lr, lr_schedule="cosine", warmup_steps=min(100, config.sft_steps // 10),
        weight_decay=0.0, sft_demos=config.sft_demos,
        sft_batch_size=config.sft_batch_size, sft_mode="both",
        sft_worlds=config.sft_worlds, sft_context_weight=config.sft_context_weight,
        save_every=max(1, config.sft_steps // 4), seed=0, device=config.device, quiet=config.quiet,
    ))


def rl_config(config: ReproduceConfig, algo: str, seed: int, init: Path, envs: EnvFiles) -> Any:
    """Identical budgets for both methods: only ``algo`` (and so the mode) differs."""
    from matpo_gym.trainers.config import TrainConfig

    return TrainConfig(
        algo=algo, init_from=str(init), env=str(envs.train), eval_env=str(envs.eval[config.eval_families[0]]),
        out=config.out / f"{algo}-seed{seed}", steps=config.rl_steps,
        questions_per_step=config.questions_per_step, group_size=config.group_size, lr=config.rl_lr,
        temperature=1.0, max_new_tokens=config.max_new_tokens, eval_every=config.eval_every,
        eval_questions=config.curve_questions, eval_samples=config.curve_samples, save_every=config.rl_steps, seed=seed,
        rollout_batch=max(64, config.questions_per_step * config.group_size), device=config.device, quiet=config.quiet,
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


def model_plan(config: ReproduceConfig) -> list[tuple[str, str, int]]:
    """(method, mode, seed) of every evaluated model: the SFT warm start in both modes, then each
    seed's GRPO and MATPO."""
    return [("sft", mode, 0) for mode in ("single", "matpo")] + [
        (algo, mode, seed) for seed in config.seeds for algo, mode in METHODS.items()]


def sweep_label(config: ReproduceConfig, context_tokens: int) -> str:
    """The cell that holds the context sweep's point at ``context_tokens``: the main table's cell
    of the first family at the run's own budget (the same env, so not evaluated twice)."""
    return config.eval_families[0] if context_tokens == config.context_tokens else f"ctx{context_tokens}"


def evaluation_plan(config: ReproduceConfig, method: str = "grpo") -> list[list[tuple[str, float]]]:
    """(label, noise rate) of every evaluation cell of a model trained by ``method``, in order of
    what the report needs first: every family at the first noise rate (the main table), then the
    context sweep (label ``ctx<budget>``: few cells, and the question the setting exists for), then
    the other noise rates. Each tier is run for every model before the next starts, so a run cut
    short still has a complete main table. The SFT warm start is the table's reference row, not a
    compared method: its noise tier is empty."""
    first, *others = config.noise_rates
    sweep = [(f"ctx{ctx}", 0.0) for ctx in config.context_sweep if sweep_label(config, ctx) == f"ctx{ctx}"]
    tiers = [[(family, first) for family in config.eval_families],
             sweep,
             [] if method == "sft" else [(family, rate) for rate in others for family in config.eval_families]]
    return tiers


def evaluation_tiers(config: ReproduceConfig, envs: EnvFiles, method: str = "grpo") -> list[list[Cell]]:
    """:func:`evaluation_plan` with each cell's env file."""
    paths = {**envs.eval, **{f"ctx{ctx}": path for ctx, path in envs.sweep.items()}}
    return [[(label, paths[label], rate) for label, rate in tier] for tier in evaluation_plan(config, method)]


def evaluate(config: ReproduceConfig, model: Model, cells: list[Cell]) -> None:
    """Greedy held-out evaluation of ``model`` on ``cells`` (those already complete are skipped)."""
    import torch

    from matpo_gym.bench.run import RunConfig, run
    from matpo_gym.policies.hf import HFPolicy, load_pretrained, resolve_device, resolve_dtype
    from matpo_gym.trainers.precision import resolve_precision

    folder = config.out / "eval"
    pending = [c for c in cells if not cell_complete(config, model, c[0], c[2])]
    if not pending:
        return
    device = resolve_device(config.device)
    dtype = resolve_dtype("auto", device)
    weights, tokenizer = load_pretrained(str(model.checkpoint), device, dtype)
    # float32 weights compute as they were trained and sampled in RL: bfloat16 autocast where native
    autocast = resolve_precision("auto", device.type).autocast_dtype() if dtype == torch.float32 else None
    policy = HFPolicy.from_pretrained_objects(
        weights.eval(), tokenizer, name=f"tiny-{model.method}-{model.mode}-seed{model.seed}", temperature=0.0,
        max_new_tokens=config.max_new_tokens, seed=model.seed, batch_size=max(32, config.eval_questions),
        autocast=autocast,
    )
    for label, path, rate in pending:
        run(
            RunConfig(env=str(path), mode=model.mode, noise=rate, limit=config.eval_questions, samples=1,
                      seed=model.seed, out=folder, name=cell_name(model, label, rate), quiet=config.quiet,
                      batch_size=config.eval_questions),
            policy, stream=io.StringIO(),  # each cell's table is in the report
        )


def cell_name(model: Model, label: str, rate: float) -> str:
    """The run folder of one evaluation cell; unique, so a results store can hold every cell."""
    return f"{model.method}-{model.mode}-seed{model.seed}-{label}-noise{rate:g}"


def cell_complete(config: ReproduceConfig, model: Model, label: str, rate: float) -> bool:
    """Whether the cell's records hold every planned question."""
    path = config.out / "eval" / cell_name(model, label, rate) / f"{model.mode}.jsonl"
    if not path.is_file():
        return False
    with path.open(encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip()) >= config.eval_questions


# -- the whole pipeline --------------------------------------------------------------------------


def reproduce(config: ReproduceConfig, *, stream: TextIO | None = None) -> Path:
    """Run every missing stage, then write the report; returns the report's Markdown file."""
    from matpo_gym.bench.reproduce_report import build_report

    stream = stream or sys.stdout
    config = _from_manifest(config) if config.report_only else config.resolved()
    config.out.mkdir(parents=True, exist_ok=True)
    if not config.report_only:
        _save_manifest(config)
        record_machine(config)
        envs = write_envs(config)
        model_dir = build_model(config)
        _say(stream, f"[1/4] SFT warm start ({config.sft_steps} steps) -> {config.out / 'sft'}")
        sft = train_sft(config, model_dir, envs)
        models = []
        for method, mode, seed in model_plan(config):
            checkpoint = sft
            if method != "sft":
                folder = config.out / f"{method}-seed{seed}"
                _say(stream, f"[2/4] {method} seed {seed} ({config.rl_steps} steps) -> {folder}")
                checkpoint = _train(rl_config(config, method, seed, sft, envs))
            models.append(Model(method, mode, seed, checkpoint))
        tiers = {method: evaluation_tiers(config, envs, method) for method in ("sft", *METHODS)}
        for tier in range(3):
            for index, model in enumerate(models, 1):
                if tiers[model.method][tier]:
                    _say(stream, f"[3/4] evaluate {model.method} ({model.mode}, seed {model.seed}) "
                                 f"[tier {tier + 1}/3, model {index}/{len(models)}]")
                    evaluate(config, model, tiers[model.method][tier])
    _say(stream, f"[4/4] report -> {config.report}")
    return build_report(config)


def _say(stream: TextIO, text: str) -> None:
    print(text, file=stream, flush=True)


RUN_ONLY = ("out", "report", "report_only", "device", "quiet")
"""Settings that say where and how this invocation runs, not what the reproduction is."""

BEFORE_THE_SETTING = {"sft_batch_size": 16, "sft_context_weight": 0.0, "curve_samples": 0}
"""What a run whose manifest predates a setting used in its place (not today's preset value)."""


def _save_manifest(config: ReproduceConfig) -> None:
    """``reproduce.json``: the resolved config; a rerun with a different config is refused."""
    path = config.out / "reproduce.json"
    current = {k: v for k, v in to_dict(config).items() if k not in RUN_ONLY}
    current = json.loads(json.dumps(current, default=str))
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(k for k in current if previous.get(k) != current[k])
        if changed:
            raise ConfigError(
                f"{config.out} holds a reproduction with different settings ({', '.join(changed)}); "
                f"use another --out or delete that folder."
            )
        return
    path.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")


def machine_description(device: str) -> dict[str, str]:
    """What this invocation computes on, for the report to name (a GPU by its name)."""
    import os
    import platform

    import torch

    from matpo_gym.policies.hf import resolve_device

    where = resolve_device(device)
    if where.type == "cuda":
        name = f"{torch.cuda.get_device_name(where)} (CUDA {torch.version.cuda})"
    else:
        name = f"CPU, {os.cpu_count()} cores ({platform.processor() or platform.machine()})"
    return {"device": name, "torch": torch.__version__}


def record_machine(config: ReproduceConfig) -> None:
    """Add this machine to ``machines.json`` (a resumed run may span several)."""
    path = config.out / "machines.json"
    seen = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    entry = machine_description(config.device)
    if entry not in seen:
        path.write_text(json.dumps(seen + [entry], indent=2) + "\n", encoding="utf-8")


def rerun_command(config: ReproduceConfig) -> str:
    """The command that reruns this reproduction: the preset plus every setting that differs from it."""
    words = ["matpo-bench reproduce", f"--preset {config.preset}"]
    for name, preset_value in PRESETS[config.preset].items():
        value = getattr(config, name)
        if isinstance(value, list):
            value = tuple(value)
        if value != preset_value:
            items = value if isinstance(value, tuple) else (value,)
            words.append(f"--{name.replace('_', '-')} " + " ".join(_cli_word(v) for v in items))
    return " ".join(words)


def _cli_word(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _from_manifest(config: ReproduceConfig) -> ReproduceConfig:
    """The settings a finished reproduction ran with (a report must describe that run)."""
    saved = load_manifest(config.out)
    values = {f.name: saved[f.name] for f in fields(config) if f.name in saved and f.name not in RUN_ONLY}
    for name in ("eval_families", "seeds", "noise_rates", "context_sweep"):
        values[name] = tuple(values[name])
    values.update({name: value for name, value in BEFORE_THE_SETTING.items() if name not in saved})
    return replace(config, **values).resolved()  # any other setting newer than the run takes its preset value


def load_manifest(out: Path) -> dict[str, Any]:
    path = out / "reproduce.json"
    if not path.is_file():
        raise FileNotFoundError(f"{out} holds no reproduction (reproduce.json is missing); run matpo-bench reproduce.")
    return json.loads(path.read_text(encoding="utf-8"))


__all__ = ["PRESETS", "EnvFiles", "Model", "ReproduceConfig", "reproduce", "write_envs"]
