"""Model version status machine: one transition table, with the actions that need a reason."""

from __future__ import annotations

from enum import StrEnum

from modelops.domain.errors import InvalidInput, InvalidTransition


class ModelStatus(StrEnum):
    TRAINED = "trained"
    IMPORTED = "imported"
    UPLOADED = "uploaded"  # a package upload: code only, not yet trained
    EVALUATED = "evaluated"
    APPROVED = "approved"
    REJECTED = "rejected"
    DEPLOYED = "deployed"
    RETIRED = "retired"


MODEL_TRANSITIONS: dict[ModelStatus, frozenset[ModelStatus]] = {
    ModelStatus.UPLOADED: frozenset({ModelStatus.EVALUATED}),
    ModelStatus.TRAINED: frozenset({ModelStatus.EVALUATED}),
    ModelStatus.IMPORTED: frozenset({ModelStatus.EVALUATED}),
    # Re-evaluation of an evaluated version is allowed.
    ModelStatus.EVALUATED: frozenset(
        {ModelStatus.EVALUATED, ModelStatus.APPROVED, ModelStatus.REJECTED}
    ),
    ModelStatus.APPROVED: frozenset({ModelStatus.DEPLOYED}),
    ModelStatus.REJECTED: frozenset(),
    ModelStatus.DEPLOYED: frozenset({ModelStatus.RETIRED}),
    ModelStatus.RETIRED: frozenset(),
}

NEEDS_REASON = frozenset({ModelStatus.APPROVED, ModelStatus.REJECTED, ModelStatus.RETIRED})


def model_sources_for(target: ModelStatus) -> frozenset[ModelStatus]:
    return frozenset(s for s, nxt in MODEL_TRANSITIONS.items() if target in nxt)


def check_model_transition(
    current: ModelStatus, target: ModelStatus, *, version_label: str, reason: str | None = None
) -> None:
    if target not in MODEL_TRANSITIONS[current]:
        raise InvalidTransition(
            entity=f"model version {version_label}",
            current=current.value,
            requested=target.value,
            allowed=sorted(s.value for s in MODEL_TRANSITIONS[current]),
        )
    if target in NEEDS_REASON and not (reason and reason.strip()):
        raise InvalidInput(f"moving model version {version_label} to '{target}' needs a reason")
