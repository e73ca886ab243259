"""Policies: scripted baselines, Hugging Face / vLLM models, OpenAI-compatible endpoints, plugins."""

from matpo_gym.policies.base import Completion, Policy
from matpo_gym.policies.registry import load_policy

__all__ = ["Completion", "Policy", "load_policy"]
