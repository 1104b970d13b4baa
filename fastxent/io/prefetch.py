"""Run several batch producers ahead of the consumer in threads, and hand out their items in order.

Used to decode Parquet row groups in parallel: pyarrow decodes one column chunk on one thread
(and releases the GIL), so two row groups decoding at once keep two cores busy while memory stays
bounded: each producer may run at most ``depth`` items ahead, and at most ``workers`` producers
run at a time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

_DONE = object()
#: How often a blocked producer checks whether the consumer has gone away.
_POLL_S = 0.05


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def ordered_prefetch(producers: list[Callable[[], Iterable]], workers: int, depth: int) -> Iterator:
    """Yield every item of ``producers[0]()``, then of ``producers[1]()``, ... in order.

    Up to ``workers`` producers run ahead in threads, each at most ``depth`` items ahead. An
    exception in a producer is raised in the consumer at that producer's turn. Closing the
    generator early stops the producers.
    """
    stop = threading.Event()
    queues = [queue.Queue(maxsize=depth) for _ in producers]

    def put(q: queue.Queue, item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def run(index: int) -> None:
        q = queues[index]
        try:
            for item in producers[index]():
                if not put(q, item):
                    return
            put(q, _DONE)
        except BaseException as err:  # handed to the consumer, which re-raises it
            put(q, _Failure(err))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        # submitted in order, so producer i always starts before producer i + 1: no deadlock
        futures = [pool.submit(run, i) for i in range(len(producers))]
        try:
            for q in queues:
                while (item := q.get()) is not _DONE:
                    if isinstance(item, _Failure):
                        raise item.error
                    yield item
        finally:
            stop.set()
            for future in futures:
                future.cancel()
