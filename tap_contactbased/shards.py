"""Split `feed_ids` into shards, each run as its own `meltano run` (docs/scaling.md).

    python -m tap_contactbased.shards --shards 3 FEED_ID ...
    python -m tap_contactbased.shards --shards 3 --shard 1 --format env < feeds.txt

A shard is a state id suffix (`shard-<k>`) and the environment variables of its run; only
`shard-0` loads the organization's streams. A feed's shard is chosen by rendezvous hashing,
stable as feeds come and go (docs/scaling.md). This prints; it schedules nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shlex
import sys
import typing as t
from dataclasses import dataclass

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

ORGANIZATION_STREAMS = ("feeds", "credits", "feed_limit", "bundles", "filter_fields", "exports")
FEED_STREAMS = ("export_rows", "feed_totals", "enrichment")
SUFFIX_PREFIX = "shard-"
PREPARE_SUFFIX = "prepare"
FORMATS = ("text", "json", "env", "schedules")
DEFAULT_JOB = "contactbased-to-postgres"
DEFAULT_INTERVAL = "0 3 * * *"
PREPARE_INTERVAL = "50 2 * * *"


def shard_of(feed_id: str, shards: int) -> int:
    """The shard (0 to shards - 1) of a feed: the highest hash of (shard, feed) wins."""
    if shards < 1:
        msg = f"the number of shards must be at least 1, not {shards}"
        raise ValueError(msg)
    key = feed_id.strip().lower()
    return max(range(shards), key=lambda shard: hashlib.sha256(f"{shard}:{key}".encode()).digest())


@dataclass(frozen=True)
class Shard:
    """One shard: its index, its feeds, and what its `meltano run` needs to know."""

    index: int
    feed_ids: tuple[str, ...]

    @property
    def suffix(self) -> str:
        """The `--state-id-suffix` of its runs (`MELTANO_RUN_STATE_ID_SUFFIX`)."""
        return f"{SUFFIX_PREFIX}{self.index}"

    @property
    def organization(self) -> bool:
        return self.index == 0

    def env(self) -> dict[str, str]:
        """The environment variables that make a `meltano run` this shard."""
        env = {
            "MELTANO_RUN_STATE_ID_SUFFIX": self.suffix,
            "TAP_CONTACTBASED_FEED_IDS": json.dumps(list(self.feed_ids)),
        }
        if not self.organization:
            env["TAP_CONTACTBASED__SELECT_FILTER"] = json.dumps(list(FEED_STREAMS))
        return env

    def describe(self) -> str:
        feeds = f"{len(self.feed_ids)} feed{'' if len(self.feed_ids) == 1 else 's'}"
        extra = " and the organization streams" if self.organization else ""
        return f"{self.suffix}: {feeds}{extra}"


def prepare_env() -> dict[str, str]:
    """The environment of the run before the shards: it creates the tables, exporting nothing.

    So that shards started together do not race to create them (docs/scaling.md).
    """
    return {
        "MELTANO_RUN_STATE_ID_SUFFIX": PREPARE_SUFFIX,
        "MELTANO_RUN_NO_STATE_UPDATE": "true",
        "TAP_CONTACTBASED_FEED_IDS": "[]",
        "TAP_CONTACTBASED__SELECT_FILTER": json.dumps(list(FEED_STREAMS)),
    }


def assign(feed_ids: Iterable[str], shards: int) -> list[Shard]:
    """Every shard with its feeds, in the order given; a feed listed twice counts once."""
    members: list[list[str]] = [[] for _ in range(shards)]
    seen: set[str] = set()
    for feed_id in feed_ids:
        key = feed_id.strip().lower()
        if not key or key in seen:
            continue
        seen.add(key)
        members[shard_of(key, shards)].append(feed_id.strip())
    return [Shard(index, tuple(feeds)) for index, feeds in enumerate(members)]


def parse_feed_ids(text: str) -> list[str]:
    """Feed ids from a JSON array, or separated by whitespace or commas."""
    stripped = text.strip()
    if stripped.startswith("["):
        parsed = json.loads(stripped)
        if not isinstance(parsed, list) or not all(isinstance(f, str) for f in parsed):
            msg = "expected a JSON array of feed ids"
            raise ValueError(msg)
        return list(parsed)
    return [part for part in re.split(r"[\s,]+", stripped) if part]


def _yaml_string(value: str) -> str:
    # Single quotes keep JSON text literal in YAML; a quote inside is doubled.
    return "'" + value.replace("'", "''") + "'"


def render(
    shards: Sequence[Shard],
    output: str,
    *,
    job: str = DEFAULT_JOB,
    interval: str = DEFAULT_INTERVAL,
) -> str:
    if output == "json":
        payload = [
            {
                "shard": s.suffix,
                "organization_streams": s.organization,
                "feed_ids": list(s.feed_ids),
                "env": s.env(),
            }
            for s in shards
        ]
        return json.dumps(payload, indent=2) + "\n"
    if output == "env":
        blocks = []
        for shard in shards:
            lines = [f"# {shard.describe()}"]
            lines += [f"export {k}={shlex.quote(v)}" for k, v in shard.env().items()]
            blocks.append("\n".join(lines) + "\n")
        return "\n".join(blocks)
    if output == "schedules":
        return _schedules(shards, job, interval)
    lines = []
    for shard in shards:
        lines.append(shard.describe())
        lines += [f"  {feed_id}" for feed_id in shard.feed_ids]
    return "\n".join(lines) + "\n"


def _schedules(shards: Sequence[Shard], job: str, interval: str) -> str:
    entries = [(f"{job}-{PREPARE_SUFFIX}", PREPARE_INTERVAL, prepare_env())]
    entries += [(f"{job}-{s.suffix}", interval, s.env()) for s in shards]
    lines = ["schedules:"]
    for name, when, env in entries:
        lines += [f"- name: {name}", f"  interval: {_yaml_string(when)}", f"  job: {job}"]
        lines.append("  env:")
        lines += [f"    {key}: {_yaml_string(value)}" for key, value in env.items()]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the shards of the feeds given as arguments, or on stdin."""
    parser = argparse.ArgumentParser(
        prog="python -m tap_contactbased.shards",
        description="Print which shard each feed belongs to, and how to run each shard.",
    )
    parser.add_argument("feed_ids", nargs="*", help="feed ids; none: read them from stdin")
    parser.add_argument("--shards", type=int, required=True, help="number of shards")
    parser.add_argument("--shard", type=int, help="print only this shard (0-based)")
    parser.add_argument("--format", choices=FORMATS, default="text", dest="output")
    parser.add_argument("--job", default=DEFAULT_JOB, help="job of --format schedules")
    parser.add_argument("--interval", default=DEFAULT_INTERVAL, help="cron of the shards")
    args = parser.parse_args(argv)
    if args.shards < 1:
        parser.error("--shards must be at least 1")
    try:
        feed_ids = args.feed_ids or parse_feed_ids(sys.stdin.read())
    except ValueError as exc:
        parser.error(f"could not read feed ids from stdin: {exc}")
    shards = assign(feed_ids, args.shards)
    if args.shard is not None:
        if not 0 <= args.shard < args.shards:
            parser.error(f"--shard must be between 0 and {args.shards - 1}")
        shards = [shards[args.shard]]
    sys.stdout.write(render(shards, args.output, job=args.job, interval=args.interval))
    return 0


if __name__ == "__main__":
    sys.exit(main())
