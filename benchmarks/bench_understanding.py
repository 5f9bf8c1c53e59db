"""How well replies are understood: the evaluation set through the real inbound path.

Each reply of ``benchmarks/data/understanding_eval.yaml`` goes where a real reply goes:
the compliance keywords first (``core.compliance``: opt-out, help, the unclear-opt-out
question), then the shipped appointment-reminder pathway run by the flow agent, for a
person with a San Francisco number (no ``timezone`` given: the zone comes from the number)
writing on Monday, December 7, 2026 at 09:00 local time. The outcome the conversation
reaches is compared with the one the set expects; a reschedule must also carry the
expected time. Prints accuracy per class, the confusion table, the wrong closed
outcomes (a conversation closed, or an opt-out recorded, with the wrong answer) and the
CPU time per reply (every reply answers the same opening, so its time is read once).

    .venv/bin/python benchmarks/bench_understanding.py [--set PATH] [--show-misses]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from agentsms.agents import Agent, AgentInput, HistoryEntry, build_agent, load_demo_pathway
from agentsms.core import compliance

EVAL_SET = Path(__file__).parent / "data" / "understanding_eval.yaml"
MORE_SET = Path(__file__).parent / "data" / "understanding_eval_more.yaml"
"""Replies written after the first set, in other phrasings: ``--set`` it to measure it."""
CLASSES = (
    "confirm",
    "cancel",
    "reschedule_time",
    "reschedule",
    "question",
    "unclear",
    "opt_out",
    "help",
)
CLOSING = frozenset({"confirm", "cancel", "reschedule_time", "opt_out"})
PERSON = "+14155550123"  # San Francisco
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
OPENING = (
    "Hi Ann, this is a reminder of your appointment tomorrow at 3 PM. "
    "Reply YES to confirm, R to reschedule, or C to cancel."
)


@dataclass(frozen=True)
class Case:
    """One reply of the set and the outcome it must reach."""

    text: str
    expected: str
    at: str | None = None
    """Local time expected for a reschedule: "YYYY-MM-DD HH:MM", "YYYY-MM-DD" or "HH:MM"."""


@dataclass(frozen=True)
class Result:
    """What the reply reached."""

    case: Case
    predicted: str
    when: str | None = None

    @property
    def right(self) -> bool:
        return self.predicted == self.case.expected and self.time_right

    @property
    def time_right(self) -> bool:
        at = self.case.at
        if self.predicted != "reschedule_time" or at is None:
            return True
        when = self.when or ""
        if " " in at:
            return when.startswith(at.replace(" ", "T"))
        if ":" in at:
            return f"T{at}" in when
        return when.startswith(at)

    @property
    def wrong_closed(self) -> bool:
        return self.predicted in CLOSING and not self.right


def load_cases(path: Path = EVAL_SET) -> list[Case]:
    """The evaluation set: ``class: [text | {text, at}]``."""
    document: dict[str, list[Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))
    cases = []
    for expected, items in document.items():
        if expected not in CLASSES:
            raise ValueError(f"unknown class {expected!r} in {path}")
        for item in items:
            if isinstance(item, str):
                cases.append(Case(item, expected))
            else:
                cases.append(Case(item["text"], expected, item.get("at")))
    return cases


async def outcome(text: str, agent: Agent) -> tuple[str, str | None]:
    """The outcome one reply reaches (a class name) and, for a reschedule, its time."""
    keyword = compliance.classify(text, {})
    if keyword in ("opt_out", "help"):
        return keyword, None
    if compliance.maybe_opt_out(text, {}):
        return "unclear", None  # asked whether it is an opt-out
    output = await agent.respond(
        AgentInput(
            conversation_id="conv_eval",
            history=[
                HistoryEntry("agent", OPENING, NOW - timedelta(minutes=5)),
                HistoryEntry("person", text, NOW),
            ],
            context=None,
            task_context=None,
            metadata={"name": "Ann", "time": "tomorrow at 3 PM"},
            state={"node": "remind", "vars": {}, "retries": 0},
            dispositions=[],
            extraction_schemas=[],
            person_number=PERSON,
        )
    )
    if output.ending is not None:
        reached = {
            "confirmed": "confirm",
            "canceled": "cancel",
            "rescheduled": "reschedule_time",
            "question": "question",
        }.get(output.ending.outcome, output.ending.outcome)
        return reached, output.ending.extracted.get("new_time")
    if output.current_node_id == "ask_new_time":
        return "reschedule", None
    return "unclear", None


async def evaluate(cases: list[Case]) -> list[Result]:
    """Every case's result."""
    agent = build_agent({"kind": "flow", "pathway": load_demo_pathway()})
    results = []
    for case in cases:
        predicted, when = await outcome(case.text, agent)
        results.append(Result(case, predicted, when))
    return results


def report(results: list[Result]) -> str:
    """Markdown: accuracy per class, the confusion table, the totals."""
    lines = ["| class | replies | right | accuracy |", "|---|---:|---:|---:|"]
    for name in CLASSES:
        mine = [r for r in results if r.case.expected == name]
        if mine:
            right = sum(r.right for r in mine)
            lines.append(f"| {name} | {len(mine)} | {right} | {right / len(mine):.1%} |")
    right = sum(r.right for r in results)
    wrong_closed = sum(r.wrong_closed for r in results)
    lines.append(f"| **all** | {len(results)} | {right} | **{right / len(results):.1%}** |")
    predicted_names = [*CLASSES, *sorted({r.predicted for r in results} - set(CLASSES))]
    counts = Counter(
        (r.case.expected, r.predicted if r.time_right else "wrong time") for r in results
    )
    if any(not r.time_right for r in results):
        predicted_names.append("wrong time")
    lines += [
        "",
        "Confusion (rows: expected, columns: reached):",
        "",
        "| expected \\ reached | " + " | ".join(predicted_names) + " |",
        "|---|" + "---:|" * len(predicted_names),
    ]
    for name in CLASSES:
        row = [str(counts.get((name, p), 0) or "·") for p in predicted_names]
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    lines += ["", f"Wrong closed outcomes: **{wrong_closed}** (a miss must be a re-ask)."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, default=EVAL_SET, help="evaluation set (YAML)")
    parser.add_argument("--show-misses", action="store_true", help="list every miss")
    args = parser.parse_args()
    cases = load_cases(args.set)
    cpu = time.process_time()
    results = asyncio.run(evaluate(cases))
    cpu = time.process_time() - cpu
    print(report(results))
    print(f"\nCPU: {cpu / len(cases) * 1000:.2f} ms a reply (the agent's turn, start-up included)")
    if args.show_misses:
        print()
        for r in results:
            if not r.right:
                print(
                    f"{r.case.expected:>15} -> {r.predicted:<15} {r.when or '':28} {r.case.text!r}"
                )


if __name__ == "__main__":
    main()
