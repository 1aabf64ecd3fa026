"""Spreadsheets are read in a disposable, memory-limited child process.

python-calamine can abort the whole process on a hostile .xls (it tries to allocate hundreds of
gigabytes; see ``parsers``). A server must not die because of one upload, so the parent copies
the spreadsheet to a temporary file and runs ``python -m tessera.imports.isolated`` on it under
an address-space limit. The child runs the same parser and writes one JSON line per chunk, per
progress step, or for the error; if it dies instead, the upload is an ``InvalidFile``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

from tessera import errors
from tessera.imports.parsers import FileFormat, ProgressCallback, iter_number_chunks

#: The child's address-space limit: far above what a million-row sheet needs.
MEMORY_LIMIT_BYTES = 4 * 1024**3


def _limit_memory() -> None:
    """Called by the child on itself (a ``preexec_fn`` is unsafe in a threaded parent)."""
    if os.name == "posix":
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))


def iter_sheet_chunks(
    stream: BinaryIO,
    fmt: FileFormat,
    *,
    min_length: int,
    max_length: int,
    chunk_size: int,
    on_progress: ProgressCallback | None = None,
) -> Iterator[list[str]]:
    """``iter_number_chunks`` for .xls/.xlsx, run in a child process."""
    with tempfile.NamedTemporaryFile(suffix=f".{fmt.value}") as copy:
        shutil.copyfileobj(stream, copy)
        copy.flush()
        command = [
            sys.executable, "-m", "tessera.imports.isolated",
            copy.name, fmt.value, str(min_length), str(max_length), str(chunk_size),
        ]  # fmt: skip
        child = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            preexec_fn=_limit_memory if os.name == "posix" else None,
        )
        assert child.stdout is not None
        try:
            for line in child.stdout:
                message = json.loads(line)
                if "chunk" in message:
                    yield message["chunk"]
                elif "progress" in message:
                    if on_progress is not None:
                        on_progress(*message["progress"])
                elif "invalid_number" in message:
                    raise errors.InvalidNumber(**message["invalid_number"])
                elif "invalid_file" in message:
                    raise errors.InvalidFile(reason=message["invalid_file"])
                elif "done" in message:
                    return
        finally:
            child.kill()
            child.wait()
            child.stdout.close()
        raise errors.InvalidFile(reason="the spreadsheet could not be read: its reader crashed")


def _child(path: str, fmt: str, min_length: int, max_length: int, chunk_size: int) -> None:
    out = sys.stdout

    def progress(done: int, total: int) -> None:
        out.write(json.dumps({"progress": [done, total]}) + "\n")

    try:
        with open(path, "rb") as stream:
            for chunk in iter_number_chunks(
                stream, FileFormat(fmt), min_length=min_length, max_length=max_length,
                chunk_size=chunk_size, on_progress=progress,
            ):  # fmt: skip
                out.write(json.dumps({"chunk": chunk}, ensure_ascii=False) + "\n")
    except errors.InvalidNumber as error:
        out.write(
            json.dumps({"invalid_number": {"line": error.line, "reason": error.extra["reason"]}}) + "\n"
        )
    except errors.InvalidFile as error:
        out.write(json.dumps({"invalid_file": error.extra.get("reason", "unreadable")}) + "\n")
    else:
        out.write(json.dumps({"done": True}) + "\n")
    out.flush()


if __name__ == "__main__":  # pragma: no cover - the child's entry point
    _limit_memory()
    _child(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
