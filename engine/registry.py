"""The workflow registry: every registered definition by name and version, with its
state machine and which of its events can touch a deadline."""

from __future__ import annotations

from . import timers
from .definitions import WorkflowDefinition
from .errors import UnknownWorkflow
from .machine import StateMachine
from .notices import TEMPLATE_FIELDS


class Registry:
    """Workflow versions by name; new cases use the highest version of each name,
    running cases keep the one they started on."""

    def __init__(self) -> None:
        self._definitions: dict[tuple[str, int], WorkflowDefinition] = {}
        self._latest: dict[str, int] = {}
        self._machines: dict[tuple[str, int], StateMachine] = {}
        #: events that may start, stop, pause or resume a deadline in some workflow:
        #: they run on SQLAlchemy Core, where the timer queries live
        self.deadline_events: set[str] = set()

    def register(self, definition: WorkflowDefinition) -> None:
        key = (definition.name, definition.version)
        self._definitions[key] = definition
        self._machines[key] = StateMachine(definition)
        for t in definition.transitions:
            if timers.touches(definition, t.source, t.target, t.event):
                self.deadline_events.add(t.event)
        self._latest[definition.name] = max(
            self._latest.get(definition.name, 0), definition.version
        )

    def latest(self) -> list[WorkflowDefinition]:
        """The newest version of every registered workflow, by name."""
        return [self._definitions[(n, v)] for n, v in sorted(self._latest.items())]

    def get(self, name: str, version: int | None = None) -> WorkflowDefinition:
        """The definition of ``name`` (its newest version unless ``version``).

        Raises:
            UnknownWorkflow: with the names that are registered.
        """
        v = self._latest.get(name) if version is None else version
        definition = self._definitions.get((name, v)) if v is not None else None
        if definition is None:
            raise UnknownWorkflow(name, sorted(self._latest), version)
        return definition

    def rule_names(self, name: str) -> frozenset[str]:
        """The deadline rules of every registered version of ``name`` (a case keeps the
        rules of the version it runs on)."""
        return frozenset(
            r.name for (n, _), d in self._definitions.items() if n == name for r in d.deadlines
        )

    def machine(self, definition: WorkflowDefinition) -> StateMachine:
        return self._machines[(definition.name, definition.version)]

    def notice_fields(self) -> dict[str, frozenset[str]]:
        """Every notice the registered workflows and the deadlines can send, with the
        fields its template receives (what the template set is checked against)."""
        fields = dict(TEMPLATE_FIELDS)
        for definition in self._definitions.values():
            for name, spec in definition.hooks.notices.items():
                fields[name] = spec.fields
        return fields
