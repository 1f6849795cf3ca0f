"""``python -m pytest_novaload compare OLD NEW``: the before/after table of two runs.

OLD is a run folder, its ``summary.json`` or a baseline file; NEW a run folder or its
``summary.json``. Exit status: 1 when a test regressed, 0 otherwise, 2 on bad input. No pytest
import: CI jobs that only keep artifacts can run it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from pytest_novaload.errors import BaselineError, ConfigError

EXIT_OK, EXIT_REGRESSED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m pytest_novaload",
                     description="pytest-novaload tools that need no pytest run.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command",
                                parser_class=_Parser)
    cmp = sub.add_parser(
        "compare", help="compare two runs: before/after table, exit 1 on a regression",
        description="Compare every load test of NEW with its entry in OLD, noise-aware: a "
        "statistic regresses only when its change, noise included, is beyond its rule.")
    cmp.add_argument("old", metavar="OLD", help="run folder, summary.json or baseline file")
    cmp.add_argument("new", metavar="NEW", help="run folder or summary.json")
    cmp.add_argument("--rules", metavar="TEXT", default=None,
                     help="default rules (as --load-regressions), e.g. "
                     "'trend=p(95) +10%% >1ms, p(99) +10%% >1ms; http_reqs=rate -10%%'")
    cmp.add_argument("--format", choices=("text", "markdown", "json"), default="text",
                     help="output format (default: text)")
    return parser


def compare(old: str, new: str, *, rules: str | None = None, fmt: str = "text") -> int:
    """Print the comparison of ``new`` with ``old``; the exit status."""
    from pytest_novaload.gate.baseline import load_baseline, load_summary
    from pytest_novaload.gate.compare import compare_runs
    from pytest_novaload.gate.report import render_markdown, render_text
    from pytest_novaload.gate.rules import DEFAULT_RULES, parse_default_rules

    try:
        default = (parse_default_rules(rules, what="--rules") if rules is not None
                   else DEFAULT_RULES)
        baseline = load_baseline(old, what="OLD")
        summary = load_summary(new, what="NEW")
    except (BaselineError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    results = compare_runs(baseline, summary, default=default)
    if fmt == "json":
        print(json.dumps({c.nodeid: c.to_dict() for c in results}, indent=2, sort_keys=True))
    elif fmt == "markdown":
        print(render_markdown(results), end="")
    else:
        print(render_text(results), end="")
    return EXIT_REGRESSED if any(c.verdict == "regressed" for c in results) else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "compare":
        return compare(args.old, args.new, rules=args.rules, fmt=args.format)
    return EXIT_USAGE  # pragma: no cover - argparse requires a command


if __name__ == "__main__":
    sys.exit(main())
