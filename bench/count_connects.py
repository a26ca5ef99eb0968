"""Run a Python module, logging each TCP connection it tries: when, and how it ended.

`python bench/count_connects.py LOG MODULE ARGS...` is `python -m MODULE ARGS...` with
`socket.socket.connect` wrapped to append `<time.monotonic()> <outcome> <address>` to LOG
(`ok`, or the error's class: `ConnectionRefusedError`). Run it by path, not with `-m`, so
that MODULE is imported from PYTHONPATH (a `--tap-src` copy) and not from the current
folder. `bench.dead_api` counts with it the requests a run sends to an API that no longer
listens: each of them needs a connection of its own. Standard library only.
"""

from __future__ import annotations

import runpy
import socket
import sys
import time
import typing as t


def main(argv: list[str]) -> None:
    """Run `argv[1]` as `__main__` with `argv[2:]`, logging its connects to `argv[0]`."""
    log_path, module, *args = argv
    log = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - open until exit
    connect = socket.socket.connect

    def logged(self: socket.socket, address: t.Any, /) -> None:
        try:
            connect(self, address)
        except OSError as exc:
            log.write(f"{time.monotonic():.6f} {type(exc).__name__} {address!r}\n")
            raise
        log.write(f"{time.monotonic():.6f} ok {address!r}\n")

    socket.socket.connect = logged  # type: ignore[method-assign,assignment]
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
