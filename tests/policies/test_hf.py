"""The tiny local model and the Hugging Face policy, on CPU; and the vLLM policy's missing-extra error."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tokenizers import Tokenizer
from transformers import AutoTokenizer

from matpo_gym.core.messages import Message, Prompt, Role
from matpo_gym.envs import MatpoEnv
from matpo_gym.models import TinyModelConfig, default_tiny_dir, ensure_tiny, load_tiny
from matpo_gym.models.tiny import GRAMMAR_TOKENS, IM_END, SPECIAL_TOKENS
from matpo_gym.policies import load_policy
from matpo_gym.policies.hf import HFPolicy
from matpo_gym.policies.registry import PolicyError
from matpo_gym.rollout import EpisodeRequest, rollout

SAMPLE = (
    "Leiliavik is a city in [Ciakriland](https://wiki.matpo-world.test/wiki/Ciakriland).\n"
    "Population: 826703  Founded: 1013 — ünïcode, tabs\tand  spaces.\n"
    '<think>check the page</think><tool_call>{"name": "search", "arguments": {"query": "Leiliavik"}}</tool_call>'
)


def prompt(question: str, *history: Message, role: Role = Role.PLANNER) -> Prompt:
    messages = (
        Message("system", "You are the planner of a research team."),
        Message("user", question),
        *history,
    )
    return Prompt(role, messages, "traj-0")


PROMPTS = [
    prompt("In what year was Leiliavik founded?"),
    prompt("Hi"),
    prompt(
        "Which of Paenstad, Keveithholm and Tebraewyn was founded earliest?",
        Message(
            "assistant",
            '<tool_call>{"name": "worker", "arguments": {"subtask": "Paenstad"}}</tool_call>',
        ),
        Message("tool", "Paenstad was founded in 1201.", name="worker"),
    ),
]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """A 4M-parameter model gains nothing from intra-op threads, and on a busy 2-core machine
    OpenMP threads that spin for each other make these tests ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_tiny(tiny_model_dir)


def greedy(tiny, **kwargs) -> HFPolicy:
    model, tokenizer = tiny
    return HFPolicy.from_pretrained_objects(
        model, tokenizer, **{"temperature": 0.0, "max_new_tokens": 12, **kwargs}
    )


def recomputed_logprobs(model, prompt_ids, token_ids, temperature=1.0):
    """What a trainer computes: one forward pass over prompt + completion, no padding, no cache."""
    ids = torch.tensor([prompt_ids + token_ids])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt_ids) - 1 : -1].float()
    return (
        torch.log_softmax(logits / temperature, dim=-1)
        .gather(1, torch.tensor(token_ids)[:, None])
        .squeeze(1)
    )


# -- the tiny model ---------------------------------------------------------------------------


def test_added_tokens_are_single_ids(tiny):
    _, tokenizer = tiny
    for token in SPECIAL_TOKENS + GRAMMAR_TOKENS:
        ids = tokenizer(token, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1, token
        assert tokenizer.convert_ids_to_tokens(ids[0]) == token
    ids = tokenizer("<answer>1013</answer><|im_end|>", add_special_tokens=False)["input_ids"]
    # the grammar's tags survive decoding (the env parses them); chat markers do not
    assert tokenizer.decode(ids, skip_special_tokens=True) == "<answer>1013</answer>"
    assert len(tokenizer) == TinyModelConfig().vocab_size
    assert tokenizer.padding_side == "left"
    assert tokenizer.eos_token == IM_END and tokenizer.pad_token_id not in (
        None,
        tokenizer.eos_token_id,
    )


def test_played_worlds_names_split_alike_and_digits_one_per_token(tiny):
    """The tokenizer learns no played world's names: the env's world and an SFT world tokenize theirs
    into pieces alike, so copying learned on one carries over to the other."""
    from matpo_gym.data.world import WorldConfig, build_world

    _, tokenizer = tiny

    def pieces_per_name(seed: int) -> float:
        world = build_world(WorldConfig(seed=seed, num_entities=200))
        names = [task.question for task in world.tasks("frames", split="test")][:40]
        words = [w for q in names for w in q.split() if w[:1].isupper() and w.isalpha()]
        return sum(len(tokenizer.tokenize(" " + w)) for w in words) / len(words)

    played, other = pieces_per_name(0), pieces_per_name(3)
    assert played > 1.5 and abs(played - other) < 0.5, (played, other)
    assert tokenizer.tokenize("1938") == ["1", "9", "3", "8"]


def test_chat_template_renders_every_role_and_the_generation_prompt(tiny):
    _, tokenizer = tiny
    chat = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "<answer>A</answer>"},
        {"role": "tool", "content": "R", "name": "search"},
    ]
    body = (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n"
        "<|im_start|>assistant\n<answer>A</answer><|im_end|>\n<|im_start|>tool\nR<|im_end|>\n"
    )
    assert tokenizer.apply_chat_template(chat, tokenize=False) == body
    rendered = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert rendered == body + "<|im_start|>assistant\n"


