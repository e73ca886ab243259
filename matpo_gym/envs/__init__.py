"""Gymnasium environments: planner/worker (MATPO) and single-agent modes over any task source."""

from matpo_gym.envs.episode import Episode
from matpo_gym.envs.gym_env import MatpoEnv
from matpo_gym.envs.registration import register_envs
from matpo_gym.envs.spec import MODES, EnvSpec, Mode, load_env_spec

__all__ = ["MODES", "EnvSpec", "Episode", "MatpoEnv", "Mode", "load_env_spec", "register_envs"]
