"""The only module that imports ``transitions``.

One ``Machine`` per workflow definition and thread, driving a reused scratch model
whose state is set from the stored row; no machine or model is kept per case, so the
engine's memory does not grow with the number of cases.
"""

from __future__ import annotations

import threading

from transitions import Machine, MachineError

from .definitions import WorkflowDefinition
from .errors import EventNotAllowed, UnknownEvent


class _Scratch:
    state: str


class StateMachine:
    """Answers "where does ``event`` lead from ``state``?" for one definition."""

    def __init__(self, definition: WorkflowDefinition) -> None:
        self.definition = definition
        self._local = threading.local()
        self._events = frozenset(definition.events)
        # A definition is frozen, so each answer is asked of `transitions` once and kept:
        # triggering costs ~12 µs, a dict lookup well under one (docs/benchmarks.md).
        self._allowed: dict[str, tuple[str, ...]] = {}
        self._targets: dict[tuple[str, str], str | None] = {}

    def _machine(self) -> tuple[Machine, _Scratch]:
        pair = getattr(self._local, "pair", None)
        if pair is None:
            d = self.definition
            scratch = _Scratch()
            machine = Machine(
                model=scratch,
                states=list(d.state_names),
                transitions=[
                    {"trigger": t.event, "source": t.source, "dest": t.target}
                    for t in d.transitions
                ],
                initial=d.initial,
                auto_transitions=False,
                ignore_invalid_triggers=False,
                send_event=False,
                queued=False,
            )
            pair = (machine, scratch)
            self._local.pair = pair
        return pair

    def allowed(self, state: str) -> tuple[str, ...]:
        """The events that may be fired from ``state``, in definition order."""
        cached = self._allowed.get(state)
        if cached is None:
            machine, _ = self._machine()
            triggers = set(machine.get_triggers(state))
            cached = tuple(e for e in self.definition.events if e in triggers)
            self._allowed[state] = cached
        return cached

    def target(self, state: str, event: str, case_number: str) -> str:
        """Return the state ``event`` leads to from ``state``.

        Raises:
            UnknownEvent: the workflow has no such event.
            EventNotAllowed: the event exists but not from ``state``.
        """
        key = (state, event)
        if key not in self._targets:
            self._targets[key] = self._ask(state, event)
        target = self._targets[key]
        if target is None:
            if event not in self._events:
                raise UnknownEvent(self.definition.name, event, self.definition.events)
            raise EventNotAllowed(case_number, event, state, self.allowed(state))
        return target

    def _ask(self, state: str, event: str) -> str | None:
        """Trigger ``event`` from ``state`` on the scratch model; None if refused."""
        if event not in self._events:
            return None
        machine, scratch = self._machine()
        machine.set_state(state, model=scratch)
        try:
            scratch.trigger(event)  # type: ignore[attr-defined]
        except MachineError:
            return None
        return scratch.state
