"""The compressor: writes pieces of XML (UTF-8) into the zip entry that is open, in the
writer's thread or, with `threaded=True`, in a thread of its own fed by a bounded queue.

Why apart from the writer: either way it opens and closes the entries (with ISA-L's deflate, see
`deflate`), keeps the first error for the writer to raise, and stops cleanly. The thread is off by
default: with ISA-L it costs more in GIL hand-overs than it gains (the numbers are in `writer`).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import zipfile
from typing import Any

from exporthub.formats.xlsx.deflate import use_isal_deflate

QUEUE_CHUNKS = 4  # pieces waiting for the thread at most

OPEN, CLOSE, STOP = "open", "close", "stop"


class Compressor:
    """Writes XML (UTF-8 bytes) into the zip entry that is open, at once or from the queue in its own thread.
    Commands are tuples: (OPEN, name), (CLOSE,), (STOP,). After a failure it drains the queue (so
    that `put` never blocks for ever) and keeps the first error for the writer to raise."""

    def __init__(self, archive: zipfile.ZipFile, *, threaded: bool, isal_level: int | None) -> None:
        self._archive = archive
        self._isal_level = isal_level
        self._entry: Any = None
        self.error: BaseException | None = None
        self._queue: queue.Queue[Any] | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._queue = queue.Queue(maxsize=QUEUE_CHUNKS)
            self._thread = threading.Thread(target=self._run, name="xlsx-compressor", daemon=True)
            self._thread.start()

    def put(self, item: Any) -> None:
        if self.error is not None:
            raise self.error
        if self._queue is None:
            try:
                self._handle(item)
            except BaseException as error:  # the entry is broken: every later put fails the same way
                self.error = error
                raise
        else:
            self._queue.put(item)

    def stop(self) -> None:
        """Wait until everything queued is written (or dropped after an error)."""
        if self._queue is not None and self._thread is not None:
            self._queue.put((STOP,))
            self._thread.join()
            self._queue = self._thread = None

    def discard_entry(self) -> None:
        entry, self._entry = self._entry, None
        if entry is not None:
            with contextlib.suppress(Exception):
                entry.close()

    def _run(self) -> None:
        assert self._queue is not None
        get = self._queue.get
        while True:
            item = get()
            if type(item) is tuple and item[0] == STOP:
                return
            if self.error is None:
                try:
                    self._handle(item)
                except BaseException as error:
                    self.error = error

    def _handle(self, item: Any) -> None:
        if type(item) is bytes:
            self._entry.write(item)
        elif item[0] == OPEN:
            self._entry = self._archive.open(item[1], "w", force_zip64=True)
            if self._isal_level is not None:
                use_isal_deflate(self._entry, self._isal_level)
        elif item[0] == CLOSE:
            entry, self._entry = self._entry, None
            entry.close()
