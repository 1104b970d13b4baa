"""Run several batch producers ahead of the consumer in threads, and hand out their items in order.

Used to decode Parquet row groups in parallel: pyarrow decodes one column chunk on one thread
(and releases the GIL), so two row groups decoding at once keep two cores busy. Memory stays
bounded by one budget over everything queued, whatever the producers' sizes: a per-producer
bound alone let producers that finish within it (row groups of a few batches) pile up without
limit ahead of a slow consumer (76-115 row groups were measured queued).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class _Queues:
    """Every producer's queue, one lock, and the one budget over all of them."""

    def __init__(self, count: int, depth: int, on_wait: Callable[[int, int], None] | None):
        self.items = [collections.deque() for _ in range(count)]
        self.depth = depth
        self.on_wait = on_wait
        self.changed = threading.Condition()
        self.queued = 0  # data items in all the queues (end and failure markers do not count)
        self.waiting = 0  # producers waiting for room
        self.turn = 0  # the producer the consumer takes items from
        self.stopped = False

    def put(self, index: int, item) -> bool:
        """Queue ``item`` of producer ``index`` once there is room; ``False`` if the consumer
        has gone away. The producer the consumer waits on may always fill its empty queue:
        only it can unblock the consumer, and the items ahead of it are not its own."""
        with self.changed:
            while not self.stopped and not self._room(index):
                self.waiting += 1
                if self.on_wait is not None:
                    self.on_wait(self.queued, self.waiting)
                self.changed.wait()
                self.waiting -= 1
            return self._append(index, item, counted=True)

    def _room(self, index: int) -> bool:
        return self.queued < self.depth or (index == self.turn and not self.items[index])

    def mark(self, index: int, item) -> bool:
        """Queue an end or failure marker: it holds no data, so it never waits for room."""
        with self.changed:
            return self._append(index, item, counted=False)

    def _append(self, index: int, item, counted: bool) -> bool:
        if self.stopped:
            return False
        self.items[index].append(item)
        self.queued += counted
        self.changed.notify_all()
        return True

    def take(self, index: int):
        """The next item of producer ``index``, waiting for it."""
        with self.changed:
            if self.turn != index:
                self.turn = index
                self.changed.notify_all()  # the new turn may fill its empty queue
            while not self.items[index]:
                self.changed.wait()
            item = self.items[index].popleft()
            if item is not _DONE and not isinstance(item, _Failure):
                self.queued -= 1
                self.changed.notify_all()
            return item

    def stop(self) -> None:
        with self.changed:
            self.stopped = True
            self.changed.notify_all()


def ordered_prefetch(
    producers: list[Callable[[], Iterable]],
    workers: int,
    depth: int,
    on_wait: Callable[[int, int], None] | None = None,
) -> Iterator:
    """Yield every item of ``producers[0]()``, then of ``producers[1]()``, ... in order.

    Up to ``workers`` producers run ahead in threads. At most ``depth`` items wait in all their
    queues together, plus one for the producer whose items are being yielded; each running
    producer also holds the item it is waiting to queue. An exception in a producer is raised
    in the consumer at that producer's turn. Closing the generator early stops the producers.

    ``on_wait(queued, waiting)``, if given, is called (under the queues' lock) each time a
    producer starts waiting for room, with the items queued and the producers waiting: an
    observable point at which the bound can be checked without timing.
    """
    queues = _Queues(len(producers), max(1, depth), on_wait)

    def run(index: int) -> None:
        try:
            for item in producers[index]():
                if not queues.put(index, item):
                    return
            queues.mark(index, _DONE)
        except BaseException as err:  # handed to the consumer, which re-raises it
            queues.mark(index, _Failure(err))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        # submitted in order, so producer i always starts before producer i + 1, and the
        # producer whose turn it is has always started: no deadlock
        futures = [pool.submit(run, i) for i in range(len(producers))]
        try:
            for index in range(len(producers)):
                while (item := queues.take(index)) is not _DONE:
                    if isinstance(item, _Failure):
                        raise item.error
                    yield item
        finally:
            queues.stop()
            for future in futures:
                future.cancel()
