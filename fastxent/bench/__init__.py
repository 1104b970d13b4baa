"""Benchmarks against peers: the case registry (:mod:`.cases`), the workloads (:mod:`.workloads`),
the harness that times each method in a process of its own (:mod:`.run`) with pytest-benchmark
(:mod:`.timing`, the test that process runs) and the report and README section made from its
results (:mod:`.summary`)."""
