"""matpo-gym: a gym, trainer and benchmark suite for planner/worker tool-using LLM agents."""

from matpo_gym.envs.registration import register_envs

__version__ = "0.1.0"

register_envs()

__all__ = ["__version__", "register_envs"]
