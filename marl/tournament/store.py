"""Finished matches on disk, as they complete: one JSON line each in ``results.jsonl``, flushed
and fsynced, so a killed tournament keeps every match that finished and ``--resume`` plays only
the rest. A line cut short by a kill is ignored (that match is simply played again)."""

from __future__ import annotations

import json
import os
from pathlib import Path

RESULTS = "results.jsonl"
FAILURES = "failures.jsonl"


def _append(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _end_last_line(path: Path) -> None:
    """A line cut short by a kill gets its newline, so the next record starts on a line of its own."""
    if path.is_file() and path.stat().st_size > 0:
        with open(path, "rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")


def _read(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # the last line of a killed run may be incomplete
    return out


class ResultStore:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        for name in (RESULTS, FAILURES):
            _end_last_line(self.folder / name)

    def add(self, result: dict) -> None:
        _append(self.folder / RESULTS, result)

    def add_failure(self, record: dict) -> None:
        _append(self.folder / FAILURES, record)

    def results(self) -> dict[str, dict]:
        """Finished matches by key (the last record wins if a match was stored twice)."""
        return {r["key"]: r for r in _read(self.folder / RESULTS) if "key" in r}

    def failures(self) -> list[dict]:
        return _read(self.folder / FAILURES)

    def clear_failures(self) -> None:
        (self.folder / FAILURES).unlink(missing_ok=True)
