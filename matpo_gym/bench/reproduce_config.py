"""What a reproduction is: its settings, the presets that fill them, and the manifest that pins
them to a run folder (a rerun with other settings into the same folder is refused)."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from matpo_gym.bench.results import write_bytes_atomic
from matpo_gym.config import ConfigError, to_dict
from matpo_gym.trainers.precision import PRECISIONS, Precision

Preset = Literal["cpu", "pressure", "gpu", "smoke"]
ContextLimit = Literal["window", "total"]
CONTEXT_LIMITS: tuple[str, ...] = ("window", "total")
METHODS = {"grpo": "single", "matpo": "matpo"}
"""Trained algorithm -> the mode it is trained and evaluated in."""


@dataclass
class ReproduceConfig:
    """MATPO vs single-agent GRPO on the offline world: SFT, RL, evaluation grid, report.

    Fields left at ``None`` take the preset's value (``cpu``: one-hop questions on a 2-core CPU
    machine, a few hours; ``pressure``: the same budget on two-hop questions under a context cap a
    single agent's pages overflow and one worker per hop fits, from a warm start that learned the
    one-hop questions first; ``gpu``: a bigger model and more steps for one GPU; ``smoke``:
    the whole pipeline on a 1-layer model, a minute or two on 2 idle cores, for tests).
    """

    preset: Preset = "cpu"
    """Which preset fills every setting left out (see above)."""
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
    rl_world_seed: int | None = None
    """World seed of RL training and of every held-out evaluation. SFT imitates the training
    questions of the base env's world and the ``sft_worlds - 1`` after it; RL on those would train
    on answers learned by heart, so it trains (and everything is evaluated) on a world none of the
    demonstrations come from."""
    seeds: tuple[int, ...] | None = None
    """RL seeds: each trains both methods from the same warm start (at least 3 for the report's intervals)."""
    noise_rates: tuple[float, ...] | None = None
    """Tool-noise rates of the evaluation grid; the first must be 0."""
    context_sweep: tuple[int, ...] | None = None
    """Evaluation context budgets for the pressure sweep (noise 0, first eval family)."""
    eval_questions: int | None = None
    """Held-out questions per family (test split, never trained on)."""
    eval_samples: int | None = None
    """Sampled episodes per question (temperature 1, the policy RL trains) of the first family at
    noise 0, besides the greedy grid: the held-out reward RL maximises. 0 skips that cell."""
    filler_paragraphs: int | None = None
    """Irrelevant paragraphs per page: page length."""
    browse_max_chars: int | None = None
    """Characters of a page one browse call returns (the rest is on its next pages)."""
    search_top_k: int | None = None
    """Results per search call."""
    context_tokens: int | None = None
    """Context budget of every role in training and the main evaluation (see ``context_limit``)."""
    context_limit: ContextLimit | None = None
    """How ``context_tokens`` binds. ``window``: each call's prompt is fitted to it by dropping the
    middle of the conversation (a worker over it is asked for its summary). ``total``: every role's
    whole conversation is also capped at it, as in a real context window (the paper's setting): a
    single agent or planner over it is stopped, a worker asked for its summary."""
    summary_chars: int | None = None
    """Longest worker report the planner reads (characters; longer ones are cut)."""
    decompose: bool | None = None
    """SFT's scripted planner sends one worker per hop, so each worker reads one page and the
    planner only their reports; off, one worker gets the whole question and reads every page."""
    hidden_size: int | None = None
    """Width of the tiny Llama built for the run."""
    num_layers: int | None = None
    """Its decoder layers."""
    vocab_size: int | None = None
    """Its tokenizer's vocabulary, trained on an offline world no env plays."""
    num_entities: int | None = None
    """World size, shared by the envs and the tokenizer's training text."""
    sft_steps: int | None = None
    """Steps of the first SFT stage (this and every budget below is the same for both methods)."""
    sft_difficulty: str | None = None
    """Difficulty of the SFT demonstrations' questions (``""`` keeps all); easier than
    ``difficulty``, SFT is a curriculum: a tiny model that imitates two-hop questions from scratch
    learns to split them but never to read a value off a page; one that first learned one-hop
    questions does."""
    sft_tune_steps: int | None = None
    """Steps of a second SFT stage, from the first one's end, on demonstrations of the run's own
    ``difficulty`` (0: one stage). The warm start both methods start from is its end."""
    sft_tune_lr: float | None = None
    """Peak learning rate of the second stage (cosine schedule, as the first)."""
    sft_demos: int | None = None
    """Scripted episodes per mode and world the demonstrations come from (the correct ones are kept)."""
    sft_lr: float | None = None
    """Peak learning rate of the first SFT stage (cosine schedule)."""
    sft_batch_size: int | None = None
    """Demonstrations per SFT step."""
    sft_worlds: int | None = None
    """Offline worlds the SFT demonstrations come from (more worlds, more names to copy, not memorise)."""
    sft_context_weight: float | None = None
    """SFT loss weight of the tokens the model reads (prompts, pages) relative to those it writes."""
    rl_steps: int | None = None
    """RL steps of each method and seed."""
    questions_per_step: int | None = None
    """Training questions per RL step."""
    group_size: int | None = None
    """Rollouts per question (G): advantages compare them."""
    rl_lr: float | None = None
    """RL learning rate (constant)."""
    rl_kl_coef: float | None = None
    """KL penalty to the SFT warm start. At a constant lr, RL's held-out gain peaks and then fades
    as the policy drifts; the anchor keeps it (0 keeps no reference model)."""
    max_new_tokens: int | None = None
    """Longest turn the model may generate (refused below the longest demonstrated turn)."""
    turns: int | None = None
    """Turn limit of every role (planner, worker, single agent)."""
    format_weight: float | None = None
    """Reward share of a well-formed episode, beside correctness."""
    eval_every: int | None = None
    """RL steps between learning-curve evaluations."""
    curve_questions: int | None = None
    """Held-out questions of the learning-curve evaluation during training."""
    curve_samples: int | None = None
    """Sampled rollouts of each curve question (the policy RL trains, at temperature 1), besides the
    greedy one: the held-out reward RL maximises, which moves before the greedy answers flip."""
    device: str = "auto"
    """``auto`` (CUDA when there is one), ``cpu``, ``cuda``, ``cuda:1``..."""
    precision: Precision = "auto"
    """What training keeps and computes in, and evaluation computes in (see ``matpo-bench train
    --precision``): ``auto`` is ``bf16-mixed`` where bfloat16 is native. How a run computes, not what
    it is, so a run resumes under another; ``machines.json`` and the report name each one used."""
    rollout_engine: Literal["hf", "vllm"] = "hf"
    """RL rollouts from the trained model itself (``hf``) or a vLLM engine synced after every step
    (GPU, ``pip install "matpo-gym[vllm]"``): a tiny model's HF rollouts are bound by per-token
    latency on a GPU, so the ``gpu`` preset needs vLLM to be fast."""
    replicates: tuple[Path, ...] = ()
    """Other runs of these settings (another ``--out`` each) whose sampled changes the report pools
    with this run's: three seeds of a small preset can favour either method by chance."""
    quiet: bool = False
    """No progress bars (the stage lines still print)."""

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
        if self.noise_rates is not None and (not self.noise_rates or self.noise_rates[0] != 0):
            raise ConfigError("reproduce: the first noise rate must be 0 (the main table, the context sweep and "
                              f"the sampled cell play at noise 0), got {list(self.noise_rates)}.")
        for name in ("sft_steps", "rl_steps", "questions_per_step", "group_size", "eval_questions", "turns",
                     "search_top_k", "browse_max_chars"):
            if getattr(self, name) < 1:
                raise ConfigError(f"reproduce: {name} must be at least 1, got {getattr(self, name)}.")
        if self.group_size < 2:
            raise ConfigError("reproduce: group_size must be at least 2 (advantages compare rollouts).")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"reproduce: precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}.")
        if self.context_limit not in CONTEXT_LIMITS:
            raise ConfigError(f"reproduce: context_limit must be one of {', '.join(CONTEXT_LIMITS)}, "
                              f"got {self.context_limit!r}.")
        for name in ("eval_samples", "curve_samples", "rl_kl_coef", "sft_tune_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"reproduce: {name} must be 0 (off) or more, got {getattr(self, name)}.")


CPU_PRESET: dict[str, Any] = dict(
    train_family="frames", eval_families=("frames", "webwalker", "gaia"), difficulty="easy", rl_world_seed=100,
    seeds=(0, 1, 2), noise_rates=(0.0, 0.1, 0.2, 0.4), context_sweep=(384, 512, 768, 1024),
    eval_questions=24, eval_samples=8, filler_paragraphs=0, browse_max_chars=450, search_top_k=2,
    context_tokens=1024, context_limit="window", summary_chars=300, decompose=False,
    hidden_size=256, num_layers=4, vocab_size=4096, num_entities=1500,
    sft_steps=2400, sft_difficulty="easy", sft_tune_steps=0, sft_tune_lr=5e-4,
    sft_demos=512, sft_lr=1e-3, sft_batch_size=8, sft_worlds=8, sft_context_weight=0.5,
    rl_steps=36, questions_per_step=8, group_size=4, max_new_tokens=96,
    rl_lr=5e-5, rl_kl_coef=0.1, turns=6, format_weight=0.1, eval_every=12, curve_questions=16, curve_samples=4,
)
"""One-hop questions on a 2-core CPU: the methods where context costs nothing."""

PRESETS: dict[str, dict[str, Any]] = {
    "cpu": CPU_PRESET,
    # the cpu budget and model where context matters: two pages a question, a cap one worker per hop
    # fits, and a warm start that learned the cpu preset's one-hop questions before the two-hop ones
    "pressure": dict(CPU_PRESET, difficulty="medium", context_sweep=(640, 704, 768, 1024), context_tokens=704,
                     context_limit="total", decompose=True, sft_tune_steps=600),
    "gpu": dict(
        train_family="musique", eval_families=("frames", "webwalker", "gaia"), difficulty="", rl_world_seed=100,
        seeds=(0, 1, 2), noise_rates=(0.0, 0.1, 0.2, 0.4), context_sweep=(768, 1024, 1536, 2048),
        eval_questions=100, eval_samples=4, filler_paragraphs=2, browse_max_chars=1600, search_top_k=3,
        context_tokens=1024, context_limit="total",
        summary_chars=400, decompose=True, hidden_size=512, num_layers=8, vocab_size=4096, num_entities=1500,
        sft_steps=3000, sft_difficulty="easy", sft_tune_steps=1000, sft_tune_lr=2.5e-4,
        sft_demos=2048, sft_lr=5e-4, sft_batch_size=32, sft_worlds=8, sft_context_weight=0.5,
        rl_steps=60, questions_per_step=32, group_size=8, max_new_tokens=96,
        rl_lr=5e-5, rl_kl_coef=0.1, turns=6, format_weight=0.1, eval_every=10, curve_questions=64, curve_samples=4,
    ),
    "smoke": dict(
        train_family="musique", eval_families=("frames", "gaia"), difficulty="easy", rl_world_seed=1000,
        seeds=(0, 1), noise_rates=(0.0, 0.4), context_sweep=(256, 1024),
        eval_questions=2, eval_samples=2, filler_paragraphs=0, browse_max_chars=600, search_top_k=3,
        context_tokens=1024, context_limit="total",
        summary_chars=200, decompose=True, hidden_size=32, num_layers=1, vocab_size=1024, num_entities=60,
        sft_steps=2, sft_difficulty="easy", sft_tune_steps=1, sft_tune_lr=1e-3,
        sft_demos=8, sft_lr=1e-3, sft_batch_size=16, sft_worlds=1, sft_context_weight=0.5,
        rl_steps=2, questions_per_step=2, group_size=2, max_new_tokens=96,
        rl_lr=1e-4, rl_kl_coef=0.1, turns=6, format_weight=0.1, eval_every=1, curve_questions=2, curve_samples=2,
    ),
}


RUN_ONLY = ("out", "report", "report_only", "device", "precision", "rollout_engine", "replicates", "quiet")
"""Settings that say where and how this invocation runs, not what the reproduction is."""

BEFORE_THE_SETTING = {"sft_batch_size": 16, "sft_context_weight": 0.0, "curve_samples": 0,
                      "eval_samples": 0, "rl_kl_coef": 0.0, "search_top_k": 3, "rl_world_seed": 0,
                      "context_limit": "window", "decompose": False, "sft_tune_steps": 0, "sft_tune_lr": 5e-4}
"""What a run whose manifest predates a setting used in its place (not today's preset value): before
``rl_world_seed``, RL trained and everything was evaluated on the base env's world (world-tiny's, seed 0)."""


def before_the_setting(saved: dict[str, Any]) -> dict[str, Any]:
    """:data:`BEFORE_THE_SETTING`, and the settings whose old value was another setting's: before
    ``sft_difficulty``, SFT imitated the run's own ``difficulty``."""
    return {**BEFORE_THE_SETTING, "sft_difficulty": saved.get("difficulty")}


def save_manifest(config: ReproduceConfig, *, write: bool = True) -> None:
    """``reproduce.json``: the resolved config; a rerun with a different config is refused.
    ``write=False`` only refuses, so a new run's settings are checked before the folder is claimed."""
    path = config.out / "reproduce.json"
    current = {k: v for k, v in to_dict(config).items() if k not in RUN_ONLY}
    current = json.loads(json.dumps(current, default=str))
    if path.is_file():
        previous = read_manifest(path)
        # a setting newer than the run compares as the value the run used in its place
        before = before_the_setting(previous)
        changed = sorted(k for k in current if previous.get(k, before.get(k)) != current[k])
        if changed:
            raise ConfigError(
                f"{config.out} holds a reproduction with different settings ({', '.join(changed)}); "
                f"use another --out or delete that folder."
            )
        return
    if write:
        write_bytes_atomic(path, (json.dumps(current, indent=2) + "\n").encode("utf-8"))


def rerun_command(config: ReproduceConfig) -> str:
    """The command that reruns this reproduction: the preset plus every setting that differs from it."""
    words = ["matpo-bench reproduce", f"--preset {config.preset}"]
    defaults = {f.name: f.default for f in fields(ReproduceConfig)}
    for name in [f.name for f in fields(config) if f.name not in RUN_ONLY and f.name != "preset"]:
        preset_value = PRESETS[config.preset].get(name, defaults[name])
        if isinstance(preset_value, list):
            preset_value = tuple(preset_value)
        value = getattr(config, name)
        if isinstance(value, list):
            value = tuple(value)
        if value != preset_value:
            items = value if isinstance(value, tuple) else (value,)
            words.append(f"--{name.replace('_', '-')} " + " ".join(_cli_word(v) for v in items))
    return " ".join(words)


def _cli_word(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def from_manifest(config: ReproduceConfig) -> ReproduceConfig:
    """The settings a finished reproduction ran with (a report must describe that run)."""
    saved = load_manifest(config.out)
    values = {f.name: saved[f.name] for f in fields(config) if f.name in saved and f.name not in RUN_ONLY}
    for name in ("eval_families", "seeds", "noise_rates", "context_sweep"):
        values[name] = tuple(values[name])
    values.update({name: value for name, value in before_the_setting(saved).items() if name not in saved})
    return replace(config, **values).resolved()  # any other setting newer than the run takes its preset value


def load_manifest(out: Path) -> dict[str, Any]:
    path = out / "reproduce.json"
    if not path.is_file():
        raise FileNotFoundError(f"{out} holds no reproduction (reproduce.json is missing); run matpo-bench reproduce.")
    return read_manifest(path)


def read_manifest(path: Path) -> dict[str, Any]:
    """A ``reproduce.json``; a cut or edited one is an error that names it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is unreadable ({exc}); restore it, or delete the run folder to start over") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a reproduction manifest (a JSON object); restore it or delete the folder")
    return data


__all__ = ["METHODS", "PRESETS", "Preset", "ReproduceConfig", "from_manifest", "load_manifest", "rerun_command",
           "save_manifest"]
