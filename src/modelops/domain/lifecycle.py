"""Lifecycle actions on model versions: which job kind records each, who may take it, what it
needs. The status change itself is decided by ``model_status``'s one transition table.

    approve  evaluated → approved   approver or admin, reason required   job kind approval
    reject   evaluated → rejected   approver or admin, reason required   job kind rejection
    deploy   approved  → deployed   member and up, reason optional       job kind deployment
    retire   deployed  → retired    member and up, reason required       job kind retirement

Deploying and retiring are an operator's work once a reviewer has approved; the approval is
the gate, so they need only the member role.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from modelops.domain.errors import InvalidInput
from modelops.domain.jobs import JobKind
from modelops.domain.model_status import ModelStatus
from modelops.domain.roles import Role

MAX_REASON_CHARS = 2000


class LifecycleAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    DEPLOY = "deploy"
    RETIRE = "retire"


@dataclass(frozen=True)
class ActionRule:
    action: LifecycleAction
    job_kind: JobKind
    target_status: ModelStatus
    role: Role
    needs_reason: bool
    past_tense: str


ACTION_RULES: dict[LifecycleAction, ActionRule] = {
    LifecycleAction.APPROVE: ActionRule(
        LifecycleAction.APPROVE, JobKind.APPROVAL, ModelStatus.APPROVED, Role.APPROVER, True, "approved"
    ),
    LifecycleAction.REJECT: ActionRule(
        LifecycleAction.REJECT, JobKind.REJECTION, ModelStatus.REJECTED, Role.APPROVER, True, "rejected"
    ),
    LifecycleAction.DEPLOY: ActionRule(
        LifecycleAction.DEPLOY, JobKind.DEPLOYMENT, ModelStatus.DEPLOYED, Role.MEMBER, False, "deployed"
    ),
    LifecycleAction.RETIRE: ActionRule(
        LifecycleAction.RETIRE, JobKind.RETIREMENT, ModelStatus.RETIRED, Role.MEMBER, True, "retired"
    ),
}

# Kinds whose jobs are recorded by the lifecycle services, never submitted as bare jobs.
LIFECYCLE_JOB_KINDS = frozenset(rule.job_kind for rule in ACTION_RULES.values())


def clean_reason(reason: str | None, *, action: LifecycleAction) -> str:
    """The reason as stored: trimmed, bounded, present when the action needs one."""
    text = (reason or "").strip()
    if ACTION_RULES[action].needs_reason and not text:
        raise InvalidInput(f"to {action.value} a model version, give a reason (kept for reference)")
    if len(text) > MAX_REASON_CHARS:
        raise InvalidInput(f"the reason is longer than {MAX_REASON_CHARS} characters")
    return text
