"""``matpo-bench train --dry-run``: check a recipe and print what its run needs, loading nothing.

A paper-scale run is expensive to start only to learn that it cannot fit, so the plan is worked
out from files alone: the launch command (a recipe's ``launch`` key, else its first-line comment),
the model's shape (the tiny model's :class:`~matpo_gym.models.tiny.TinyModelConfig`, a local or
already cached ``config.json``, else :data:`~matpo_gym.trainers.model_shape.KNOWN_MODELS`), and the
env specs. No model is loaded, no data set is read and torch is not imported.

The memory figures are estimates, stated with their formulas. With ``sharding = "none"`` every
process keeps a full replica of the weights, gradients and AdamW states (data parallel), and the
plan also says what ``--sharding fsdp`` would need; with ``fsdp`` each process keeps 1/N of them
plus, while it generates, the full weights gathered in the compute dtype. Activations are those of
the largest forward pass, all of them kept, or with ``gradient_checkpointing`` one hidden state per
layer plus one layer's recomputed activations. HF rollouts add their key/value cache.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from matpo_gym.envs.spec import EnvSpec
from matpo_gym.trainers.config import TrainConfig, check, recipe_file
from matpo_gym.trainers.launch import Launch, read_launch
from matpo_gym.trainers.model_shape import ModelInfo, model_info
from matpo_gym.trainers.precision import PrecisionPlan, resolve_precision
from matpo_gym.trainers.recipe import env_spec_for
from matpo_gym.trainers.resume import claim_out_folder

GIB = 1024**3
REFERENCE_GPU_GIB = 80
"""Memory of the reference's GPUs (A800 80GB), the yardstick for the notes."""
ACTIVATION_BYTES_16BIT = 34
"""Bytes kept per token, per hidden unit, per layer for the backward pass in 16-bit precision with
fused attention (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
Models": s*b*h*(34 + 5*a*s/h), the attention-score term gone with flash/SDPA attention)."""


