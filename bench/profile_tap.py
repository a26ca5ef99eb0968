"""Run the tap under cProfile, all threads: `python bench/profile_tap.py OUT CLOCK ARGS...`.

`python -m cProfile` sees only the main thread, and the tap reads bodies ahead in other
threads. Here each thread that starts gets a profiler of its own (through
`threading.setprofile`), and all of them are merged into one pstats file at exit. CLOCK is
`cpu` (each thread's own CPU time: waiting for the API, for a lock or for the CPU is not
counted) or `wall`. ARGS are the tap's (`--config C --catalog K`). Run it as a file, not
with `-m`, so that the current folder does not come first on the import path.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import threading
import time
from types import FrameType
from typing import Any


def main(argv: list[str]) -> int:
    """Profile one run of the tap and write the merged profile to `argv[0]`."""
    out_path, clock, tap_args = argv[0], argv[1], argv[2:]
    timer = time.thread_time if clock == "cpu" else time.perf_counter
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def profile_new_thread(_frame: FrameType, _event: str, _arg: Any) -> None:
        # Called once, at the first event of a new thread: a profiler replaces this hook.
        profiler = cProfile.Profile(timer)
        with lock:
            profiles.append(profiler)
        profiler.enable()

    threading.setprofile(profile_new_thread)
    main_profiler = cProfile.Profile(timer)
    sys.argv = ["tap-contactbased", *tap_args]
    code: int | str | None = 0
    main_profiler.enable()
    try:
        from tap_contactbased.cli import main as tap_main  # noqa: PLC0415 - imports profiled

        tap_main()
    except SystemExit as exc:
        code = exc.code
    finally:
        main_profiler.disable()
        threading.setprofile(None)
        stats = pstats.Stats(main_profiler)
        with lock:
            for profiler in profiles:
                stats.add(profiler)
        stats.dump_stats(out_path)
    return code if isinstance(code, int) else (0 if code is None else 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
