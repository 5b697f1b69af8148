"""A variant that disagrees with eager torch is never timed: the families time the others and then
raise UntimedVariants, which the suite turns into its rows plus one reported failure per variant."""
from __future__ import annotations


class UntimedVariants(AssertionError):
    def __init__(self, rows: list[dict], failed: dict[str, str]):
        super().__init__("; ".join(f"{name}: {why}" for name, why in failed.items()))
        self.rows = rows        # the timed variants' rows
        self.failed = failed    # variant -> why it was not timed


def finish(rows: list[dict], failed: dict[str, str]) -> list[dict]:
    """The case's rows, or UntimedVariants carrying them when some variant failed its check."""
    if failed:
        raise UntimedVariants(rows, failed)
    return rows
