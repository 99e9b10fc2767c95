"""A gate for swarm tests: the scripted server holds sub-agents' requests in rounds, so that how many are
in flight at once is decided by the client's limiter, not by how fast the server answers."""

from __future__ import annotations

import threading

QUIET = 0.3  # no new request for this long: the client sends no more this round, answer the ones held


class RoundGate:
    """Holds each request until ``width`` are held (then the round is full) or none arrives for QUIET
    seconds (the client's limit holds the rest back); then answers the whole round."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.full_rounds = 0  # rounds that reached ``width`` held at once
        self.rounds = 0
        self._held = 0
        self._arrivals = 0
        self._cond = threading.Condition()

    def hold(self) -> None:
        with self._cond:
            self._held += 1
            self._arrivals += 1
            round_number = self.rounds
            if self._held >= self.width:
                self.full_rounds += 1
                self._release()
                return
            self._cond.notify_all()  # a new arrival: the others' quiet starts again
            while self.rounds == round_number:
                arrivals = self._arrivals
                if not self._cond.wait(QUIET) and self.rounds == round_number and arrivals == self._arrivals:
                    self._release()

    def _release(self) -> None:
        self._held = 0
        self.rounds += 1
        self._cond.notify_all()
