"""The knobs of one synthetic world: its seed, its size and how noisy its pages are."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class WorldConfig:
    """Everything that determines a world; two equal configs build identical worlds."""

    seed: int = 0
    """Seed of every random choice: entities, page filler and questions."""
    num_entities: int = 400
    """Real entities in the world, spread over the entity kinds (distractors come on top)."""
    distractors_per_entity: float = 0.3
    """Near-duplicate distractor pages per entity: confusable names, different facts."""
    filler_paragraphs: int = 2
    """Paragraphs of plausible but irrelevant prose per entity page: the page-length knob."""
    base_url: str = "https://wiki.matpo-world.test"
    """Scheme and host the site's absolute URLs use; pages link with host-relative paths."""

    def __post_init__(self) -> None:
        if self.num_entities < 30:
            raise ValueError(f"num_entities must be at least 30, got {self.num_entities}")
        if not 0.0 <= self.distractors_per_entity <= 5.0:
            raise ValueError(
                f"distractors_per_entity must be in [0, 5], got {self.distractors_per_entity}"
            )
        if self.filler_paragraphs < 0:
            raise ValueError(f"filler_paragraphs must be >= 0, got {self.filler_paragraphs}")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL with a host, got {self.base_url!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(
                f"base_url must have no path, query or fragment (pages link to /wiki/...), "
                f"got {self.base_url!r}"
            )
