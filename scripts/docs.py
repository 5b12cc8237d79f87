"""Regenerate the command-output blocks of README.md and of the docs pages: ``make docs``.

A block is an HTML comment naming a shell command, followed by a fenced block holding what it printed::

    <!-- output: pgdl-bench zoo list -->
    ```
    $ pgdl-bench zoo list
    ...
    ```

Options go between ``output`` and the colon, separated by spaces (``<!-- output home=main slow: CMD -->``):

* ``home=NAME``: run with ``PGDL_BENCH_HOME`` set to the named home, shared by every block that names it
  within one run of this script, in document order (a later block reuses the results an earlier one
  stored: for speed, and for commands such as ``pgdl-bench store list`` that show what a run stored).
  Without it a block runs in a fresh, empty home of its own. Named homes are created empty in a temporary
  folder that is removed at the end, or kept in ``--homes DIR`` (a second run then reuses what they hold).
* ``slow``: the fast test (tests/test_readme_blocks.py) leaves the block to the slow one.
* ``cwd=tmp``: run in a fresh empty folder instead of the repository root.
* ``lang=X``: the fence's language; the block then shows the output alone, without the ``$ command`` line
  (for a file shown with ``cat``).

Commands run under ``bash`` in the repository root, with this interpreter's ``bin`` folder first on
``PATH`` (so ``pgdl-bench`` is this checkout's) and ``PGDL_BENCH_NO_PLUGINS=1`` (installed plugin packages do
not change the listings); only stdout is captured (write ``2>&1`` to show error lines) and a command must
exit 0 (write ``; echo "exit status $?"`` to show a failing one). What varies from run to run is
normalized (``normalize``): the temporary home is shown as ``$PGDL_BENCH_HOME``, the temporary folder and
the repository's absolute path as ``.``, elapsed seconds as ``N s``, the age of stored results as ``N min
ago``, the code hash of a measure's version as ``<code hash>`` and a task folder's quick fingerprint (of file
sizes and times, which differ between checkouts) as ``sha256:<file times>`` (``VARYING``).

``python -m scripts.docs`` rewrites the blocks; ``--check`` rewrites nothing and exits 1 when a block differs
from what its command prints now; ``--fast`` leaves out the blocks marked ``slow``; ``--file PATH`` limits the
run to some documents.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Documents in the order their blocks run: the main job's page first, so that later blocks naming its
# home (home=main) reuse its results.
DOCUMENTS = ("docs/reports/main_job.md", "README.md", "docs/reports/leaderboard.md")
MARKER = re.compile(r"^<!-- output(?P<options>(?: [a-z]+(?:=[\w.-]+)?)*): (?P<command>.+?) -->\n"
                    r"(?P<fence>```[\w-]*\n(?P<body>.*?)^```\n?)", re.M | re.S)
# What varies from run to run, and what it is shown as: elapsed seconds ("(639 s)" of a zoo build, "; 3.6 s)"
# of a leaderboard, "in 2.74s" of pytest), the age of stored results ("3 min ago" of store list) and the
# code hash in a measure's version ("3+3f6114311ead"), which any edit of the code it covers changes.
VARYING = ((re.compile(r"(?<![\w.])\d+(?:\.\d+)? ?s(?=\))"), "N s"),
           (re.compile(r"(?<=\bin )\d+(?:\.\d+)?s\b"), "N s"),
           (re.compile(r"\b\d+ (?:s|min|h|d) ago\b"), "N min ago"),
           (re.compile(r"(?<=\b\d\+)[0-9a-f]{12}\b"), "<code hash> "),
           # a task folder's quick fingerprint hashes file times, which differ between checkouts
           (re.compile(r"sha256:[0-9a-f]{16}(?= \(file sizes and times, not content\))"), "sha256:<file times>"))
COMMAND_TIMEOUT_S = 3600


@dataclass
class Block:
    path: Path
    start: int
    end: int
    command: str
    options: dict[str, str] = field(default_factory=dict)
    body: str = ""

    @property
    def slow(self) -> bool:
        return "slow" in self.options

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path}: {self.command}"


def documents(root: Path = ROOT) -> list[Path]:
    """The listed documents that exist, then any other Markdown file under docs/ holding a block."""
    listed = [root / d for d in DOCUMENTS if (root / d).exists()]
    others = sorted(p for p in (root / "docs").rglob("*.md") if p not in listed and re.search(r"^<!-- output", p.read_text(), re.M))
    return listed + others


def parse_options(text: str) -> dict[str, str]:
    options = {}
    for word in text.split():
        key, _, value = word.partition("=")
        if key not in ("home", "slow", "cwd", "lang"):
            raise ValueError(f"unknown block option {word!r}")
        options[key] = value
    return options


def find_blocks(path: Path) -> list[Block]:
    text = path.read_text()
    blocks = []
    for match in MARKER.finditer(text):
        blocks.append(Block(path, match.start("fence"), match.end("fence"), match["command"],
                            parse_options(match["options"]), match["body"]))
    if len(re.findall(r"^<!-- output", text, re.M)) != len(blocks):
        raise ValueError(f"{path}: a '<!-- output' marker is not followed by a fenced block")
    return blocks


def normalize(text: str, replacements: dict[str, str]) -> str:
    for old, new in sorted(replacements.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(old, new)
    for pattern, shown in VARYING:
        text = pattern.sub(shown, text)
    return "\n".join(line.rstrip() for line in text.rstrip("\n").split("\n"))


def render(block: Block, output: str) -> str:
    if "lang" in block.options:
        return f"```{block.options['lang']}\n{output}\n```\n"
    return f"```\n$ {block.command}\n{output}\n```\n"


class Runner:
    """Runs blocks, keeping the named homes of one run."""

    def __init__(self, homes: Path | None = None, root: Path = ROOT):
        self.root = root
        self._tmp = None if homes else tempfile.TemporaryDirectory(prefix="pgdl-docs-")
        self.homes = Path(homes) if homes else Path(self._tmp.name)
        self.homes.mkdir(parents=True, exist_ok=True)

    def close(self):
        if self._tmp is not None:
            self._tmp.cleanup()

    def output(self, block: Block) -> str:
        scratch = Path(tempfile.mkdtemp(prefix="pgdl-docs-block-"))
        try:
            if "home" in block.options:
                home = self.homes / block.options["home"]
                home.mkdir(exist_ok=True)
            else:
                home = scratch / "home"
                home.mkdir()
            cwd = self.root
            if block.options.get("cwd") == "tmp":
                cwd = scratch / "cwd"
                cwd.mkdir()
            env = dict(os.environ, PGDL_BENCH_HOME=str(home), PGDL_BENCH_NO_PLUGINS="1",
                       PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
            run = subprocess.run(["bash", "-c", block.command], cwd=cwd, env=env, capture_output=True,
                                 text=True, timeout=COMMAND_TIMEOUT_S)
            if run.returncode != 0:
                raise RuntimeError(f"{block.name}: exit status {run.returncode}\n{run.stderr[-3000:]}")
            replacements = {str(home): "$PGDL_BENCH_HOME", str(home.resolve()): "$PGDL_BENCH_HOME",
                            str(self.root) + "/": "", str(self.root): "."}
            if cwd != self.root:
                replacements.update({str(cwd) + "/": "", str(cwd): "."})
            return normalize(run.stdout, replacements)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def regenerate(paths: list[Path], *, check: bool = False, fast: bool = False, homes: Path | None = None,
               log=print) -> list[str]:
    """Run every block of the documents in order; rewrite them (or, with check, only compare).
    Returns the names of the blocks whose text differed."""
    runner = Runner(homes)
    differed = []
    try:
        for path in paths:
            blocks = [b for b in find_blocks(path) if not (fast and b.slow)]
            text = path.read_text()
            new_text, offset = text, 0
            for block in blocks:
                log(f"{block.name}")
                fresh = render(block, runner.output(block))
                old = text[block.start:block.end]
                if fresh.rstrip("\n") != old.rstrip("\n"):
                    differed.append(block.name)
                    if check:
                        log("".join(difflib.unified_diff(old.splitlines(True), fresh.splitlines(True),
                                                         "in the document", "printed now")))
                new_text = new_text[:block.start + offset] + fresh + new_text[block.end + offset:]
                offset += len(fresh) - (block.end - block.start)
            if not check and new_text != text:
                path.write_text(new_text)
    finally:
        runner.close()
    return differed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.docs", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, rewrite nothing; exit 1 on a difference")
    parser.add_argument("--fast", action="store_true", help="leave out the blocks marked slow")
    parser.add_argument("--file", action="append", help="only these documents (repeatable)")
    parser.add_argument("--homes", help="keep the named homes (home=NAME) in this folder, reused by later runs")
    args = parser.parse_args(argv)
    paths = [Path(f).resolve() for f in args.file] if args.file else documents()
    differed = regenerate(paths, check=args.check, fast=args.fast, homes=args.homes and Path(args.homes),
                          log=lambda text: print(text, file=sys.stderr))
    if args.check and differed:
        print(f"{len(differed)} block(s) differ from what their commands print; run `make docs`",
              file=sys.stderr)
        return 1
    print(f"{'checked' if args.check else 'regenerated'} the blocks of {len(paths)} document(s); "
          f"{len(differed)} changed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
