"""How many processes ``agentsms serve`` runs."""

from __future__ import annotations

import pytest

from agentsms.supervisor import ProcessPlan, plan_processes


@pytest.mark.parametrize(
    ("requested", "run_worker", "cores", "plan"),
    [
        # Default: one API process per core but one, and the worker in a process of its own.
        (None, True, 2, ProcessPlan(api_processes=1, worker_process=True)),
        (None, True, 8, ProcessPlan(api_processes=7, worker_process=True)),
        (None, False, 4, ProcessPlan(api_processes=3, worker_process=False)),
        # One core: everything in one process, as before.
        (None, True, 1, ProcessPlan(api_processes=1, worker_process=False)),
        # --processes 1: one process with its worker inside, whatever the cores.
        (1, True, 8, ProcessPlan(api_processes=1, worker_process=False)),
        (3, True, 2, ProcessPlan(api_processes=3, worker_process=True)),
        (3, False, 2, ProcessPlan(api_processes=3, worker_process=False)),
    ],
)
def test_plan(requested: int | None, run_worker: bool, cores: int, plan: ProcessPlan) -> None:
    assert plan_processes(requested, run_worker=run_worker, cores=cores) == plan


def test_only_more_than_one_process_is_supervised() -> None:
    assert not ProcessPlan(api_processes=1, worker_process=False).supervised
    assert ProcessPlan(api_processes=1, worker_process=True).supervised
    assert ProcessPlan(api_processes=2, worker_process=False).supervised
