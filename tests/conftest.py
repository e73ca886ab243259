import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """The tiny local model (tokenizer + random Llama weights), built once per test session."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from matpo_gym.models import TinyModelConfig, build_tiny_model

    return build_tiny_model(TinyModelConfig(), tmp_path_factory.mktemp("tiny-model"))
