import re
from pathlib import Path

import pytest

from matpo_gym.config import ConfigError
from matpo_gym.core.messages import Message, Prompt, Role
from matpo_gym.policies.registry import PolicyError, load_policy
from matpo_gym.policies.scripted import RandomPolicy, SearchReadPolicy


def prompt(question: str) -> Prompt:
    return Prompt(Role.SINGLE, (Message("system", "s"), Message("user", f"Question: {question}")), "t", ("search",))


def test_builtin_and_catalogue_names():
    assert isinstance(load_policy("scripted"), SearchReadPolicy)
    random_policy = load_policy("random", seed=3)
    assert isinstance(random_policy, RandomPolicy) and random_policy.seed == 3


def test_plugin_from_catalogue_file_and_from_target():
    by_name = load_policy("echo-plugin")
    by_target = load_policy("policies/echo_plugin.py:EchoPolicy", suffix="!")
    assert by_name.generate([prompt("Who is X?")])[0].text == "<answer>X</answer>"
    assert by_target.generate([prompt("Who is X?")])[0].text == "<answer>X!</answer>"


def test_bad_policies_are_clear_errors(tmp_path):
    with pytest.raises(PolicyError, match="module:Class"):
        load_policy("matpo_gym.policies.scripted:")
    with pytest.raises(PolicyError, match="has no attribute"):
        load_policy("matpo_gym.policies.scripted:Nope")
    with pytest.raises(PolicyError, match="Cannot build policy"):
        load_policy("scripted", bogus=1)
    with pytest.raises(PolicyError, match="Policy protocol"):
        load_policy("builtins:object")
    with pytest.raises(PolicyError, match=r"Name the class in plugins/mine\.py: --policy plugins/mine\.py:ClassName"):
        load_policy("plugins/mine.py")
    bad = tmp_path / "bad.toml"
    bad.write_text('type = "plugin"\n')
    with pytest.raises(ConfigError, match="target"):
        load_policy(str(bad))


def test_a_dataclass_plugin_file_loads(tmp_path):
    # dataclasses look the class's module up in sys.modules while building it
    plugin = tmp_path / "dc_policy.py"
    plugin.write_text(
        "from __future__ import annotations\n"
        "from dataclasses import dataclass\n"
        "from matpo_gym.policies.base import Completion\n\n\n"
        "@dataclass\n"
        "class Fixed:\n"
        "    answer: str = '42'\n"
        "    name: str = 'fixed'\n\n"
        "    def generate(self, prompts):\n"
        "        return [Completion(f'<answer>{self.answer}</answer>') for _ in prompts]\n"
    )
    policy = load_policy(f"{plugin}:Fixed", answer="7")
    assert policy.generate([prompt("x")])[0].text == "<answer>7</answer>"


def test_plugins_and_policies_that_cannot_load_are_clear_errors(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("import not_an_installed_package\n")
    with pytest.raises(PolicyError, match="Cannot load policy file .*ModuleNotFoundError"):
        load_policy(f"{broken}:P")
    missing_model = tmp_path / "hf-missing.toml"
    missing_model.write_text(f'type = "hf"\n[args]\nmodel = "{tmp_path / "no-model"}"\n')
    with pytest.raises(PolicyError, match="Cannot build policy"):
        load_policy(str(missing_model))
    with pytest.raises(PolicyError, match="No such policy file"):
        load_policy(str(tmp_path / "absent.toml"))


def test_random_policy_is_deterministic_and_well_formed():
    from matpo_gym.core.actions import ParseError, parse_action

    policy = RandomPolicy(seed=1)
    prompts = [prompt(f"What is the population of City{i}?") for i in range(20)]
    first = [c.text for c in policy.generate(prompts)]
    assert first == [c.text for c in policy.generate(prompts)]
    assert not any(isinstance(parse_action(t), ParseError) for t in first)


@pytest.mark.parametrize("path", sorted(Path(__file__).parents[2].joinpath("policies").glob("*.toml")),
                         ids=lambda p: p.stem)
def test_every_catalogue_policy_file_names_its_class_and_valid_arguments(path):
    """Every shipped policy file parses, names a class that loads, and gives only arguments that
    class takes (GPU-only ones included, which are checked here without being built)."""
    import inspect

    from matpo_gym.policies.registry import _builtin_types, load_class, load_policy_spec

    spec = load_policy_spec(str(path))
    target = spec.target if spec.type == "plugin" else _builtin_types()[spec.type]
    parameters = inspect.signature(load_class(target, base=path.parent)).parameters
    assert set(spec.args) <= set(parameters), set(spec.args) - set(parameters)


BROKEN_PLUGINS = """\
from matpo_gym.policies.base import Completion


class Lookup:
    name = "lookup"

    def generate(self, prompts):
        table = {}
        return [table[p.role] for p in prompts]


class TooFew:
    name = "too-few"

    def generate(self, prompts):
        return [Completion("<answer>x</answer>")][: len(prompts) - 1]


class Nones:
    name = "nones"

    def generate(self, prompts):
        return [None for _ in prompts]


class Texts:
    name = "texts"

    def generate(self, prompts):
        return ["<answer>x</answer>" for _ in prompts]


class Own:
    name = "own"

    class Reply:
        def __init__(self, text):
            self.text = text

    def generate(self, prompts):
        return [self.Reply("<answer>x</answer>") for _ in prompts]
"""


def test_a_plugin_that_breaks_in_generate_is_named_with_its_line(tmp_path, capsys):
    from matpo_gym.cli import main

    plugin = tmp_path / "plugins.py"
    plugin.write_text(BROKEN_PLUGINS)
    common = ["run", "--env", "world-tiny", "--limit", "1", "--quiet", "--out", str(tmp_path / "runs")]
    expected = {
        "Lookup": r"policy 'lookup' failed in generate: KeyError: .* \(at /.*plugins\.py:9, in ",
        "TooFew": r"policy 'too-few' returned 0 completions for 1 prompts; generate must return",
        "Nones": r"policy 'nones' returned NoneType for prompt 0; generate must return Completion",
    }
    for cls, message in expected.items():
        assert main([*common, "--mode", "matpo,single", "--policy", f"{plugin}:{cls}"]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and "finished results are saved; rerun the same command to resume" in err
        assert re.search(message, err), err
    assert main([*common, "--mode", "single", "--policy", f"{plugin}:Texts"]) == 0  # plain text is a completion
    assert main([*common, "--mode", "single", "--policy", f"{plugin}:Own", "--name", "own"]) == 0  # so is .text


def test_a_policy_that_needs_a_missing_extra_says_what_to_install(tmp_path):
    plugin = tmp_path / "needs_torch.py"
    plugin.write_text(
        "class NeedsTorch:\n"
        "    name = 'needs-torch'\n\n"
        "    def __init__(self):\n"
        "        raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n"
    )
    with pytest.raises(PolicyError, match=r"No module named 'torch' \(pip install \"matpo-gym\[hf\]\"\)"):
        load_policy(f"{plugin}:NeedsTorch")
