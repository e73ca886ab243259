"""Plausible but irrelevant prose: the text that makes pages long and noisy.

Filler never states a fact a question asks about and avoids the infobox's label words, so it adds
reading load without changing any answer. It does mention the page's subject, stray years and
numbers, as real encyclopedia prose does.
"""

from __future__ import annotations

import random
import string

_TEMPLATES = (
    "Local accounts that mention {name} dwell on a {adj} {thing}, which visitors call {quality}.",
    "Several {group} have written about {name}, though their notes mostly concern the {thing}.",
    "In {year}, a {event} drew {group} from as far as {place}; tales of {name} recall it.",
    "The {thing} associated with {name} was {quality} long before records were kept.",
    "Some link the {thing} to the {event} of {year}; others place it in a later {period}.",
    "A {adj} {thing} attributed to {place} became a familiar sight during the {period}.",
    "Archives in {place} hold {count} letters that mention {name}, mostly about the {thing}.",
    "The surrounding {terrain} is known for its {adj} {thing} and a {event} every {season}.",
    "Travellers in the {period} remarked on the {adj} light over the {terrain} near {place}.",
    "Few {group} who visited left lasting impressions; one called the {thing} {quality}.",
    "A {adj} map from {year} shows the {terrain} in detail, though its scale is unreliable.",
    "The {event} of {year} is commemorated by a {adj} plaque that few people read.",
    "Some {group} still prefer the old spelling, seen on a {adj} {thing} near {place}.",
    "In {season} the {terrain} around {place} turns {colour}, as painters have long recorded.",
    "An often repeated story involves a {adj} {thing} and a quarrel between {group} and {place}.",
    "No source explains the origin of the {thing}; the {count} surviving accounts disagree.",
    "Objects linked to the {adj} {thing} of the {period} fill small museums across {place}.",
    "The {colour} {thing} in many depictions of {name} is probably a later invention.",
)
_WORDS: dict[str, tuple[str, ...]] = {
    "adj": (
        "weathered",
        "curious",
        "modest",
        "carved",
        "windswept",
        "forgotten",
        "celebrated",
        "narrow",
        "painted",
        "timeworn",
        "quiet",
        "lavish",
        "humble",
        "striking",
        "crooked",
    ),
    "thing": (
        "bell tower",
        "market square",
        "stone bridge",
        "ferry landing",
        "chapel",
        "archway",
        "tapestry",
        "fountain",
        "lighthouse",
        "granary",
        "mural",
        "orchard wall",
        "clock",
        "watermill",
        "procession",
        "ballad",
        "costume",
        "recipe",
        "festival banner",
    ),
    "quality": (
        "remarkably well kept",
        "plain but pleasing",
        "older than it looks",
        "oddly proportioned",
        "unusually bright",
        "beloved by children",
        "difficult to photograph",
        "full of small details",
    ),
    "group": (
        "travellers",
        "chroniclers",
        "pilgrims",
        "merchants",
        "students",
        "folklorists",
        "surveyors",
        "poets",
        "cartographers",
        "collectors",
    ),
    "event": (
        "harvest fair",
        "great flood",
        "lantern parade",
        "spring market",
        "regatta",
        "winter storm",
        "boundary survey",
        "music contest",
        "chess tournament",
        "solar eclipse",
    ),
    "period": (
        "early era",
        "reform period",
        "long peace",
        "age of canals",
        "railway age",
        "interwar years",
    ),
    "terrain": (
        "valley",
        "coastline",
        "plateau",
        "marshland",
        "hill country",
        "river plain",
        "forest edge",
    ),
    "season": ("spring", "summer", "autumn", "winter"),
    "colour": ("amber", "silver", "grey-green", "ochre", "pale blue", "deep red"),
    "place": (
        "Ostmere",
        "Caldrin",
        "Varrowby",
        "Lisk",
        "Thornel",
        "Brevane",
        "Quillan",
        "Maresk",
        "Elbryn",
        "Sollow",
        "Dunmarch",
        "Penvra",
    ),
}


_SLOTS = tuple(
    tuple(field for _, field, _, _ in string.Formatter().parse(t) if field in _WORDS)
    for t in _TEMPLATES
)


def filler_paragraph(rng: random.Random, name: str, sentences: int = 7) -> str:
    """One paragraph of ``sentences`` template sentences about nothing that matters."""
    out = []
    for i in rng.sample(range(len(_TEMPLATES)), sentences):
        words = {key: rng.choice(_WORDS[key]) for key in _SLOTS[i]}
        year, count = 1500 + int(rng.random() * 500), 3 + int(rng.random() * 400)
        out.append(_TEMPLATES[i].format(name=name, year=year, count=count, **words))
    return " ".join(out)
