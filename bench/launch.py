"""Run one command and write its own resource use as JSON: `python -I -S launch.py OUT CMD...`.

A child's `ru_maxrss` counts the memory of the process that spawned it (Linux keeps the
high-water mark of the address space that `exec` replaces), so the benchmark, which grows
while it works, does not spawn the measured programs itself: this small launcher does, and
reports `wait4` figures of that one child. It uses the standard library only.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(argv: list[str]) -> int:
    """Spawn `argv[1:]` with inherited stdin/stdout/stderr, wait, write the figures."""
    out_path, command = argv[0], argv[1:]
    started = time.perf_counter()
    pid = os.posix_spawnp(command[0], command, os.environ)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    figures = {
        "exit_code": os.waitstatus_to_exitcode(status),
        "wall_s": wall,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "maxrss_kib": usage.ru_maxrss,  # kilobytes on Linux
    }
    with open(out_path, "w", encoding="utf-8") as out:
        json.dump(figures, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
