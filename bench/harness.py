"""What every benchmark module shares: timing a round with its CPU seconds."""

from __future__ import annotations

import statistics
import time


def timed(benchmark, run):
    """``benchmark(run)``, also recording the median CPU seconds of a round, all threads of this
    process together (``extra_info["cpu_s"]``): on two cores, a decoder that keeps both busy
    leaves no time for the kernel, whatever the overlap."""
    cpu = []

    def measured():
        start = time.process_time()
        result = run()
        cpu.append(time.process_time() - start)
        return result

    result = benchmark(measured)
    benchmark.extra_info["cpu_s"] = statistics.median(cpu)
    return result
