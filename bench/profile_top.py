"""The functions a py-spy raw profile spent most of its samples in, by cumulative share.

A raw profile (`py-spy record --format raw`) is one line per distinct stack: frames joined by
`;`, then its sample count. A function's cumulative share is the share of samples whose
stack holds it at least once (so recursion counts once); its own share, the samples where it
is the innermost frame.

    .venv/bin/python bench/profile_top.py PROFILE.txt [...] [--top 25]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

_LINE_NUMBER = re.compile(r":\d+\)$")
# Frames every sample of a thread holds: they say nothing about where the time goes.
_ROOTS = ("Thread._bootstrap", "Thread._bootstrap_inner", "Thread.run ")


@dataclass(frozen=True, slots=True)
class FunctionShare:
    function: str  # "qualified.name (path/of/file.py)"
    cumulative: float  # 0..1 of the samples
    own: float


def top_cumulative(paths: Iterable[Path], top: int = 25) -> tuple[int, list[FunctionShare]]:
    """The samples read, and the `top` functions by cumulative share (thread roots left out)."""
    cumulative: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for path in paths:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            samples = int(count)
            frames = [
                _LINE_NUMBER.sub(")", frame)
                for frame in stack.split(";")
                if not frame.startswith("process ")
            ]
            total += samples
            for frame in set(frames):
                cumulative[frame] += samples
            if frames:
                own[frames[-1]] += samples
    shares = [
        FunctionShare(function, n / total, own[function] / total)
        for function, n in cumulative.most_common()
        if not function.startswith(_ROOTS)
    ]
    return total, shares[:top]


def format_top(total: int, shares: Sequence[FunctionShare]) -> str:
    lines = [f"{total:,} samples; share of them: cumulative, own, function"]
    lines += [f"{s.cumulative:6.1%} {s.own:6.1%}  {s.function}" for s in shares]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(format_top(*top_cumulative(args.profiles, args.top)))


if __name__ == "__main__":
    main()
