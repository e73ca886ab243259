"""``matpo-bench train --dry-run``: every recipe validates and prints its plan; broken ones fail
with one clear line; the numbers are checked against hand computation and real model classes."""

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from matpo_gym.cli import main, parse
from matpo_gym.trainers.config import TrainConfig, load_recipe
from matpo_gym.trainers.dryrun import make_plan
from matpo_gym.trainers.launch import parse_launch, read_launch
from matpo_gym.trainers.model_shape import KNOWN_MODELS, ModelShape
from matpo_gym.trainers.precision import resolve_precision

ROOT = Path(__file__).parents[2]
RECIPES = sorted((ROOT / "trainers").glob("*.toml"))
PAPER = [p for p in RECIPES if p.stem.startswith("paper-")]


def dry_run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["train", *args, "--dry-run"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_recipe_validates_and_prints_its_numbers(capsys, path):
    code, out, err = dry_run(capsys, "--recipe", str(path))
    assert code == 0, err
    config = load_recipe(path)
    assert f"--recipe trainers/{path.name}" in out  # the launch command
    assert re.search(r"model +\S+: [\d,]+ parameters", out)
    assert re.search(r"memory +(bf16-mixed \(float32 weights, bfloat16 compute\)|bfloat16|float32): "
                     r"weights [\d.,]+ [MG]iB \+ grads", out)
    assert "activations of" in out and f"train env  {config.env}:" in out
    assert (f"noise      {config.noise:g} of tool calls disturbed" in out) == bool(config.noise)
    if config.algo == "sft":
        assert f"a batch of {config.sft_batch_size} trajectories" in out
    else:
        rollouts = config.questions_per_step * config.group_size
        per_step = f"{config.questions_per_step:,} questions x G {config.group_size}"
        assert f"{per_step} = {rollouts:,} rollouts" in out
        assert "model turns per rollout: 1 .. " in out and "generated tokens:" in out


def test_the_14b_matpo_plan_by_hand(capsys):
    code, out, _ = dry_run(capsys, "--recipe", "trainers/paper-matpo-qwen3-14b.toml")
    assert code == 0
    params = 14_768_307_200  # Qwen3-14B: 40 x 330,311,936 per layer + 2 x 151,936 x 5,120 + 5,120
    assert f"{params:,} parameters (14.77 B)" in out
    assert "8 processes on 1 node, 8 GPUs" in out
    state = params * 16  # bf16-mixed: float32 weights 4 + grads 4 + AdamW 8 bytes a parameter
    sharded = f"sharded over 8 processes with FSDP: {state / 8 / 1024**3:,.1f} GiB per GPU"
    assert f"= {state / 1024**3:,.1f} GiB, {sharded}" in out
    assert f"rollouts gather the full weights in bfloat16: {params * 2 / 1024**3:,.1f} GiB per GPU on top" in out
    assert "a full replica" not in out and "weights + grads + AdamW in" not in out  # sharded, the state fits
    # but not beside a 40,960-token micro-batch and vLLM's 35%, which it keeps through training
    layers = 2 * 40960 * 5120 * 40 + 34 * 40960 * 5120
    logits = 10 * 8192 * 151_936
    least = state / 8 + layers + logits + 0.35 * 80 * 1024**3
    assert f"training takes at least {least / 1024**3:,.1f} GiB per GPU" in out
    assert "vLLM's share of an 80 GiB GPU (28.0 GiB) leaves little or no room for its key/value cache" in out
    assert "256 questions x G 8 = 2,048 rollouts (256 per process)" in out
    assert "model turns per rollout: 1 .. 440 (planner <= 20, <= 20 workers x (20 + 1 summ" in out
    assert f"generated tokens: 2,048 .. {2048 * 440 * 8192:,}" in out
    assert "train env  matpo-data: matpo_data (veggiebird/MATPO-data, split train" in out


def test_without_sharding_the_plan_is_a_full_replica_that_does_not_fit(capsys):
    code, out, _ = dry_run(capsys, "--recipe", "trainers/paper-matpo-qwen3-14b.toml", "--sharding", "none")
    assert code == 0
    state = 14_768_307_200 * 16
    assert f"= {state / 1024**3:,.1f} GiB per process (a full replica on each, sharding = none)" in out
    assert f"with --sharding fsdp over 8 processes: {state / 8 / 1024**3:,.1f} GiB per GPU" in out
    assert "more than an 80 GiB GPU holds" in out and "rollouts gather" not in out


def test_fsdp_over_one_process_says_it_splits_nothing(capsys):
    code, out, _ = dry_run(capsys, "--recipe", "trainers/tiny-matpo.toml", "--sharding", "fsdp")
    assert code == 0 and "sharded over 1 process with FSDP" in out and "splits nothing" in out


def test_flag_overrides_are_validated_and_shown(capsys):
    code, out, _ = dry_run(capsys, "--recipe", "trainers/paper-grpo-qwen3-4b.toml",
                           "--group-size", "16", "--questions-per-step", "64", "--device", "cpu")
    assert code == 0
    on_this_cpu = resolve_precision("auto", "cpu").label  # bf16-mixed where the CPU multiplies bfloat16
    assert "64 questions x G 16 = 1,024 rollouts" in out and f"memory     {on_this_cpu}:" in out
    config = parse(["train", "--recipe", "trainers/tiny-matpo.toml", "--dry-run"])
    assert isinstance(config, TrainConfig) and config.dry_run
    assert config.steps == load_recipe("trainers/tiny-matpo.toml").steps != TrainConfig().steps
    assert TrainConfig().dry_run is False


@pytest.mark.parametrize(
    "recipe, flags, message",
    [
        ('[train]\nstepz = 3\n', [], "Unknown key 'stepz' for TrainConfig"),
        ('[train]\nenv = "no-such-env"\n', [], "Unknown env 'no-such-env'. Available:"),
        ('[train]\nalgo = "grpo"\n', ["--env", "no-such-env"], "Unknown env 'no-such-env'"),
        ('[train]\nalgo = "matpo"\ngroup_size = 1\n', [], "group_size must be at least 2"),
        ('[train]\nworker_advantage = "quirk"\n', [], "worker_advantage: 'quirk' is not one of"),
        ('lunch = "x"\n[train]\n', [], "unknown top-level key 'lunch'"),
        ('[train]\nalgo = "grpo"\nnoise = 0.2\nnoise_kinds = "flaky"\n', [], "noise: unknown noise kind 'flaky'"),
        ('[train]\nalgo = "grpo"\nnoise = 1.5\n', [], "noise: rate must be a number in [0, 1], got 1.5"),
        ('[train]\nalgo = "sft"\n', ["--noise", "0.2"], "SFT imitates scripted demonstrations"),
        ('[train]\nalgo = "grpo"\ndual_clip = 0.5\n', [], "dual_clip must be above 1"),
        ('[train]\nalgo = "grpo"\nclip_eps = 1.5\n', [], "clip_eps must be in (0, 1)"),
        ('[train]\nalgo = "grpo"\nkl_coef = -0.1\n', [], "kl_coef must be 0 (off) or more"),
    ],
)
def test_a_broken_recipe_fails_with_one_clear_line(capsys, tmp_path, recipe, flags, message):
    path = tmp_path / "broken.toml"
    path.write_text(recipe)
    code, out, err = dry_run(capsys, "--recipe", str(path), *flags)
    assert code == 2 and out == ""
    assert err.startswith("matpo-bench: error: ") and message in err
    assert err.count("\n") == 1, err


@pytest.mark.parametrize("flags, message", [
    (["--algo", "matpo", "--frozen-roles", "planer"], "'planer' is not one of them"),
    (["--algo", "grpo", "--group-size", "1"], "group_size must be at least 2"),
    (["--algo", "grpo", "--temperature", "0"], "temperature must be positive"),
])
def test_a_real_run_refuses_what_a_dry_run_refuses(capsys, tmp_path, flags, message):
    # the same one-line error before any model loads or folder is written, not only under --dry-run
    out = tmp_path / "run"
    code = main(["train", "--recipe", "trainers/tiny-matpo.toml", "--out", str(out), *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_a_bad_env_file_fails_with_one_clear_line(capsys, tmp_path):
    env = tmp_path / "bad-env.toml"
    env.write_text('[limits]\nplanner_turn = 3\n')
    code, _, err = dry_run(capsys, "--env", str(env))
    assert code == 2 and "planner_turn" in err and err.count("\n") == 1


def test_dry_run_imports_no_torch_and_loads_no_model():
    script = (
        "import sys; from matpo_gym.cli import main; "
        "code = main(['train', '--recipe', 'trainers/paper-matpo-qwen3-14b.toml', '--dry-run']); "
        "print('RESULT', code, 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "RESULT 0 False False" in done.stdout


# -- the pieces ------------------------------------------------------------------------------------


def test_paper_recipes_carry_the_reference_settings():
    names = {f"paper-{a}-qwen3-{s}" for a in ("grpo", "matpo") for s in ("4b", "14b")}
    assert {p.stem for p in PAPER} == names
    for path in PAPER:
        config = load_recipe(path)
        assert (config.group_size, config.questions_per_step, config.steps) == (8, 256, 180), path
        optimizer = (config.lr, config.weight_decay, config.grad_clip, config.temperature)
        assert optimizer == (1e-5, 0.01, 1.0, 1.0)
        assert (config.planner_turns, config.worker_turns, config.single_turns) == (20, 20, 20)
        assert (config.context_tokens, config.env, config.kl_coef) == (32768, "matpo-data", 0.0)
        assert config.worker_advantage == "scalar" and config.format_weight == 0.1
        assert config.sharding == "fsdp"
        assert config.model == ("Qwen/Qwen3-14B" if path.stem.endswith("14b") else "Qwen/Qwen3-4B")
        plan = make_plan(config)
        assert plan.env.source.kind == "matpo_data" and plan.env.limits.context_tokens == 32768
        first = path.read_text().splitlines()[0]
        launch = read_launch(path)
        assert first == f"# {launch.command}"
        assert (launch.processes, launch.launcher) == (8, "accelerate")


def test_parameter_counts_match_the_model_classes():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")

    def qwen3(name):
        fields = {k: v for k, v in KNOWN_MODELS[name].items() if k != "model_type"}
        return transformers.Qwen3Config(**fields)

    small = dict(vocab_size=1000, hidden_size=128, intermediate_size=344)
    configs = [
        qwen3("Qwen/Qwen3-4B"),
        qwen3("Qwen/Qwen3-14B"),
        transformers.Qwen2Config(**small, num_hidden_layers=3, num_attention_heads=4,
                                 num_key_value_heads=2, tie_word_embeddings=True),
        transformers.LlamaConfig(**small, num_hidden_layers=2, num_attention_heads=8,
                                 num_key_value_heads=4, attention_bias=True, mlp_bias=True),
    ]
    for config in configs:
        with torch.device("meta"):
            model = transformers.AutoModelForCausalLM.from_config(config)
        expected = sum(p.numel() for p in model.parameters())
        assert ModelShape.from_config(config.to_dict()).parameters == expected, config.model_type


def test_tiny_and_local_models_are_sized_from_their_configs(tiny_model_dir, tmp_path, capsys):
    manifest = json.loads((tiny_model_dir / "matpo_tiny.json").read_text())
    assert make_plan(TrainConfig(model="tiny")).model.shape.parameters == manifest["parameters"]
    local = make_plan(TrainConfig(model=str(tiny_model_dir)))
    assert local.model.shape.parameters == manifest["parameters"]
    assert "config.json" in local.model.source
    # a local folder named like a known model but without its config.json: the table
    named = tmp_path / "Qwen3-4B"
    named.mkdir()
    assert make_plan(TrainConfig(model=str(named))).model.shape.parameters == 4_022_468_096
    code, out, _ = dry_run(capsys, "--model", "someone/unknown-model")
    assert code == 0 and "size unknown" in out and "memory is not estimated" in out


def test_launch_commands():
    assert parse_launch("matpo-bench train --recipe trainers/tiny-sft.toml").processes == 1
    multi = parse_launch("accelerate launch --num_machines 2 --num_processes=16 -m matpo_gym.cli")
    assert (multi.processes, multi.nodes, multi.launcher) == (16, 2, "accelerate")
    node = parse_launch("python -m torch.distributed.run --nproc_per_node 4 -m matpo_gym.cli train")
    assert (node.processes, node.launcher) == (4, "torchrun")


def test_pure_bf16_halves_the_state_and_says_so(capsys):
    code, out, _ = dry_run(capsys, "--recipe", "trainers/paper-matpo-qwen3-14b.toml", "--precision", "bf16")
    assert code == 0
    params = 14_768_307_200
    assert f"memory     bfloat16: weights {params * 2 / 1024**3:,.1f} GiB" in out
    assert f"= {params * 8 / 1024**3:,.1f} GiB, sharded over 8 processes" in out


def test_the_paper_recipes_use_checkpointing_and_vllm_and_hf_rollouts_say_what_their_cache_needs(capsys):
    recipe = "trainers/paper-matpo-qwen3-14b.toml"
    code, out, _ = dry_run(capsys, "--recipe", recipe)
    assert code == 0 and "gradient checkpointing: layers" in out and "HF rollouts' key/value cache" not in out
    config = load_recipe(recipe)
    assert config.dual_clip == 3.0 and config.gradient_checkpointing and config.rollout_engine == "vllm"
    code, out, _ = dry_run(capsys, "--recipe", recipe, "--rollout-engine", "hf")
    assert code == 0 and "HF rollouts' key/value cache: 400.0 GiB per process (64 sequences x 40,960 tokens)" in out
    assert "use --rollout-engine vllm" in out
    checkpointed = make_plan(config)
    kept = make_plan(dataclasses.replace(config, gradient_checkpointing=False))
    precision = checkpointed.precisions[0]
    assert checkpointed.activation_bytes(precision)[0] < kept.activation_bytes(precision)[0] / 10


def test_a_dry_run_started_by_a_launcher_plans_the_processes_it_runs_among(capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    code, out, _ = dry_run(capsys, "--algo", "grpo", "--env", "world-tiny")
    assert code == 0 and "4 processes on 2 nodes" in out


def test_an_sft_plan_counts_no_rollout_cache(capsys):
    code, out, _ = dry_run(capsys, "--recipe", "trainers/tiny-sft.toml")
    assert code == 0 and "key/value cache" not in out
