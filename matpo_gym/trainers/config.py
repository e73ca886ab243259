"""Training configuration: one dataclass, read from a recipe file and overridden on the CLI."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from matpo_gym.config import ConfigError, from_dict, load_toml, to_dict
from matpo_gym.tools.noise import NoiseConfig
from matpo_gym.trainers.precision import Precision
from matpo_gym.trainers.schedule import Schedule

Algo = Literal["sft", "grpo", "matpo"]
Aggregation = Literal["token-mean", "seq-mean-token-sum-norm"]
WorkerAdvantage = Literal["scalar", "parent_mask"]
Sharding = Literal["none", "fsdp"]


@dataclass
class TrainConfig:
    """Train a model on an env: SFT on scripted demonstrations, or RL with GRPO / MATPO."""

    recipe: str | None = None
    """Recipe file (``trainers/NAME.toml`` or a name) whose ``[train]`` values are the defaults."""
    algo: Algo = "matpo"
    """``sft`` (imitate scripted demos), ``grpo`` (single agent) or ``matpo`` (planner + worker)."""
    model: str = "tiny"
    """Model path, hub name, or ``tiny`` (a small Llama built locally, no download)."""
    init_from: str | None = None
    """Start from this checkpoint folder (e.g. an SFT run's ``checkpoints/step-N``) instead of ``model``."""
    env: str = "world-frames"
    """Training env (its train split is used)."""
    eval_env: str | None = None
    """Held-out env for evaluation (its test split); defaults to ``env``."""
    out: Path = Path("runs/train")
    """Output folder: checkpoints, metrics.jsonl, curves."""
    steps: int = 20
    """Optimizer steps."""
    questions_per_step: int = 8
    """Questions per step (the paper uses 256)."""
    group_size: int = 4
    """Rollouts per question, G (the paper uses 8)."""
    lr: float = 1e-5
    """Peak learning rate (AdamW)."""
    lr_schedule: Schedule = "constant"
    """``constant`` after warmup, or ``cosine`` decay to a tenth of ``lr`` at the last step."""
    warmup_steps: int = 0
    """Steps of linear warmup to ``lr``."""
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    clip_eps: float = 0.2
    """PPO ratio clip."""
    clip_eps_high: float | None = None
    """Upper ratio clip (clip-higher); None uses ``clip_eps``."""
    dual_clip: float | None = None
    """Dual-clip constant c (e.g. 3.0); None disables it."""
    kl_coef: float = 0.0
    """KL-to-reference penalty; 0 keeps no reference model in memory."""
    aggregation: Aggregation = "token-mean"
    """Loss aggregation: ``token-mean`` or ``seq-mean-token-sum-norm`` (Dr. GRPO)."""
    advantage_scale: Literal["std", "none"] = "std"
    """Divide group advantages by their std (GRPO) or not (Dr. GRPO)."""
    worker_advantage: WorkerAdvantage = "scalar"
    """MATPO worker credit. ``scalar`` (the method): every token a worker generated gets its
    rollout's advantage. ``parent_mask`` reproduces the reference implementation, which copies the
    planner's per-token advantage row onto each worker, position for position in the two
    trajectories' responses (everything after each one's first prompt): a worker token gets the
    advantage only where the planner generated the token at the same response position, else 0."""
    frozen_roles: tuple[str, ...] = ()
    """MATPO ablation: roles (``planner``, ``worker``) whose tokens get no gradient. The weights are
    shared, so a frozen role still changes as the other learns; its tokens only stop being pushed by
    an advantage its own output did not earn (a planner relaying a worker's wrong report is
    penalised for the worker's mistake under the shared episode credit)."""
    temperature: float = 1.0
    """Sampling temperature for rollouts."""
    max_new_tokens: int = 96
    """Tokens per model turn."""
    context_tokens: int | None = None
    """Override the env's context budget (tokens of the model's own tokenizer)."""
    planner_turns: int | None = None
    worker_turns: int | None = None
    single_turns: int | None = None
    format_weight: float | None = None
    """Override the env's format-reward weight."""
    noise: float = 0.0
    """Probability that a tool call is disturbed, in training rollouts and held-out evaluation
    alike: RL under flaky tools, where an agent that retries a failed call earns more."""
    noise_kinds: str = "all"
    """Comma-separated noise kinds, or ``all`` (error, timeout, irrelevant, truncate, corrupt, shuffle)."""
    micro_batch_tokens: int = 16384
    """Padded tokens per forward/backward pass (gradient accumulation above it)."""
    merge_turns: bool = True
    """Train each run of turns whose prompts extend each other as one sequence: the same loss from
    one pass over the shared prefix. Applies under ``token-mean`` with the ``scalar`` worker
    advantage (the other settings weigh or credit each turn on its own)."""
    epochs_per_step: int = 1
    """Passes over each step's rollouts (1 keeps it on-policy)."""
    sft_demos: int = 256
    """SFT: scripted episodes to collect (successful ones are kept)."""
    sft_batch_size: int = 16
    sft_mode: Literal["matpo", "single", "both"] = "both"
    """SFT: which mode's demonstrations to imitate."""
    sft_worlds: int = 1
    """SFT: collect demonstrations in this many offline worlds (the env's, then the next seeds),
    ``sft_demos`` in each; names the model has never seen teach it to copy rather than memorise."""
    sft_context_weight: float = 0.0
    """SFT: loss weight of the tokens the model reads (prompts, tool results) relative to those it
    generates (1). 0 is completion-only SFT. A small weight (0.2-0.5) teaches a model trained from
    scratch the world's text, whose pages repeat each name several times: the copying it needs to
    put a name from its prompt into a query or an answer emerges in a fraction of the steps."""
    sft_decompose: bool = False
    """SFT: the scripted planner sends one worker per hop of a multi-hop question, so each worker
    reads one page; off, it delegates the whole question to one worker, which reads them all."""
    eval_every: int = 5
    """Evaluate on held-out questions every N steps (0: only at the end)."""
    eval_questions: int = 32
    eval_samples: int = 0
    """Also play each held-out question this many times with the sampling policy being trained
    (``temperature``): ``eval_sampled_reward`` is the held-out reward RL maximises, which moves
    long before the greedy answer flips. 0: greedy evaluation only."""
    save_every: int = 10
    """Checkpoint every N steps (0: only at the end)."""
    seed: int = 0
    device: str = "auto"
    precision: Precision = "auto"
    """``bf16-mixed`` (float32 master weights, bfloat16 autocast; ``auto`` on CUDA and on CPUs with AMX or
    AVX-512 BF16), ``fp32`` (``auto`` on other CPUs) or pure ``bf16`` (half the weight memory; updates
    under a bfloat16 step vanish)."""
    sharding: Sharding = "none"
    """``none``: every process holds a full replica of the weights, gradients and AdamW states (data
    parallel). ``fsdp``: PyTorch FSDP2 splits them over the processes, 1/N each, and gathers one
    decoder layer at a time for the forward and backward passes and all weights (16-bit under
    ``bf16-mixed``) for rollouts. One process runs it over a one-process group (no memory saved)."""
    gradient_checkpointing: bool = False
    """Recompute each decoder layer's activations in the backward pass: a layer boundary's hidden
    state is kept per layer instead of all of its activations, for about a third more compute (the
    reference turns it on; a 40,960-token call does not fit an 80 GiB GPU without it)."""
    rollout_batch: int = 64
    """Episodes played at once during rollouts."""
    rollout_engine: Literal["hf", "vllm"] = "hf"
    """Generate rollouts with the trained model itself (``hf``) or a vLLM engine (GPU) whose
    weights are synced from the trained model after every optimizer step."""
    vllm_gpu_memory_utilization: float = 0.35
    """Fraction of GPU memory vLLM may take (the trained model and optimizer need the rest)."""
    quiet: bool = False
    dry_run: bool = False
    """Validate the recipe and print what it needs (GPUs, parameters, memory, tokens per step, the
    env) without loading a model or touching a GPU, then exit."""

    @property
    def mode(self) -> Literal["matpo", "single"]:
        return "single" if self.algo == "grpo" else "matpo"

    def noise_config(self) -> NoiseConfig:
        """The tool noise of this run's rollouts; a :class:`ConfigError` for settings it cannot use."""
        if self.noise and self.algo == "sft":
            raise ConfigError("noise disturbs the tools of RL rollouts; SFT imitates scripted demonstrations "
                              "played on clean tools. Drop noise, or train with algo grpo or matpo.")
        try:
            return NoiseConfig.parse(self.noise, self.noise_kinds, self.seed)
        except ValueError as exc:
            raise ConfigError(f"noise: {exc}") from None


def check(config: TrainConfig) -> None:
    """Values a run would fail on, or learn nothing from: a one-line :class:`ConfigError`."""
    positive = ("steps", "questions_per_step", "group_size", "max_new_tokens", "micro_batch_tokens",
                "rollout_batch", "sft_demos", "sft_batch_size", "sft_worlds", "epochs_per_step")
    for name in positive:
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be at least 1, got {getattr(config, name)}")
    if config.lr <= 0:
        raise ConfigError(f"lr must be positive, got {config.lr:g}")
    if not 0 < config.clip_eps < 1:
        raise ConfigError(f"clip_eps must be in (0, 1), got {config.clip_eps:g}")
    if config.clip_eps_high is not None and config.clip_eps_high <= 0:
        raise ConfigError(f"clip_eps_high must be positive, got {config.clip_eps_high:g}")
    if config.dual_clip is not None and config.dual_clip <= 1:
        raise ConfigError(f"dual_clip must be above 1, got {config.dual_clip:g}: at or below 1 it caps "
                          "every negative-advantage token's loss at a constant, so none of them learns")
    if config.kl_coef < 0:
        raise ConfigError(f"kl_coef must be 0 (off) or more, got {config.kl_coef:g}")
    config.noise_config()
    if config.algo != "sft":
        if config.group_size < 2:
            raise ConfigError("group_size must be at least 2 for grpo/matpo: with one rollout per "
                              "question every advantage is 0 and nothing is learned")
        trained = ("planner", "worker") if config.algo == "matpo" else ("single",)
        unknown = [r for r in config.frozen_roles if r not in trained]
        if unknown:
            raise ConfigError(f"frozen_roles: {config.algo} trains the roles {', '.join(trained)}; "
                              f"{unknown[0]!r} is not one of them")
        if set(trained) <= set(config.frozen_roles):
            raise ConfigError(f"frozen_roles freezes every role {config.algo} trains; nothing would learn")
        if config.temperature <= 0:
            raise ConfigError("temperature must be positive for grpo/matpo: greedy rollouts of a "
                              "question are identical, so every advantage is 0")


def _names_a_folder(name: str) -> bool:
    """Whether ``name`` can only be a local folder: a relative or absolute path, a checkpoint, or any
    name while the hub is offline (``org/model`` may be a hub name otherwise)."""
    import os

    path = Path(name)
    return (os.environ.get("HF_HUB_OFFLINE") == "1" or name.startswith((".", "/", "~")) or len(path.parts) > 2
            or "checkpoints" in path.parts)


def recipe_writing(folder: str) -> Path | None:
    """The catalogue recipe whose ``out`` holds ``folder`` (a checkpoint another recipe writes)."""
    from matpo_gym.catalogue import search_dirs

    target = Path(folder)
    for directory in search_dirs("trainers"):
        for path in sorted(directory.glob("*.toml")):
            try:
                out = load_toml(path).get("train", {}).get("out")
            except (ConfigError, OSError):
                continue
            if out and (target == Path(out) or Path(out) in target.parents):
                return path
    return None


def check_start(config: TrainConfig) -> None:
    """The weights a run starts from exist: a missing ``init_from`` is usually another recipe's
    checkpoint not trained yet, which the error names."""
    start = config.init_from
    if start is not None and Path(start).is_dir():
        if not (Path(start) / "config.json").is_file():
            raise ConfigError(f"init_from {start} holds no config.json: give the folder of a checkpoint "
                              "(checkpoints/step-N) or of a saved model")
        return
    if start is None or not _names_a_folder(start):
        return
    writer = recipe_writing(start)
    if writer is not None:
        shown = f"trainers/{writer.name}" if writer.parent.name == "trainers" else str(writer)
        raise ConfigError(f"init_from {start} does not exist: {shown} writes it; train that first "
                          f"(matpo-bench train --recipe {shown})")
    raise ConfigError(f"init_from {start} does not exist; give the folder of a checkpoint or model")


def run_metadata(config: TrainConfig) -> dict[str, Any]:
    """Every setting of a run, JSON-ready, for checkpoints to record how they were trained."""
    data = to_dict(config)
    data["out"] = str(config.out)
    return data


RUN_RECORD = "train.json"
"""A training folder's record of the settings its checkpoints were trained with."""

HOW_NOT_WHAT = ("recipe", "out", "steps", "save_every", "device", "precision", "sharding", "gradient_checkpointing",
                "micro_batch_tokens", "rollout_batch", "rollout_engine", "vllm_gpu_memory_utilization", "quiet",
                "dry_run")
"""Settings a run may resume under other values of: where and how it computes, and how long it runs."""

PLACES = {"model": 3, "init_from": 3, "env": 2, "eval_env": 2}
"""Settings that name a file or folder, and how many of a path's last parts say what it is once the
folder has moved (``.../sft/checkpoints/step-N``, ``envs/NAME.toml``)."""


def _located(value: str, setting: str) -> Path:
    """A catalogue env name as its file; a path as it is."""
    if setting in ("env", "eval_env") and not value.endswith(".toml"):
        from matpo_gym.catalogue import CatalogueError, resolve

        try:
            return resolve("envs", value)
        except CatalogueError:
            pass
    return Path(value)


def _digest(folder: Path) -> str | None:
    """A model folder's identity: its config.json (a copy of the folder has the same one)."""
    config = folder / "config.json"
    return hashlib.sha256(config.read_bytes()).hexdigest() if config.is_file() else None


def _same_place(a: Any, b: Any, setting: str = "model") -> bool:
    """Whether two spellings of a file or folder setting name the same thing: the same file, a
    model folder and its copy, or a moved folder whose last :data:`PLACES` parts agree.

    >>> _same_place("world-tiny", "envs/world-tiny.toml", "env")
    True
    >>> _same_place("runs/r/sft/checkpoints/step-9", "/moved/r/sft/checkpoints/step-9", "init_from")
    True
    >>> _same_place("world-frames", "/tmp/exp/world-frames.toml", "env"), _same_place("tiny", "/elsewhere/tiny")
    (False, False)
    >>> _same_place("Qwen/Qwen2.5-7B", "Qwen/Qwen2.5-3B")
    False
    """
    if a is None or b is None:
        return a is b
    x, y = _located(str(a), setting), _located(str(b), setting)
    if str(a) == str(b) or x.resolve() == y.resolve():
        return True
    if x.is_dir() and y.is_dir():
        return _digest(x) is not None and _digest(x) == _digest(y)
    depth = PLACES.get(setting, 3)
    return len(x.parts) >= depth and len(y.parts) >= depth and x.parts[-depth:] == y.parts[-depth:]


def resume_changes(saved: dict[str, Any], config: TrainConfig) -> list[str]:
    """Settings of ``config`` that differ from those a folder's checkpoints were trained with
    (``saved``, its :data:`RUN_RECORD`), as ``name: old -> new``; settings newer than the record
    are skipped."""
    now = run_metadata(config)
    changes = []
    for name, value in now.items():
        if name in HOW_NOT_WHAT or name not in saved:
            continue
        old = saved[name]
        same = (_same_place(old, value, name) if name in PLACES
                else json.dumps(old) == json.dumps(value, default=str))
        if not same:
            changes.append(f"{name}: {old!r} -> {value!r}")
    return changes


def claim_out_folder(config: TrainConfig, *, write: bool = True) -> None:
    """Refuse to resume a folder whose checkpoints were trained with other settings (a copied recipe
    that kept ``out``, another algo or env), then record this run's settings in it. A folder with no
    checkpoint yet starts afresh whatever it holds. ``write=False`` only refuses (the dry run)."""
    record = Path(config.out) / RUN_RECORD
    resumes = (Path(config.out) / "checkpoints" / "latest").is_file()
    if resumes and record.is_file():
        try:
            saved = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{record} is unreadable ({exc}); delete it to resume this folder as it is") from None
        changes = resume_changes(saved if isinstance(saved, dict) else {}, config)
        if changes:
            shown = "; ".join(changes[:5]) + (f"; and {len(changes) - 5} more" if len(changes) > 5 else "")
            raise ConfigError(f"{config.out} holds checkpoints trained with other settings ({shown}); "
                              "give another --out, or delete the folder to start again")
    if write and int(os.environ.get("RANK", "0")) == 0:  # one writer under a multi-process launch
        record.parent.mkdir(parents=True, exist_ok=True)
        tmp = record.with_name(f".{RUN_RECORD}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(run_metadata(config), indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(record)


def recipe_file(recipe: str | Path) -> Path:
    """The recipe file ``recipe`` names: a path, or a name in the ``trainers/`` catalogue."""
    path = Path(recipe)
    if path.is_file():
        return path
    from matpo_gym.catalogue import resolve

    return resolve("trainers", str(recipe))


def load_recipe(path: str | Path) -> TrainConfig:
    """A recipe file: a TOML whose ``[train]`` table sets :class:`TrainConfig` fields."""
    path = recipe_file(path)
    data = load_toml(path)
    unknown = set(data) - {"train", "description", "launch"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key {sorted(unknown)[0]!r}; put settings under [train].")
    train = dict(data.get("train", {}))
    if "out" in train:
        train["out"] = Path(train["out"])
    try:
        return from_dict(TrainConfig, train)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