@dataclass(frozen=True)
class Plan:
    """Everything ``--dry-run`` reports about one training config."""

    config: TrainConfig
    recipe: Path | None
    launch: Launch
    model: ModelInfo
    precisions: tuple[PrecisionPlan, ...]
    """What the run trains in: one, or the GPU's and the CPU's when the device is unknown."""
    on_cpu: bool
    """Whether the run certainly trains on the CPU (``device = "cpu"`` or ``--cpu``)."""
    env: EnvSpec
    eval_env: EnvSpec
    notes: list[str] = field(default_factory=list)

    # -- the numbers ---------------------------------------------------------------------------

    @property
    def gpus(self) -> int:
        """GPUs the run uses: one per process, none when it trains on CPU."""
        return 0 if self.on_cpu else self.launch.processes

    @property
    def rollouts_per_step(self) -> int:
        return self.config.questions_per_step * self.config.group_size

    @property
    def max_turns_per_rollout(self) -> int:
        """Model calls one rollout can make: the planner's turns, and up to one worker per planner
        turn with its turns plus the summary it is asked for; or the single agent's turns."""
        limits = self.env.limits
        if self.config.mode == "single":
            return limits.single_turns
        return limits.planner_turns + limits.planner_turns * (limits.worker_turns + 1)

    @property
    def max_call_tokens(self) -> int:
        """The longest sequence of one model call: the largest prompt budget plus a full turn."""
        roles = ("single",) if self.config.mode == "single" else ("planner", "worker")
        return max(self.env.limits.context_budget(role) for role in roles) + self.config.max_new_tokens

    @property
    def activation_tokens(self) -> int:
        """Padded tokens of the largest forward pass: an SFT batch, or one RL micro-batch (a model
        call longer than ``micro_batch_tokens`` is a micro-batch of its own)."""
        if self.config.algo == "sft":
            return self.config.sft_batch_size * self.max_call_tokens
        return max(self.config.micro_batch_tokens, self.max_call_tokens)

    def state_bytes(self, precision: PrecisionPlan) -> int:
        """Weights, gradients and both AdamW moments (plus a frozen reference for the KL term)."""
        shape = self.model.shape
        weights = shape.parameters * precision.weight_bytes if shape is not None else 0
        return weights * 4 + (weights if self.config.kl_coef > 0 else 0)

    def gathered_bytes(self, precision: PrecisionPlan) -> int:
        """The full weights FSDP gathers on every process for rollouts, in the compute dtype."""
        shape = self.model.shape
        return shape.parameters * precision.compute_bytes if shape is not None else 0

    def activation_bytes(self, precision: PrecisionPlan) -> tuple[int, int, int, int]:
        """(layer bytes, their bytes per token-unit-layer, logit bytes, their bytes per token-vocab)
        of the largest forward pass: logits in the model dtype, a float32 copy and float32
        log-probabilities (the copy is skipped in float32)."""
        shape, tokens = self.model.shape, self.activation_tokens
        size = precision.compute_bytes
        if shape is None:
            return 0, 0, 0, 0
        per_layer = ACTIVATION_BYTES_16BIT * size // 2
        per_logit = 8 if size == 4 else size + 8
        if self.config.gradient_checkpointing:  # a hidden state per layer, one layer recomputed at a time
            layers = size * tokens * shape.hidden_size * shape.num_layers + per_layer * tokens * shape.hidden_size
        else:
            layers = per_layer * tokens * shape.hidden_size * shape.num_layers
        return layers, per_layer, per_logit * tokens * shape.vocab_size, per_logit

    def training_peak_bytes(self, precision: PrecisionPlan) -> tuple[int, int]:
        """(least, most) one GPU holds while it trains: its share of weights, grads and AdamW,
        the largest forward's activations and logits, and vLLM's share. RL's LM head runs on
        generated positions only: least when a micro-batch holds one call's ``max_new_tokens`` of
        them, most when every position is generated (merged turns can come close)."""
        shape, cfg = self.model.shape, self.config
        if shape is None:
            return 0, 0
        state = self.state_bytes(precision)
        held = state / self.launch.processes if cfg.sharding == "fsdp" else state
        layers, _, logits, per_logit = self.activation_bytes(precision)
        most = int(held + layers + logits + self.vllm_bytes)
        if cfg.algo == "sft":
            return most, most
        fewest = min(self.activation_tokens, cfg.max_new_tokens) * per_logit * shape.vocab_size
        return int(held + layers + fewest + self.vllm_bytes), most

    @property
    def vllm_bytes(self) -> float:
        """What a vLLM engine holds of each GPU, all through training (0 without one, and for SFT,
        which generates nothing)."""
        cfg = self.config
        if cfg.rollout_engine != "vllm" or cfg.algo == "sft":
            return 0
        return cfg.vllm_gpu_memory_utilization * REFERENCE_GPU_GIB * GIB

    def rollout_cache_bytes(self, precision: PrecisionPlan) -> int:
        """The HF engine's key/value cache for one process's share of ``rollout_batch`` sequences of
        the longest model call, in the compute dtype (0 with vLLM, whose share is set apart, and for
        SFT, which generates nothing)."""
        shape = self.model.shape
        if shape is None or self.config.rollout_engine != "hf" or self.config.algo == "sft":
            return 0
        per_token = 2 * shape.num_layers * shape.num_kv_heads * shape.head_dim * precision.compute_bytes
        return self.rollout_sequences * self.max_call_tokens * per_token

    @property
    def rollout_sequences(self) -> int:
        """Sequences one process generates at once: its share of ``rollout_batch``."""
        return math.ceil(self.config.rollout_batch / max(1, self.launch.processes))

    # -- the report ----------------------------------------------------------------------------

    def render(self) -> str:
        cfg = self.config
        lines: list[tuple[str, str]] = [("algo", self._algo()), ("launch", self.launch.command)]
        lines.append(("", self._where()))
        model = self.model
        if model.shape is None:
            lines.append(("model", f"{model.name}: size unknown ({model.source})"))
        else:
            params = model.shape.parameters
            short = f"{params / 1e9:.2f} B" if params >= 1e9 else f"{params / 1e6:.2f} M"
            about = f"{model.name}: {params:,} parameters ({short}), {model.source}"
            lines.append(("model", about))
            lines.append(("", model.shape.describe()))
            lines.extend(self._memory_lines())
        lines.extend(self._token_lines())
        saves = f"checkpoint every {cfg.save_every}" if cfg.save_every else "checkpoint at the end"
        warmup = f" after {cfg.warmup_steps} warmup steps" if cfg.warmup_steps else ""
        optimizer = (f"{cfg.steps:,} optimizer steps, AdamW lr {cfg.lr:g} {cfg.lr_schedule}{warmup}, weight decay "
                     f"{cfg.weight_decay:g}, grad clip {cfg.grad_clip:g}")
        if cfg.algo == "sft":
            lines.append(("steps", f"{optimizer}; {saves}"))
        else:
            evals = f"eval every {cfg.eval_every} steps" if cfg.eval_every else "eval at the end"
            lines.append(("steps", f"{optimizer}, temperature {cfg.temperature:g}; {evals} on "
                                   f"{cfg.eval_questions} held-out questions, {saves}"))
        lines.append(("train env", describe_env(self.env, "train")))
        if cfg.algo != "sft":
            lines.append(("eval env", describe_env(self.eval_env, "test")))
            if cfg.noise:
                lines.append(("noise", f"{cfg.noise:g} of tool calls disturbed ({cfg.noise_kinds}), in training "
                                            "rollouts and held-out play alike"))
        for index, note in enumerate(self.notes):
            lines.append(("notes" if index == 0 else "", f"- {note}"))
        title = (f"matpo-bench train --dry-run: {self.recipe or 'flags only'} "
                 "(no model loaded, no GPU touched)")
        width = max(len(label) for label, _ in lines)
        return "\n".join([title, *(f"{label:<{width}}  {text}" for label, text in lines)])

    def _algo(self) -> str:
        cfg = self.config
        if cfg.algo == "sft":
            return f"sft (imitates scripted demonstrations, mode {cfg.sft_mode})"
        roles = "single agent" if cfg.mode == "single" else "planner + worker, one model"
        worker = f"; worker advantage: {cfg.worker_advantage}" if cfg.algo == "matpo" else ""
        frozen = f"; frozen (no gradient): {', '.join(cfg.frozen_roles)}" if cfg.frozen_roles else ""
        return f"{cfg.algo} ({roles}){worker}{frozen}"

    def _where(self) -> str:
        launch = self.launch
        if self.config.device == "auto" and launch.launcher == "none":
            where = "one GPU if there is one, else CPU (device auto)"
        elif self.gpus:
            where = f"{self.gpus} GPU{'s' if self.gpus != 1 else ''}"
        else:
            where = "CPU"
        processes = f"{launch.processes} process{'es' if launch.processes != 1 else ''}"
        return f"{processes} on {launch.nodes} node{'s' if launch.nodes != 1 else ''}, {where}"

    def _memory_lines(self) -> list[tuple[str, str]]:
        cfg, n = self.config, self.launch.processes
        what = "the SFT batch" if cfg.algo == "sft" else "one micro-batch"
        lines: list[tuple[str, str]] = []
        where = "GPU" if self.gpus else "process"
        for index, precision in enumerate(self.precisions):
            dtype = precision.label
            total = self.state_bytes(precision)
            weights = total // (5 if cfg.kl_coef > 0 else 4)
            ref = f" + reference {gib(weights)}" if cfg.kl_coef > 0 else ""
            state = (f"{dtype}: weights {gib(weights)} + grads {gib(weights)} + AdamW "
                     f"{gib(2 * weights)}{ref} = {gib(total)}")
            label = "memory" if index == 0 else ""
            if cfg.sharding == "fsdp":
                processes = f"{n} process{'es' if n != 1 else ''}"
                lines.append((label, f"{state}, sharded over {processes} with FSDP: {gib(total / n)} per {where}"))
                lines.append(("", f"{dtype}: rollouts gather the full weights in {precision.compute}: "
                                  f"{gib(self.gathered_bytes(precision))} per {where} on top"))
            else:
                lines.append((label, f"{state} per process (a full replica on each, sharding = none)"))
                if n > 1:
                    lines.append(("", f"{dtype}: with --sharding fsdp over {n} processes: "
                                      f"{gib(total / n)} per {where}"))
            layers, per_layer, logits, per_logit = self.activation_bytes(precision)
            if cfg.gradient_checkpointing:
                kept = (f"gradient checkpointing: layers {gib(layers)} ({precision.compute_bytes} B x tokens x "
                        f"hidden x layers, + {per_layer} B x tokens x hidden for the layer recomputed)")
            else:
                kept = f"no recomputation: layers {gib(layers)} ({per_layer} B x tokens x hidden x layers)"
            lines.append(("", f"{dtype}: activations of {what} ({self.activation_tokens:,} tokens), {kept} "
                              f"+ logits {gib(logits)} ({per_logit} B x tokens x vocab)"))
            cache = self.rollout_cache_bytes(precision)
            if cache:
                lines.append(("", f"{dtype}: HF rollouts' key/value cache: {gib(cache)} per process "
                                  f"({self.rollout_sequences} sequences x "
                                  f"{self.max_call_tokens:,} tokens)"))
        if cfg.rollout_engine == "vllm":
            share = f"{cfg.vllm_gpu_memory_utilization:.0%}"
            lines.append(("", f"vLLM rollouts take {share} of each GPU on top"))
        for precision in self.precisions if self.gpus else ():
            least, most = self.training_peak_bytes(precision)
            if least == most:
                peak = f"{gib(most)}"
            else:
                peak = (f"{gib(least)} (a micro-batch holding one call's {cfg.max_new_tokens:,} generated tokens) "
                        f"to {gib(most)} (every position generated)")
            lines.append(("", f"{precision.label}: training peak per GPU (its share of weights, grads and AdamW, "
                              f"the activations and logits above, vLLM's share): {peak}"))
        return lines

    def _token_lines(self) -> list[tuple[str, str]]:
        cfg, limits = self.config, self.env.limits
        call = (f"tokens per model call: <= {self.max_call_tokens:,} (prompt budget + "
                f"{cfg.max_new_tokens:,} generated)")
        if cfg.algo == "sft":
            demos = (f"a batch of {cfg.sft_batch_size} trajectories from up to {cfg.sft_demos:,} "
                     f"scripted episodes per mode and world ({cfg.sft_mode}, {cfg.sft_worlds} world(s); "
                     f"{'one worker per hop; ' if cfg.sft_decompose else ''}correct ones kept)")
            return [("per step", demos), ("", call)]
        rollouts, turns = self.rollouts_per_step, self.max_turns_per_rollout
        share = math.ceil(cfg.questions_per_step / self.launch.processes) * cfg.group_size
        if cfg.mode == "single":
            shape = f"single agent <= {limits.single_turns}"
        else:
            shape = (f"planner <= {limits.planner_turns}, <= {limits.planner_turns} workers x "
                     f"({limits.worker_turns} + 1 summary turn)")
        generated = rollouts * turns * cfg.max_new_tokens
        processed = rollouts * turns * self.max_call_tokens
        return [
            ("per step", f"{cfg.questions_per_step:,} questions x G {cfg.group_size} = "
                         f"{rollouts:,} rollouts ({share:,} per process)"),
            ("", f"model turns per rollout: 1 .. {turns:,} ({shape})"),
            ("", f"generated tokens: {rollouts:,} .. {generated:,} "
                 f"(<= {rollouts:,} x {turns:,} x {cfg.max_new_tokens:,})"),
            ("", f"{call}; forward tokens per step <= {processed:,}"),
        ]