def test_tokenizer_reloads_with_identical_ids(tiny_model_dir, tiny):
    _, tokenizer = tiny
    raw = Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json"))  # what was trained and saved
    reloaded = AutoTokenizer.from_pretrained(tiny_model_dir, local_files_only=True)
    expected = raw.encode(SAMPLE, add_special_tokens=False).ids
    assert tokenizer(SAMPLE, add_special_tokens=False)["input_ids"] == expected
    assert reloaded(SAMPLE, add_special_tokens=False)["input_ids"] == expected
    assert tokenizer.decode(expected) == SAMPLE
    assert reloaded.padding_side == "left"


def test_build_writes_the_manifest_and_ensure_reuses_a_built_model(
    tiny_model_dir, tiny, monkeypatch, tmp_path
):
    model, _ = tiny
    manifest = json.loads((tiny_model_dir / "matpo_tiny.json").read_text())
    assert manifest["config"] == dataclasses.asdict(TinyModelConfig())
    assert 3_000_000 < manifest["parameters"] < 5_000_000
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.hidden_size == 256
    before = {p.name: p.stat().st_mtime_ns for p in tiny_model_dir.iterdir()}
    assert ensure_tiny(out_dir=tiny_model_dir) == tiny_model_dir
    assert {p.name: p.stat().st_mtime_ns for p in tiny_model_dir.iterdir()} == before
    monkeypatch.setenv("MATPO_HOME", str(tmp_path))
    default = default_tiny_dir()
    assert default.parent == tmp_path and default.name == f"tiny-{TinyModelConfig().digest()}"
    assert default_tiny_dir(TinyModelConfig(seed=1)) != default


def test_a_prompt_edit_gives_the_tiny_model_another_cache_folder(monkeypatch, tmp_path):
    # the tokenizer trains on the prompt files: a model cached before an edit must not be reused
    import shutil

    from matpo_gym import catalogue

    before = TinyModelConfig().digest()
    envs = tmp_path / "envs"
    shutil.copytree(catalogue.builtin_dir("envs") / "prompts", envs / "prompts")
    monkeypatch.setattr(catalogue, "builtin_dir", lambda kind: tmp_path / kind)
    assert TinyModelConfig().digest() == before
    prompt = sorted((envs / "prompts").glob("*.md"))[0]
    prompt.write_text(prompt.read_text() + "\nOne more line.\n")
    assert TinyModelConfig().digest() != before


# -- the policy -------------------------------------------------------------------------------


def test_greedy_generation_is_deterministic_across_instances(tiny_model_dir):
    first = HFPolicy(str(tiny_model_dir), temperature=0.0, max_new_tokens=12)
    second = HFPolicy(str(tiny_model_dir), temperature=0.0, max_new_tokens=12)
    assert first.name == f"hf:{tiny_model_dir}"
    assert first.generate(PROMPTS) == second.generate(PROMPTS)


