"""The benchmark's table and JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.measure import Summary

PROGRAMS = ("tap", "client")


def ratios(results: dict[str, dict[str, Summary]]) -> dict[str, dict[str, float]]:
    """Tap / client, per mode: CPU per row, peak RSS and wall time."""
    out: dict[str, dict[str, float]] = {}
    for mode, pair in results.items():
        tap, client = pair["tap"], pair["client"]
        out[mode] = {
            "cpu_per_row": tap.cpu_us_per_row / client.cpu_us_per_row,
            "peak_rss": tap.peak_rss_mb / client.peak_rss_mb,
            "wall": tap.wall_s / client.wall_s,
        }
    return out


def _row(cells: list[str], widths: list[int]) -> str:
    first = cells[0].ljust(widths[0])
    rest = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
    return "  ".join([first, *rest]).rstrip()


def table(results: dict[str, dict[str, Summary]]) -> str:
    """A compact table of the medians, with the tap/client ratios."""
    header = [
        "mode / program",
        "rows",
        "wall s",
        "rows/s",
        "CPU s",
        "CPU µs/row",
        "peak RSS MB",
        "API CPU s",
    ]
    lines = [header]
    for mode, pair in results.items():
        for program in PROGRAMS:
            s = pair[program]
            lines.append(
                [
                    f"{mode} {program}",
                    f"{s.rows:,}",
                    f"{s.wall_s:.2f}",
                    f"{s.rows_per_s:,.0f}",
                    f"{s.cpu_s:.2f}",
                    f"{s.cpu_us_per_row:.1f}",
                    f"{s.peak_rss_mb:.1f}",
                    "-" if s.server_cpu_s is None else f"{s.server_cpu_s:.2f}",
                ]
            )
        r = ratios({mode: pair})[mode]
        lines.append(
            [
                f"{mode} tap/client",
                "",
                f"{r['wall']:.2f}x",
                "",
                "",
                f"{r['cpu_per_row']:.2f}x",
                f"{r['peak_rss']:.2f}x",
                "",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(_row(line, widths) for line in lines)


def write_json(
    path: Path,
    meta: dict[str, Any],
    results: dict[str, dict[str, Summary]],
    tap_warnings: list[str],
) -> None:
    """Write every figure: medians, each run, ratios and the setup."""
    document = {
        "meta": meta,
        "results": {
            mode: {program: asdict(summary) for program, summary in pair.items()}
            for mode, pair in results.items()
        },
        "ratios_tap_over_client": ratios(results),
        "tap_warnings": tap_warnings,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
