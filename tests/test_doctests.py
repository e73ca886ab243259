"""The examples in docstrings are tests too."""

import doctest
import importlib

import pytest

MODULES = [
    "matpo_gym.bench.resume",
    "matpo_gym.bench.store",
    "matpo_gym.core.actions",
    "matpo_gym.data.world",
    "matpo_gym.extras",
    "matpo_gym.policies.openai",
    "matpo_gym.scoring.metrics",
    "matpo_gym.scoring.normalize",
    "matpo_gym.tools.noise",
    "matpo_gym.trainers.advantages",
    "matpo_gym.trainers.launch",
    "matpo_gym.trainers.resume",
    "matpo_gym.trainers.schedule",
    "matpo_gym.trainers.sft",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
