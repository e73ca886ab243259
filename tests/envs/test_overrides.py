"""Env spec overrides: switch names, dotted paths, value parsing and clear errors."""

from __future__ import annotations

import dataclasses
import doctest
import json
import typing

import pytest

import matpo_gym.envs.overrides as overrides_module
from matpo_gym.config import ConfigError
from matpo_gym.envs.overrides import SWITCHES, apply_overrides, switch_values
from matpo_gym.envs.spec import EnvSpec, load_env_spec
from matpo_gym.tools.leakage import DEFAULT_BLOCKED_DOMAINS


@pytest.fixture(scope="module")
def spec() -> EnvSpec:
    return load_env_spec("world-frames")


def field_at(spec: EnvSpec, path: str):
    value = spec
    for part in path.split("."):
        value = getattr(value, part)
    return value


def test_every_switch_names_a_real_field(spec):
    expected = {
        "query_recap",
        "forced_summary",
        "summary_chars",
        "strip_thinking",
        "leakage_guard",
        "planner_context_tokens",
        "worker_context_tokens",
        "single_context_tokens",
        "planner_total_tokens",
        "worker_total_tokens",
        "single_total_tokens",
    }
    assert expected <= set(SWITCHES)
    for name, path in SWITCHES.items():
        section, _, attribute = path.partition(".")
        owner = type(getattr(spec, section))
        assert attribute in {f.name for f in dataclasses.fields(owner)}, name


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("on", True),
        ("OFF", False),
        ("true", True),
        ("False", False),
        ("yes", True),
        ("No", False),
        ("1", True),
        ("0", False),
    ],
)
def test_booleans_accept_every_spelling(spec, text, value):
    for name in ("query_recap", "forced_summary", "strip_thinking", "leakage_guard"):
        changed = apply_overrides(spec, [f"{name}={text}"])
        assert field_at(changed, SWITCHES[name]) is value


def test_switch_aliases_and_dotted_paths_set_the_same_field(spec):
    by_alias = apply_overrides(spec, ["summary_chars=0", "worker_total_tokens=5000"])
    by_path = apply_overrides(spec, ["limits.summary_chars=0", "limits.worker_total_tokens=5000"])
    assert by_alias == by_path
    assert by_alias.limits.summary_chars == 0 and by_alias.limits.worker_total_tokens == 5000
    assert spec.limits.summary_chars == 2000, "the input spec is left as it was"


def test_values_are_parsed_by_the_field_type(spec):
    changed = apply_overrides(
        spec,
        [
            "limits.worker_turns=5",
            "tools.timeout_s=2.5",
            "tools.timeout_s = 3",
            "scoring.scorer=f1",
            "mode=single",
            "tools.safe_search=off",
            "tools.names=search",
            "blocked_domains=huggingface.co/datasets, kaggle.com/datasets",
            "planner_context_tokens=4096",
            "planner_context_tokens=none",
            "limits.summary_chars=-1",
        ],
    )
    assert changed.limits.worker_turns == 5
    assert changed.tools.timeout_s == 3.0 and isinstance(changed.tools.timeout_s, float)
    assert changed.scoring.scorer == "f1" and changed.mode == "single"
    assert changed.tools.safe_search == "off"
    assert changed.tools.names == ("search",)
    assert changed.tools.blocked_domains == ("huggingface.co/datasets", "kaggle.com/datasets")
    assert changed.limits.planner_context_tokens is None, "a later override wins"
    assert changed.limits.summary_chars == -1
    assert apply_overrides(spec, ["tools.names="]).tools.names == ()


def test_no_overrides_is_the_same_spec(spec):
    assert apply_overrides(spec, []) == spec


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("query_recapp=off", "Unknown switch or setting 'query_recapp'"),
        ("limits.worker_turn=5", "limits has no field 'worker_turn'"),
        ("nosection.x=1", "the spec has no field 'nosection'"),
        ("limits=5", "is a section"),
        ("mode.x=1", "'mode' has no fields"),
        ("query_recap", "is not name=value"),
        ("=on", "is not name=value"),
    ],
)
def test_unknown_names_list_the_switches(spec, override, message):
    with pytest.raises(ConfigError) as info:
        apply_overrides(spec, [override])
    text = str(info.value)
    assert message in text
    assert "Switches: " + ", ".join(SWITCHES) in text


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("query_recap=maybe", "expected on/off, true/false, yes/no or 1/0"),
        ("limits.worker_turns=many", "expected int"),
        ("limits.worker_turns=1.5", "expected int"),
        ("tools.timeout_s=soon", "expected float"),
        ("mode=solo", "expected one of matpo, single"),
        ("worker_total_tokens=lots", "expected int or none"),
        ("worker_total_tokens=0", "must be positive"),
        ("planner_context_tokens=-5", "must be positive"),
        ("blocked_domains=/datasets", "has no host"),
    ],
)
def test_bad_values_are_config_errors_naming_the_setting(spec, override, message):
    with pytest.raises(ConfigError, match=message) as info:
        apply_overrides(spec, [override])
    assert override.split("=")[0].split(".")[-1] in str(info.value)


def test_switch_values_report_every_switch_json_ready(spec):
    values = switch_values(spec)
    assert set(values) == set(SWITCHES)
    assert values["query_recap"] is True and values["forced_summary"] is True
    assert values["strip_thinking"] is True and values["leakage_guard"] is False
    assert values["summary_chars"] == 2000 and values["context_tokens"] == 8192
    assert values["worker_context_tokens"] is None and values["planner_total_tokens"] is None
    assert values["blocked_domains"] == list(DEFAULT_BLOCKED_DOMAINS)
    json.dumps(values)

    changed = switch_values(apply_overrides(spec, ["leakage_guard=on", "worker_total_tokens=900"]))
    assert changed["leakage_guard"] is True and changed["worker_total_tokens"] == 900


def test_every_switch_round_trips_through_its_override(spec):
    for name, value in switch_values(spec).items():
        if value is None:
            text = "none"
        elif isinstance(value, bool):
            text = "on" if value else "off"
        elif isinstance(value, list):
            text = ",".join(value)
        else:
            text = str(value)
        assert apply_overrides(spec, [f"{name}={text}"]) == spec, name


def test_new_switch_fields_are_typed():
    hints = typing.get_type_hints(type(load_env_spec("world-frames").limits))
    assert hints["forced_summary"] is bool
    assert hints["worker_total_tokens"] == int | None


def test_switches_are_settable_from_toml(tmp_path):
    path = tmp_path / "switched.toml"
    path.write_text(
        '[tools]\nleakage_guard = true\nblocked_domains = ["kaggle.com"]\n'
        "[limits]\nforced_summary = false\nsummary_chars = 0\nworker_total_tokens = 5000\n"
        "[prompts]\nquery_recap = false\nstrip_thinking = false\n",
        encoding="utf-8",
    )
    loaded = load_env_spec(str(path))
    assert switch_values(loaded) | {"context_tokens": None} == {
        **switch_values(EnvSpec("x")),
        "leakage_guard": True,
        "blocked_domains": ["kaggle.com"],
        "forced_summary": False,
        "summary_chars": 0,
        "worker_total_tokens": 5000,
        "query_recap": False,
        "strip_thinking": False,
        "context_tokens": None,
    }
    path.write_text("[limits]\nworker_total_tokens = 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="worker_total_tokens must be positive"):
        load_env_spec(str(path))


def test_module_examples():
    result = doctest.testmod(overrides_module)
    assert result.attempted > 0 and result.failed == 0
