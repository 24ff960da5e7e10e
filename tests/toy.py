"""A small workflow with one deadline rule of every feature, for deadline tests."""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from baoflow.engine import Engine, Hooks, load_workflow

TOY: dict[str, Any] = {
    "workflow": {"name": "toy", "version": 1, "case_number_prefix": "TY", "initial": "new"},
    "states": {"new": {}, "waiting": {}, "done": {"final": True}},
    "transitions": [
        {"event": "wait", "source": "new", "target": "waiting"},
        {"event": "resume", "source": "waiting", "target": "new"},
        {"event": "finish", "source": ["new", "waiting"], "target": "done"},
    ],
    "deadlines": [
        {
            "name": "answer",
            "title": "答复",
            "period": "15 natural_days",
            "starts_on": ["new"],
            "stops_on": ["done"],
            "pauses": {"awaiting_customer": ["waiting"]},
            "warnings": [0.5, 0.8],
            "close_of_business": "17:30",
            "article": "银保监会令2020年第3号 第十八条",
            "escalations": [
                {"to": "supervisor", "actions": ["notify", "raise_priority"]},
                {"after": "1 working_days", "to": "branch_manager", "actions": ["reassign"]},
                {
                    "after": "2 working_days",
                    "to": "headquarters",
                    "actions": ["fire_event"],
                    "event": "finish",
                },
            ],
        }
    ],
}


def toy_engine(eng: Engine, **rule: Any) -> Engine:
    """``eng`` with TOY registered, its deadline rule changed by ``rule``."""
    spec = deepcopy(TOY)
    spec["deadlines"][0].update(rule)
    eng.register(load_workflow(spec, Hooks()))
    return eng
