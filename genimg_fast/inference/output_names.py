"""The names `translate` writes its outputs under: one stem per input, never shared, so that no
input's images overwrite another's."""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path


def unique_stems(files: Sequence[Path]) -> list[str]:
    """One output stem per input file, in order, no two equal even ignoring case (a disk may not
    tell X.png from x.png). A stem no other input shares stays as it is (x.png -> x, as the
    reference names its results); inputs that differ only by extension (x.png, x.jpg) keep it
    (x_png, x_jpg); a name still taken gets a number (_2, _3, ...)."""
    shared = Counter(path.stem.casefold() for path in files)
    used: set[str] = set()
    stems = []
    for path in files:
        stem = path.stem if shared[path.stem.casefold()] == 1 else f"{path.stem}_{path.suffix.lstrip('.')}"
        candidate, n = stem, 2
        while candidate.casefold() in used:
            candidate, n = f"{stem}_{n}", n + 1
        used.add(candidate.casefold())
        stems.append(candidate)
    return stems
