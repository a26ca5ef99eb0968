"""Print, as JSON, the stream maps of the YAML block between the README's stream-maps markers.

The demo applies exactly what the README recommends, the way an environment variable
(`TAP_CONTACTBASED_STREAM_MAPS`) carries it.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- stream-maps:start -->", "<!-- stream-maps:end -->"


def readme_stream_maps() -> dict[str, object]:
    """The `stream_maps` of the README's recommended block."""
    text = README.read_text()
    if START not in text or END not in text:
        msg = f"{README} lost its {START} / {END} markers"
        raise ValueError(msg)
    block = text.split(START, 1)[1].split(END, 1)[0].strip()
    block = block.removeprefix("```yaml").removesuffix("```")
    stream_maps: dict[str, object] = yaml.safe_load(block)["config"]["stream_maps"]
    return stream_maps


if __name__ == "__main__":
    print(json.dumps(readme_stream_maps()))
