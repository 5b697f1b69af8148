"""Stopping a training run gracefully: the first Ctrl-C, or a SIGTERM (what cluster schedulers
send before they kill a job), asks the run to stop at the end of the current step, where
everything trained so far is saved for --resume; a second one interrupts at once."""
from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in SIGNALS}
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:  # the second: stop now
            raise KeyboardInterrupt
        self.requested = True
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(f"\n{name}: stopping after this step, saving the run for --resume (again to stop at once) ...",
              flush=True)

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
