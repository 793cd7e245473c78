"""Every run, sweep and T selection of the session, with change events (psygnal signals, Qt-free).

Workers hand their record batches to ``fold``; the collection folds them into the entry and emits one
``changed(run_id, what)`` per kind of change, which the widgets subscribe to. Nothing polls
(docs/explorer.md#model).
"""

from __future__ import annotations

from typing import Iterator

from psygnal import Signal

from .entries import STATUS, Entry, TrainingRun
from .palette import run_colour


class RunCollection:
    """Entries by run id, in the order they were added."""

    added = Signal(int)
    changed = Signal(int, str)  # run id, what changed: entries.STEPS, EVALS or STATUS
    removed = Signal(int)
    failed = Signal(int, str)

    def __init__(self) -> None:
        self._entries: dict[int, Entry] = {}
        self._next_id = 1

    def reserve(self) -> tuple[int, tuple[int, int, int]]:
        """A fresh run id and its colour (taken only when a run starts or a file has loaded)."""
        run_id = self._next_id
        self._next_id += 1
        return run_id, run_colour(run_id)

    def add(self, entry: Entry) -> Entry:
        self._entries[entry.run_id] = entry
        self.added.emit(entry.run_id)
        return entry

    def remove(self, run_id: int) -> None:
        if self._entries.pop(run_id, None) is not None:
            self.removed.emit(run_id)

    def get(self, run_id: int | None) -> Entry | None:
        return None if run_id is None else self._entries.get(run_id)

    def __getitem__(self, run_id: int) -> Entry:
        return self._entries[run_id]

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    def values(self) -> list[Entry]:
        return list(self._entries.values())

    @property
    def active(self) -> list[Entry]:
        return [e for e in self._entries.values() if e.active]

    def fold(self, run_id: int, batch: list[dict]) -> set[str]:
        """Fold a batch of records or sweep events into the entry and tell the listeners what changed."""
        entry = self._entries.get(run_id)
        if entry is None:
            return set()
        was_failed = entry.status == "failed"
        fold = entry.add_record if isinstance(entry, TrainingRun) else entry.add_event
        changed = {fold(record) for record in batch}
        for what in sorted(changed):
            self.changed.emit(run_id, what)
        if entry.status == "failed" and not was_failed:
            self.failed.emit(run_id, entry.message)
        return changed

    def update(self, run_id: int, what: str = STATUS) -> None:
        """Tell the listeners that an entry changed outside ``fold`` (status, a resume, a rename)."""
        if run_id in self._entries:
            self.changed.emit(run_id, what)

    def fail(self, run_id: int, message: str) -> None:
        entry = self._entries.get(run_id)
        if entry is not None:
            entry.fail(message)
            self.failed.emit(run_id, message)
            self.changed.emit(run_id, STATUS)
