"""Entry point: ``python -m advinterp.execute`` executes the book's notebooks on every core into
Jupyter Book's execution cache, so that ``jupyter-book build`` renders them without executing them
one after another (``make book`` runs both; the machinery is :mod:`advinterp.sweeps.book`).

Notebooks whose current code already has a cached execution are skipped. A failing notebook is
reported here and left to the build, which executes it again and shows its error in place.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .core import paths
from .sweeps.book import Executed, execute_book


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m advinterp.execute", description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=None, help="the book's root, with _toc.yml (default: this checkout)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="notebooks executed side by side, one thread each (default: 2, or 1 on one core)")
    return p


def _say(e: Executed) -> None:
    print(f"  {'executed' if e.ok else 'FAILED  '} {e.stem} in {e.seconds:.0f} s" + ("" if e.ok else f": {e.error[:300]}"),
          flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    root = Path(args.root) if args.root else paths.repo_root()
    try:
        done = execute_book(root, workers=args.workers, report=_say)
    except ValueError as err:
        parser().error(str(err))
    failed = [e.stem for e in done if not e.ok]
    print(f"executed {len(done) - len(failed)} notebook(s) into {root / '_build' / '.jupyter_cache'}"
          + (f"; the build will show the error of {', '.join(failed)}" if failed else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
