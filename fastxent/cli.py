"""The ``fastxent`` command. This version has ``info`` and ``warmup``; ``score`` comes next."""

from __future__ import annotations

import argparse
import platform
import sys


def _info() -> int:
    import numba
    import numpy
    import pyarrow

    from . import __version__
    from .kernels.jit import cache_dir

    rows = [
        ("fastxent", __version__),
        ("python", platform.python_version()),
        ("numba", numba.__version__),
        ("numpy", numpy.__version__),
        ("pyarrow", pyarrow.__version__),
        ("threads", str(numba.get_num_threads())),
        ("threading layer", numba.config.THREADING_LAYER),
        ("cache dir", cache_dir()),
        ("gpu", "not used by this build (CPU kernels only)"),
    ]
    for name, value in rows:
        print(f"{name:<16} {value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fastxent", description="Exact cross-entropy, fast.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="versions, threads, threading layer, cache dir")
    commands.add_parser("warmup", help="compile (or load from the cache) every kernel")
    args = parser.parse_args(argv)
    if args.command == "info":
        return _info()
    from .warmup import warmup

    print(f"kernels ready in {warmup():.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
