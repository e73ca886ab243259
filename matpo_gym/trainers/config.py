"""Training configuration: one dataclass, read from a recipe file and overridden on the CLI."""

from __future__ import annotations

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


def run_metadata(config: TrainConfig) -> dict[str, Any]:
    """Every setting of a run, JSON-ready, for checkpoints to record how they were trained."""
    data = to_dict(config)
    data["out"] = str(config.out)
    return data


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
