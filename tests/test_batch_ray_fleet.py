"""Where a Ray batch's actors go and how many tasks each takes, without a cluster (kimicode/batch/ray_fleet.py)."""

from __future__ import annotations

from typing import Any

from kimicode.batch.ray_fleet import Fleet, Share, plan


def _node(node_id: str, cpus: float, alive: bool = True) -> dict[str, Any]:
    return {"NodeID": node_id, "Alive": alive, "Resources": {"CPU": cpus}}


def test_one_actor_per_node_never_more_tasks_than_its_cpus_and_workers_in_all() -> None:
    nodes = [_node("small", 4), _node("big", 8), _node("gone", 64, alive=False)]
    assert plan(nodes, 16, 1.0) == [Share("big", 8), Share("small", 4)]
    assert plan(nodes, 10, 1.0) == [Share("big", 8), Share("small", 2)]
    assert plan(nodes, 3, 2.0) == [Share("big", 3)]
    assert plan(nodes, 16, 0.5) == [Share("big", 16)]
    assert plan(nodes, 4, 0.0) == [Share(None, 4)]  # no CPUs asked: Ray places it anywhere
    assert plan([_node("tiny", 1)], 2, 2.0) == [Share(None, 1)]  # waits for room rather than never running


def test_a_lost_actor_is_replaced_once_and_gets_no_more_tasks() -> None:
    started: list[Share] = []
    killed: list[Any] = []

    def start(share: Share) -> int:
        started.append(share)
        return len(started)

    fleet = Fleet([Share("a", 2), Share("b", 1)], start, killed.append)
    first = fleet.take()
    second = fleet.take()
    assert first is second and started == [Share("a", 2)]  # a started actor with room before a new one
    third = fleet.take()
    assert third.handle == 2 and not fleet.has_room()
    fleet.give_back(first, lost=True)
    fleet.give_back(second, lost=True)  # its other task: the same death, one replacement
    assert killed == [1] and fleet.started() == [2]
    fourth = fleet.take()  # the replacement starts when a task needs it, with the lost actor's share
    assert fourth.handle == 3 and started[-1] == Share("a", 2) and len(started) == 3
    assert fleet.started() == [2, 3]
    fleet.give_back(third, lost=False)
    fleet.give_back(fourth, lost=False)
    assert sum(m.free for m in fleet.members if m.alive) == 3
