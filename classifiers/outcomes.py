"""Cost/quality routing learned from per-backend outcomes (RouteLLM-style), public entry points.

Serving (numpy only)::

    router = load_artefact("policies/artefacts/cost_quality")   # arrays.npz + meta.json
    choice = router.choose(vector, candidates, prices, threshold_or_floor)
    choice.backend, choice.predicted_quality, choice.reason

Training and evaluation (scikit-learn at training time only): ``gateway train-outcomes`` and
``gateway eval --outcomes``; see docs/cost-quality-routing.md.
"""

from __future__ import annotations

from classifiers.outcomes_artefact import ArtefactError, load_artefact, read_meta, save_artefact
from classifiers.outcomes_cli import (
    add_outcomes_arguments,
    add_train_outcomes_parser,
    eval_outcomes,
    train_outcomes,
)
from classifiers.outcomes_data import OutcomesError, OutcomesTable, excluded_prompts, load_outcomes
from classifiers.outcomes_router import Choice, CostQualityError, CostQualityRouter

__all__ = [
    "ArtefactError",
    "Choice",
    "CostQualityError",
    "CostQualityRouter",
    "OutcomesError",
    "OutcomesTable",
    "add_outcomes_arguments",
    "add_train_outcomes_parser",
    "eval_outcomes",
    "excluded_prompts",
    "load_artefact",
    "load_outcomes",
    "read_meta",
    "save_artefact",
    "train_outcomes",
]