def gib(size: float) -> str:
    """A byte count in GiB (MiB below one GiB)."""
    return f"{size / GIB:,.1f} GiB" if size >= GIB else f"{size / 1024**2:,.1f} MiB"


def describe_env(spec: EnvSpec, split: str) -> str:
    """One line: the env's data, tools, limits and scoring."""
    source = spec.source
    if source.kind == "world":
        data = f"offline world, family {source.family}, split {split}"
    elif source.kind == "jsonl":
        data = f"jsonl file {source.path}"
    else:
        from matpo_gym.data.benchmarks import BENCHMARKS

        hub = BENCHMARKS.get(source.kind)
        repo = hub.repo if hub is not None else ""
        if source.path:
            where = f"local copy {source.path}"
        else:
            where = "read from the hub when training starts" if repo else "needs [source] path"
        data = f"{source.kind} ({repo or 'local files'}, split {split}; {where})"
    tools = ", ".join(spec.tools.names) or "none"
    limits = spec.limits
    return (f"{spec.name}: {data}; tools {tools} ({spec.tools.backend}); turns "
            f"{limits.planner_turns} planner / {limits.worker_turns} worker / "
            f"{limits.single_turns} single; context {limits.context_tokens:,}; scorer "
            f"{spec.scoring.scorer}, format weight {spec.scoring.format_weight:g}")