def test_sampling_is_seeded_per_call(tiny):
    model, tokenizer = tiny
    make = lambda: HFPolicy.from_pretrained_objects(
        model, tokenizer, temperature=1.0, max_new_tokens=12, seed=7
    )
    one, two = make(), make()
    calls_one = [one.generate(PROMPTS) for _ in range(2)]
    calls_two = [two.generate(PROMPTS) for _ in range(2)]
    assert calls_one == calls_two
    assert [c.token_ids for c in calls_one[0]] != [c.token_ids for c in calls_one[1]]
    state = torch.get_rng_state()
    one.generate(PROMPTS[:1])
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is left alone


def test_completion_ids_text_and_logprobs_agree_with_the_model(tiny):
    model, tokenizer = tiny
    for temperature in (1.0, 0.7):
        policy = HFPolicy.from_pretrained_objects(
            model, tokenizer, temperature=temperature, max_new_tokens=16, seed=1
        )
        for p, completion in zip(PROMPTS, policy.generate(PROMPTS)):
            text = tokenizer.apply_chat_template(
                p.to_chat(), tokenize=False, add_generation_prompt=True
            )
            assert completion.prompt_ids == tokenizer(text, add_special_tokens=False)["input_ids"]
            assert completion.text == tokenizer.decode(
                completion.token_ids, skip_special_tokens=True
            )
            assert len(completion.logprobs) == len(completion.token_ids) > 0
            assert all(lp <= 0 for lp in completion.logprobs)
            expected = recomputed_logprobs(
                model, completion.prompt_ids, completion.token_ids, temperature
            )
            assert torch.allclose(torch.tensor(completion.logprobs), expected, atol=1e-4)


def test_a_batch_gives_the_same_greedy_outputs_as_one_prompt_at_a_time(tiny):
    policy = greedy(tiny)
    alone = [policy.generate([p])[0] for p in PROMPTS]
    assert len({len(c.prompt_ids) for c in alone}) == len(PROMPTS)  # really different lengths
    for batched in (policy.generate(PROMPTS), greedy(tiny, batch_size=2).generate(PROMPTS)):
        for one, many in zip(alone, batched):
            assert many.token_ids == one.token_ids and many.text == one.text
            assert many.prompt_ids == one.prompt_ids and many.finish_reason == one.finish_reason
            assert torch.allclose(
                torch.tensor(many.logprobs), torch.tensor(one.logprobs), atol=1e-4
            )


