"""The diagnostics models, split by sub-domain: evidence collection and the knowledge base."""

from diagnostics.models.collection import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    AuditEntry,
    CollectionRun,
    Credential,
    Evidence,
    HostKey,
    Playbook,
    RunState,
)
from diagnostics.models.jump import JumpHost, JumpHostKey, JumpLink
from diagnostics.models.knowledge import (
    Confidence,
    FixRecipe,
    KnowledgeRevision,
    Match,
    RecipeFit,
    RecipeOutcome,
    Symptom,
)
from diagnostics.models.sweeps import Sweep, SweepFinding, SweepSchedule

__all__ = [
    "ACTIVE_STATES",
    "TERMINAL_STATES",
    "AuditEntry",
    "CollectionRun",
    "Confidence",
    "Credential",
    "Evidence",
    "FixRecipe",
    "HostKey",
    "JumpHost",
    "JumpHostKey",
    "JumpLink",
    "KnowledgeRevision",
    "Match",
    "Playbook",
    "RecipeFit",
    "RecipeOutcome",
    "RunState",
    "Sweep",
    "SweepFinding",
    "SweepSchedule",
    "Symptom",
]
