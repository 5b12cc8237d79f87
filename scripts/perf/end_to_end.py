"""The default leaderboard end to end: once on a cold (empty) results store, then again on the warm one.

    python -m scripts.perf.end_to_end [TASK ...] [-m MEASURE ...] [--json out.json]

Runs ``python -m benchmark leaderboard --out TMP --store TMP/store.sqlite -q`` as a subprocess (the
interpreter running this), timing the whole process: cold = a store file that does not exist yet, so
every measure is computed on every model; warm = the same command again, so every result comes from
the store (and the leaderboard's own cache in TMP). The default zoos are built into the zoo cache
(``$PGDL_BENCH_HOME/zoos`` or ``~/.cache/pgdl-bench/zoos``) on first use; a cold run that has to
train them says so. Without a ``leaderboard`` subcommand the same is done with ``score`` (reported).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COLD_LIMIT_S = 300.0
WARM_LIMIT_S = 10.0


def has_subcommand(name: str) -> bool:
    result = subprocess.run([sys.executable, "-m", "benchmark", name, "--help"], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    return result.returncode == 0


def zoos_cached() -> bool | None:
    """Whether every default zoo is available without training (pinned in the package, or built into the
    cache by an older version); None when that cannot be told."""
    try:
        from task_loaders.pinned import pinned_zoo
        from task_loaders.zoo import DEFAULT_ZOOS, zoo_cache_dir
    except ImportError:
        return None
    return all(pinned_zoo(name) is not None or (zoo_cache_dir() / name / "model_configs.json").is_file()
               for name in DEFAULT_ZOOS)


def _timed(command: list[str], timeout: float) -> dict:
    start = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        returncode, stdout, stderr = result.returncode, result.stdout, result.stderr
    except subprocess.TimeoutExpired as exc:
        returncode, stdout, stderr = None, exc.stdout or "", f"timed out after {timeout:.0f} s"
        stdout = stdout.decode() if isinstance(stdout, bytes) else stdout
    seconds = time.perf_counter() - start
    lines = [line for line in stdout.splitlines() if line.strip()]
    return {"seconds": seconds, "returncode": returncode, "summary": lines[-1] if lines else "",
            "stderr_tail": stderr[-2000:]}


def run(tasks=(), measures=(), timeout: float = 3600.0, workdir: str | None = None) -> dict:
    subcommand = "leaderboard" if has_subcommand("leaderboard") else "score"
    cached = zoos_cached() if not tasks else None
    with tempfile.TemporaryDirectory(prefix="pgdl-perf-leaderboard-", dir=workdir) as tmp:
        store = Path(tmp) / "store.sqlite"
        out = Path(tmp) / ("leaderboard" if subcommand == "leaderboard" else "predictions")
        command = [sys.executable, "-m", "benchmark", subcommand, *map(str, tasks)]
        for m in measures:
            command += ["-m", m]
        command += ["--out", str(out), "--store", str(store), "-q"]
        cold = _timed(command, timeout)
        warm = _timed(command, timeout)
    shown = ["python", "-m", "benchmark", subcommand, *map(str, tasks)]
    for m in measures:
        shown += ["-m", m]
    return {
        "subcommand": subcommand,
        "command": " ".join(shown + ["--out", "TMP", "--store", "TMP/store.sqlite", "-q"]),
        "default_leaderboard": not tasks and not measures,
        "zoos_cached_before": cached,
        "cold": cold,
        "warm": warm,
        "cold_limit_s": COLD_LIMIT_S,
        "warm_limit_s": WARM_LIMIT_S,
    }


def summary(r: dict) -> str:
    def part(name, limit):
        s = r[name]
        rc = "" if s["returncode"] == 0 else f", exit status {s['returncode']}"
        return f"{name} {s['seconds']:.1f} s (target < {limit:g} s{rc})"

    return (f"`{r['command']}`: {part('cold', r['cold_limit_s'])}, {part('warm', r['warm_limit_s'])}"
            + ("" if r["subcommand"] == "leaderboard" else " [no leaderboard subcommand: timed score instead]"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", nargs="*", help="task folders (default: the default zoos)")
    parser.add_argument("-m", "--measure", action="append", default=[])
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    r = run(args.task, args.measure)
    print(summary(r))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    ok = r["cold"]["seconds"] < COLD_LIMIT_S and r["warm"]["seconds"] < WARM_LIMIT_S
    return 0 if ok and r["cold"]["returncode"] == 0 and r["warm"]["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
