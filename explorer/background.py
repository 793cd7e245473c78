"""Values read from disk on a worker thread, cached: the GUI thread asks, gets what is ready, and is called back
when the rest arrives (so no file is ever read on the GUI thread)."""

from __future__ import annotations

from typing import Callable, Hashable

from superqt.utils import thread_worker

_PENDING = object()


class BackgroundCache:
    """``get(key, load, ready)``: the cached value, or None while ``load()`` runs on Qt's thread pool; every
    ``ready()`` given while it loads is called in the GUI thread once it is cached. A load that raises caches None
    (callers show why)."""

    def __init__(self) -> None:
        self._values: dict[Hashable, object] = {}
        self._waiting: dict[Hashable, list[Callable[[], None]]] = {}
        self._workers: set = set()

    def get(self, key: Hashable, load: Callable[[], object], ready: Callable[[], None]):
        if key in self._values:
            value = self._values[key]
            if value is _PENDING:
                self._waiting[key].append(ready)
                return None
            return value
        self._values[key] = _PENDING
        self._waiting[key] = [ready]
        worker = thread_worker(load, start_thread=False, ignore_errors=True)()
        worker.returned.connect(lambda result, k=key: self._store(k, result))
        worker.errored.connect(lambda _exc, k=key: self._store(k, None))
        worker.finished.connect(lambda w=worker: self._workers.discard(w))
        self._workers.add(worker)
        worker.start()
        return None

    def loading(self, key: Hashable) -> bool:
        return self._values.get(key) is _PENDING

    def _store(self, key: Hashable, value) -> None:
        self._values[key] = value
        for ready in self._waiting.pop(key, []):
            ready()
