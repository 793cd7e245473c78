"""Summarise the last mutmut run (scripts/mutation.sh): score per module and every surviving mutant's diff.

Usage: python scripts/mutation_report.py PATTERN... [--out FILE]
PATTERNs are the mutant-name globs the run was given; mutants outside them (mutmut generates every function
of a listed file) are left out of the score. Run from the repository root, after ``mutmut run``.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
from mutmut.utils.file_utils import walk_mutatable_files

DETECTED = ("killed", "timeout", "segfault")  # a timeout or crash means a test noticed the change
COLUMNS = ("killed", "timeout", "survived", "no tests", "suspicious", "skipped", "not checked")


def function_of(key: str) -> str:
    """core.sde.xǁVPSDEǁbeta__mutmut_3 -> VPSDE.beta; core.sde.x_check_T__mutmut_1 -> check_T."""
    name = key.rpartition(".")[2].partition("__mutmut_")[0]
    return name[2:] if name.startswith("x_") else name.strip("xǁ").replace("ǁ", ".")


def number_of(key: str) -> int:
    return int(re.search(r"__mutmut_(\d+)$", key).group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patterns", nargs="+")
    parser.add_argument("--out", type=Path, help="also write the report (markdown) here")
    args = parser.parse_args()

    status_by_key: dict[str, str] = {}
    path_by_key: dict[str, Path] = {}
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for key, code in data.exit_code_by_key.items():
            if any(fnmatch.fnmatch(key, p) for p in args.patterns):
                status_by_key[key] = status_by_exit_code[code]
                path_by_key[key] = path
    if not status_by_key:
        print("no mutation results: run scripts/mutation.sh first", file=sys.stderr)
        return 1

    counts: dict[str, Counter] = defaultdict(Counter)
    for key, status in status_by_key.items():
        counts[str(path_by_key[key])][status] += 1
    lines = ["| module | mutants | " + " | ".join(COLUMNS) + " | score |", "|---" * (len(COLUMNS) + 3) + "|"]

    def row(name: str, c: Counter) -> str:
        tested = sum(c.values()) - c["skipped"] - c["not checked"]
        score = 100.0 * sum(c[s] for s in DETECTED) / tested if tested else float("nan")
        return f"| {name} | {sum(c.values())} | " + " | ".join(str(c[s]) for s in COLUMNS) + f" | {score:.1f}% |"

    for module in sorted(counts):
        lines.append(row(module, counts[module]))
    lines.append(row("**all**", sum(counts.values(), Counter())))
    lines.append("")
    lines.append("Score = (killed + timeout) / (mutants - skipped - not checked).")

    survivors = sorted((k for k, s in status_by_key.items() if s not in DETECTED), key=lambda k: (str(path_by_key[k]), function_of(k), number_of(k)))
    lines += ["", f"## Surviving mutants ({len(survivors)})"]
    current = None
    for key in survivors:
        group = f"{path_by_key[key]}: {function_of(key)}"
        if group != current:
            lines += ["", f"### {group}"]
            current = group
        lines += ["", f"`{key}` ({status_by_key[key]})", "```diff", get_diff_for_mutant(key, path=path_by_key[key]).strip(), "```"]

    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