# -- the pieces ------------------------------------------------------------------------------------


def training_precisions(config: TrainConfig, launch: Launch) -> tuple[tuple[PrecisionPlan, ...], bool]:
    """(what the run trains in, whether certainly on the CPU), as the trainers resolve ``precision``."""
    if config.device == "cpu" or "--cpu" in launch.command.split():
        return (resolve_precision(config.precision, "cpu"),), True
    if config.device.startswith("cuda") or launch.launcher != "none":
        return (resolve_precision(config.precision, "cuda"),), False
    gpu, cpu = resolve_precision(config.precision, "cuda"), resolve_precision(config.precision, "cpu")
    return ((gpu, cpu) if gpu != cpu else (gpu,)), False


def make_plan(config: TrainConfig) -> Plan:
    """Validate ``config`` and work out its plan; raises a one-line error when it cannot run."""
    check(config)
    claim_out_folder(config, write=False)
    notes: list[str] = []
    path = recipe_file(config.recipe) if config.recipe is not None else None
    launch = read_launch(path)
    env = env_spec_for(config, config.env)
    eval_env = env_spec_for(config, config.eval_env or config.env)
    model = model_info(config, notes)
    precisions, on_cpu = training_precisions(config, launch)
    plan = Plan(config, path, launch, model, precisions, on_cpu, env, eval_env, notes)
    notes.extend(_warnings(plan))
    return plan


