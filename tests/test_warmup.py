"""``fastxent warmup`` compiles what scoring files needs: after it, scoring a file of each layout,
grouped, with per-row losses and as a report, compiles nothing more."""

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import sys, tempfile
    from pathlib import Path
    from types import SimpleNamespace
    from numba.core.registry import CPUDispatcher
    import fastxent as fx
    from fastxent.warmup import FILE_LAYOUTS, warm_files, write_layout

    def dispatchers_in(value, depth=0):
        if isinstance(value, CPUDispatcher):
            yield value
        elif depth < 2 and isinstance(value, (tuple, list, SimpleNamespace)):  # drivers' pairs
            for item in vars(value).values() if isinstance(value, SimpleNamespace) else value:
                yield from dispatchers_in(item, depth + 1)

    def compiled():
        dispatchers = {
            id(d): d
            for name, module in list(sys.modules.items())
            if name.startswith("fastxent")
            for value in list(vars(module).values())
            for d in dispatchers_in(value)
        }
        return len(dispatchers), sum(len(d.signatures) for d in dispatchers.values())

    directory = Path(tempfile.mkdtemp())
    (directory / "warm").mkdir()
    warm_files(directory / "warm", 64)
    before = compiled()
    for file_layout in FILE_LAYOUTS:  # other files of the same layouts
        path, logits = write_layout(directory, file_layout, 300, seed=1, row_group_rows=300)
        fx.score(str(path), target="label", logits=logits, batch_rows=128)
        fx.score(str(path), target="label", logits=logits, group_by="split")
        fx.score(str(path), target="label", logits=logits, losses_to=str(directory / "l.parquet"), keep="id")
        fx.report(str(path), out=directory / "report", by="split", target="label", logits=logits)
    print(*before, *compiled())
    """
)


def test_scoring_files_after_warm_files_compiles_nothing_more():
    done = subprocess.run([sys.executable, "-c", CHILD], check=True, capture_output=True, text=True)
    kernels, before, _, after = (int(v) for v in done.stdout.split()[-4:])
    assert kernels > 100 and before > 0  # the drivers found, and compiled or loaded
    assert after == before
