"""A small labelled set whose labels a bag-of-words encoder can separate."""

from __future__ import annotations

import random

from classifiers.data import Example

_TEMPLATES = {
    "small": ["what is the capital of {x}", "translate {x} to french", "how many days until {x}"],
    "rag": ["according to our internal wiki what is the {x} policy", "search the company handbook for {x}"],
    "long_context": [
        "summarise this entire {x} contract of 300 pages",
        "read the whole {x} transcript and list",
    ],
    "frontier": [
        "prove rigorously the {x} theorem step by step",
        "design a distributed {x} architecture with proofs",
    ],
}
_FILLERS = ["spain", "tax", "holiday", "merger", "kernel", "graph", "vacation", "lease", "audit", "pricing"]


def make_examples(per_label: int = 24, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    out = []
    for label, templates in _TEMPLATES.items():
        for i in range(per_label):
            template = templates[i % len(templates)]
            out.append(Example(template.format(x=rng.choice(_FILLERS)) + f" {rng.choice(_FILLERS)}", label))
    rng.shuffle(out)
    return out
