"""Where a Ray batch's task actors run, and how many tasks each takes at once.

One actor per node, taking as many tasks at once as the node has CPUs for (``--num-cpus`` per task), up to
``--workers`` in all: a node's agents then all fork from one warm process, as the local pool's do, instead
of each actor importing the agent's run path again (about a second of CPU per actor). Actors start when
the first task needs them. An actor that dies fails the tasks it was running (each a result) and is
replaced by one with the same share, on the same node while that node is there, elsewhere otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Share:
    """One actor's place: a Ray node id (None: wherever Ray likes) and how many tasks it runs at once."""

    node: str | None
    slots: int


def plan(nodes: list[dict[str, Any]], workers: int, num_cpus: float) -> list[Share]:
    """Shares for ``workers`` tasks at once over the alive ``nodes`` (as ``ray.nodes()`` lists them), the
    largest first: never more tasks on a node than its CPUs hold, as Ray tasks of ``num_cpus`` would be."""
    workers = max(1, workers)
    if num_cpus <= 0:
        return [Share(None, workers)]
    room = sorted(
        ((int(float(n.get("Resources", {}).get("CPU", 0.0)) / num_cpus + 1e-9), str(n.get("NodeID", "")))
         for n in nodes if n.get("Alive")),
        reverse=True,
    )
    shares: list[Share] = []
    for fits, node in room:
        take = min(fits, workers - sum(s.slots for s in shares))
        if take > 0:
            shares.append(Share(node or None, take))
    return shares or [Share(None, 1)]  # no node holds a task now: Ray places it when one does


@dataclass
class Member:
    share: Share
    free: int
    handle: Any = None  # started when a task first needs it
    alive: bool = True


class Fleet:
    """The batch's task actors: which one takes the next task, and replacing those that die."""

    def __init__(self, shares: list[Share], start: Callable[[Share], Any], kill: Callable[[Any], None]) -> None:
        self.members = [Member(share, share.slots) for share in shares]
        self._start = start
        self._kill = kill

    def has_room(self) -> bool:
        return any(m.alive and m.free > 0 for m in self.members)

    def take(self) -> Member:
        """A member with a free slot (started ones first, so no actor starts while one has room); only
        when ``has_room()``."""
        ready = [m for m in self.members if m.alive and m.free > 0]
        member = max(ready, key=lambda m: (m.handle is not None, m.free))
        if member.handle is None:
            member.handle = self._start(member.share)
        member.free -= 1
        return member

    def give_back(self, member: Member, lost: bool) -> None:
        """A task of ``member`` has ended; ``lost``: Ray lost the actor, which is replaced (once)."""
        if not member.alive:
            return
        if not lost:
            member.free += 1
            return
        member.alive = False
        self._kill(member.handle)
        self.members.append(Member(member.share, member.share.slots))

    def started(self) -> list[Any]:
        return [m.handle for m in self.members if m.alive and m.handle is not None]