def _warnings(plan: Plan) -> list[str]:
    """What would go wrong, or not as the recipe reads, when the run starts."""
    cfg, launch, shape = plan.config, plan.launch, plan.model.shape
    notes = []
    if shape is not None and shape.max_positions and plan.max_call_tokens > shape.max_positions:
        prompt = plan.max_call_tokens - cfg.max_new_tokens
        notes.append(f"a model call can reach {plan.max_call_tokens:,} tokens (prompt budget "
                     f"{prompt:,} + {cfg.max_new_tokens:,} new), more than the model's "
                     f"{shape.max_positions:,} positions")
    limit = REFERENCE_GPU_GIB * GIB
    n = launch.processes
    for precision in plan.precisions if shape is not None and plan.gpus else ():
        dtype, need = precision.label, plan.state_bytes(precision)
        if cfg.sharding == "fsdp" and need / n + plan.gathered_bytes(precision) > limit:
            notes.append(f"with FSDP over {n} processes, a shard of weights + grads + AdamW in {dtype} "
                         f"({gib(need / n)}) and the weights gathered for rollouts "
                         f"({gib(plan.gathered_bytes(precision))}) take more than an {REFERENCE_GPU_GIB} GiB GPU holds")
        elif cfg.sharding == "none" and need > limit:
            sharded = f"; --sharding fsdp over {n} would make it {gib(need / n)}" if n > 1 else ""
            notes.append(f"weights + grads + AdamW in {dtype} take {gib(need)} per process, more "
                         f"than an {REFERENCE_GPU_GIB} GiB GPU holds (sharding = none replicates them "
                         f"on every process{sharded})")
        if plan.activation_bytes(precision)[0] > limit:
            how = "with" if cfg.gradient_checkpointing else "without"
            notes.append(f"activations of {plan.activation_tokens:,} tokens {how} recomputation "
                         f"exceed an {REFERENCE_GPU_GIB} GiB GPU; the reference uses gradient "
                         "checkpointing (gradient_checkpointing = true) and at most 40,960 tokens per GPU "
                         "per micro-batch")
        engine = plan.vllm_bytes
        if engine and engine < 1.25 * plan.gathered_bytes(precision):
            notes.append(f"vLLM's share of an {REFERENCE_GPU_GIB} GiB GPU ({gib(engine)}) leaves little or no room "
                         f"for its key/value cache beside the model's {precision.compute} weights "
                         f"({gib(plan.gathered_bytes(precision))})")
        least, most = plan.training_peak_bytes(precision)
        if least > limit:
            notes.append(f"training takes at least {gib(least)} per GPU in {dtype}, more than an {REFERENCE_GPU_GIB} "
                         "GiB GPU holds")
        elif most > limit:
            notes.append(f"training can take up to {gib(most)} per GPU in {dtype}, more than an {REFERENCE_GPU_GIB} "
                         f"GiB GPU holds, when merged turns generate most of a micro-batch's "
                         f"{plan.activation_tokens:,} tokens (the LM head's logits); a smaller micro_batch_tokens "
                         "bounds it")
        cache = plan.rollout_cache_bytes(precision)
        if cache > limit:
            notes.append(f"HF rollouts of {cfg.rollout_batch} episodes at once keep a {gib(cache)} "
                         f"key/value cache per process in {precision.compute}; use --rollout-engine vllm "
                         "(paged, its own share of the GPU) or a smaller rollout_batch")
    if cfg.sharding == "fsdp" and n == 1:
        notes.append("sharding = fsdp over one process splits nothing: it holds every tensor whole")
    if cfg.algo != "sft" and cfg.micro_batch_tokens < plan.max_call_tokens:
        notes.append(f"one model call can be longer than micro_batch_tokens "
                     f"({cfg.micro_batch_tokens:,}); such a sample is trained alone")
    if cfg.worker_advantage != "scalar" and cfg.algo != "matpo":
        notes.append(f"worker_advantage {cfg.worker_advantage!r} has no effect: {cfg.algo} "
                     "trains no workers")
    if cfg.algo != "sft" and cfg.questions_per_step % launch.processes:
        notes.append(f"{cfg.questions_per_step} questions do not split evenly over "
                     f"{launch.processes} processes")
    offline = plan.env.source.kind in ("world", "jsonl")
    if cfg.algo != "sft" and cfg.eval_env is None and not offline:
        notes.append("the eval env defaults to the training env, whose data may have no test split")
    latest = cfg.out / "checkpoints" / "latest"
    if latest.is_file():
        notes.append(f"resumes from {cfg.out / 'checkpoints' / latest.read_text().strip()}")
    return notes


def dry_run(config: TrainConfig, stream: TextIO | None = None) -> Plan:
    """Print the plan of ``config`` (``matpo-bench train --dry-run``) and return it."""
    plan = make_plan(config)
    print(plan.render(), file=stream or sys.stdout)
    return plan
