"""The ``study`` command and its ``bn-study`` alias: parsers and the one function they call."""

from __future__ import annotations

import argparse


def add_study_parsers(sub) -> None:
    from . import STUDIES

    p = sub.add_parser("study", help="the seed papers' experiments: a Markdown report, PNG figures and JSON")
    studies = p.add_subparsers(dest="study", required=True)
    for name, module in STUDIES.items():
        _add_options(studies.add_parser(name, help=module.HELP, description=module.__doc__.split("\n\n")[0]),
                     name, module)
    alias = sub.add_parser("bn-study", help="the same as `study bn` (the former name)")
    _add_options(alias, "bn", STUDIES["bn"])


def _add_options(p: argparse.ArgumentParser, name: str, module) -> None:
    p.add_argument("--recipe", default="full", help=f"{', '.join(module.RECIPES)} (default: full; small is for "
                   "tests)")
    p.add_argument("--out", default=f"studies/{name}", help=f"folder for report.md, figures and results.json "
                   f"(default: studies/{name})")
    p.add_argument("--data", help="folder with the dataset files (full MNIST IDX files; CIFAR-10 python batches)")
    p.add_argument("--workers", type=int, default=None, help="models computed at once (default: one per core; 0: all in this process)")
    p.add_argument("--store", help="results store (default: $PGDL_BENCH_HOME/results.sqlite)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    for flag, kwargs in getattr(module, "OPTIONS", {}).items():
        p.add_argument(flag, **kwargs)
    p.set_defaults(func=_cmd_study, study=name)


def _cmd_study(args) -> int:
    from . import STUDIES, run_study

    extra = {flag.lstrip("-").replace("-", "_"): None for flag in getattr(STUDIES[args.study], "OPTIONS", {})}
    options = {key: getattr(args, key) for key in extra}
    report = run_study(args.study, args.recipe, args.out, args.data, progress=not args.quiet, workers=args.workers,
                       store=args.store, **options)
    print(f"{args.study}: report {report.out / 'report.md'}, data {report.out / 'results.json'}")
    return 0
