"""Core types shared by every layer: messages, roles, the action grammar and trajectories."""

from matpo_gym.core.actions import Action, Answer, ParseError, ToolCall, parse_action
from matpo_gym.core.messages import Message, Prompt, Role
from matpo_gym.core.trajectory import EpisodeResult, EpisodeStats, Trajectory, Turn

__all__ = [
    "Action",
    "Answer",
    "EpisodeResult",
    "EpisodeStats",
    "Message",
    "ParseError",
    "Prompt",
    "Role",
    "ToolCall",
    "Trajectory",
    "Turn",
    "parse_action",
]
