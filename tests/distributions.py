"""Build the wheel and the sdist as a release would, and read what they hold."""

from __future__ import annotations

import email
import re
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = REPO / "pyproject.toml"
# The uv of the dev environment (Meltano depends on it): the same one scripts/setup pins.
UV = Path(sys.executable).with_name("uv")


@dataclass(frozen=True)
class Distributions:
    """The wheel and the sdist of one build."""

    wheel: Path
    sdist: Path

    def wheel_files(self) -> list[str]:
        """Paths inside the wheel."""
        with zipfile.ZipFile(self.wheel) as archive:
            return archive.namelist()

    def sdist_files(self) -> list[str]:
        """Paths inside the sdist, without its top folder (`<name>-<version>/`)."""
        with tarfile.open(self.sdist) as archive:
            names = [member.name for member in archive.getmembers() if member.isfile()]
        return [name.split("/", 1)[1] for name in names]

    def wheel_text(self, path_end: str) -> str:
        """The one file of the wheel whose path ends with `path_end`."""
        with zipfile.ZipFile(self.wheel) as archive:
            (name,) = [n for n in archive.namelist() if n.endswith(path_end)]
            return archive.read(name).decode()

    def sdist_text(self, path: str) -> str:
        """A file of the sdist, by its path below the top folder."""
        with tarfile.open(self.sdist) as archive:
            (member,) = [m for m in archive.getmembers() if m.name.split("/", 1)[-1] == path]
            extracted = archive.extractfile(member)
            assert extracted is not None, path
            return extracted.read().decode()


def build(out_dir: Path) -> Distributions:
    """`uv build` of the repository into `out_dir`: one sdist and one wheel."""
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(UV), "build", "--quiet", "--out-dir", str(out_dir), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out_dir.glob("*.whl")
    (sdist,) = out_dir.glob("*.tar.gz")
    return Distributions(wheel, sdist)


def metadata(text: str) -> Message:
    """Core metadata (METADATA or PKG-INFO), parsed: headers, and the description as body."""
    return email.message_from_string(text)


def project_version() -> str:
    """The version written in pyproject.toml, the package's one version source."""
    found = re.findall(r'^version = "([^"]+)"$', PYPROJECT.read_text(), re.MULTILINE)
    assert len(found) == 1, f"pyproject.toml should state one version, found {found}"
    return str(found[0])