def test_a_stop_string_ends_the_completion_and_stays_in_it(tiny):
    unstopped = greedy(tiny, max_new_tokens=24, stop=()).generate(PROMPTS)
    for p, full in zip(PROMPTS, unstopped):
        assert full.finish_reason == "length" and len(full.token_ids) == 24
        # a stop string ending partway through the greedy text, spanning token boundaries
        stop = full.text[len(full.text) // 2 - 3 : len(full.text) // 2 + 2]
        cut = greedy(tiny, max_new_tokens=24, stop=(stop,)).generate([p])[0]
        assert cut.finish_reason == "stop"
        assert full.token_ids[: len(cut.token_ids)] == cut.token_ids and len(cut.token_ids) < 24
        assert stop in cut.text
        without_last = tiny[1].decode(cut.token_ids[:-1], skip_special_tokens=True)
        assert stop not in without_last  # cut at the first token that completes it


def teach(tiny, p: Prompt, reply: str):
    """A copy of the tiny model trained for a few steps to answer ``p`` with ``reply``."""
    model, tokenizer = tiny
    student = copy.deepcopy(model).train()
    prompt_ids = HFPolicy.from_pretrained_objects(student, tokenizer).encode(p)
    reply_ids = tokenizer(reply + IM_END, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + reply_ids])
    labels = torch.tensor([[-100] * len(prompt_ids) + reply_ids])
    optimizer = torch.optim.Adam(student.parameters(), lr=3e-3)
    for _ in range(100):
        student(ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return student.eval(), tokenizer


def test_the_closing_tag_stops_generation_and_stays_in_the_text(tiny):
    reply = "It was 1013. <answer>1013</answer>"
    student = teach(tiny, PROMPTS[0], reply)
    close_id = student[1].convert_tokens_to_ids("</answer>")
    completion = greedy(student, max_new_tokens=40).generate(PROMPTS[:1])[0]
    assert completion.text == reply and completion.finish_reason == "stop"
    assert completion.token_ids[-1] == close_id  # nothing generated after the tag
    # without stop strings the turn ends at the end-of-turn token, which is kept in the ids
    completion = greedy(student, max_new_tokens=40, stop=()).generate(PROMPTS[:1])[0]
    assert completion.text == reply and completion.finish_reason == "stop"
    assert completion.token_ids[-1] == student[1].eos_token_id
    assert len(completion.logprobs) == len(completion.token_ids)


def test_long_prompts_are_cut_from_the_left_and_counted(tiny):
    policy = greedy(tiny, max_prompt_tokens=20)
    full = greedy(tiny).encode(PROMPTS[0])
    completion = policy.generate(PROMPTS[:1])[0]
    assert completion.prompt_ids == full[-20:]
    assert policy.truncated_prompts == 1


def test_count_tokens_is_the_tokenizers_count(tiny):
    policy = greedy(tiny)
    assert policy.count_tokens(SAMPLE) == len(
        tiny[1](SAMPLE, add_special_tokens=False)["input_ids"]
    )
    assert policy.count_tokens("<tool_call>") == 1


def test_tiny_builds_once_into_the_cache_and_reproduces_the_same_model(tiny, monkeypatch, tmp_path):
    monkeypatch.setenv("MATPO_HOME", str(tmp_path))
    policy = HFPolicy("tiny", temperature=0.0, max_new_tokens=12, device="cpu")
    assert policy.name == "hf:tiny"
    assert [p.name for p in tmp_path.iterdir()] == [
        default_tiny_dir().name
    ]  # no staging folder left
    assert policy.generate(PROMPTS) == greedy(tiny).generate(PROMPTS)  # the build is reproducible
    assert ensure_tiny() == default_tiny_dir()


def test_bad_arguments_are_clear_errors(tiny):
    with pytest.raises(ValueError, match="Unknown dtype 'fp8'"):
        HFPolicy("tiny", dtype="fp8")
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        greedy(tiny, temperature=-1.0)
    with pytest.raises(OSError, match="Cannot load model"):
        HFPolicy("/nonexistent/model-folder")


def test_the_registry_builds_an_hf_policy(tiny_model_dir):
    policy = load_policy(
        "hf",
        model=str(tiny_model_dir),
        max_new_tokens=4,
        temperature=0.0,
        device="cpu",
        dtype="float32",
    )
    assert isinstance(policy, HFPolicy) and policy.name == f"hf:{tiny_model_dir}"
    assert len(policy.generate(PROMPTS[:1])[0].token_ids) <= 4


def test_an_hf_policy_drives_a_matpo_episode_to_its_turn_limit(tiny):
    model, tokenizer = tiny
    policy = HFPolicy.from_pretrained_objects(
        model, tokenizer, temperature=1.0, max_new_tokens=8, seed=0
    )
    env = MatpoEnv("world-frames", mode="matpo", count_tokens=policy.count_tokens)
    [result] = list(
        rollout(lambda: env, policy, [EpisodeRequest(env.tasks[0], "episode-0")], batch_size=1)
    )
    assert (
        result.error is None and result.stop_reason == "turn_limit"
    )  # random weights never answer
    assert len(result.planner.turns) == env.spec_config.limits.planner_turns
    for trajectory in result.trajectories:
        for turn in trajectory.turns:
            assert turn.prompt_ids and turn.completion_ids
            assert len(turn.completion_logprobs) == len(turn.completion_ids)
            assert (
                tokenizer.decode(turn.completion_ids, skip_special_tokens=True) == turn.completion
            )


# -- vLLM -------------------------------------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_vllm_policy_without_vllm_is_a_clear_import_error():
    from matpo_gym.policies.vllm import VLLMPolicy

    with pytest.raises(ImportError, match=r"pip install 'matpo-gym\[vllm\]' \(needs a CUDA GPU\)"):
        VLLMPolicy("tiny")
    with pytest.raises(PolicyError, match="Cannot build policy 'vllm': vLLM is not installed"):
        load_policy("vllm", model="tiny")  # the CLI's one-line error
