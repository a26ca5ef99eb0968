"""The release package: what `uv build` puts in the wheel and the sdist, and one version."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.distributions import REPO, Distributions, metadata, project_version

TAP = Path(sys.executable).with_name("tap-contactbased")
DIST_INFO = re.compile(r"^tap_contactbased-[^/]+\.dist-info/")
# What the sdist holds besides these folders: pyproject.toml and PKG-INFO (the build's
# metadata), the files named in [tool.hatch.build.targets.sdist], and .gitignore (hatch
# keeps it, so that a build from the sdist leaves out the same files).
SDIST_FOLDERS = ("tap_contactbased", "tests", "docs")
SDIST_FILES = {"pyproject.toml", "PKG-INFO", "README.md", "CHANGELOG.md", "LICENSE", ".gitignore"}
RELEASE = re.compile(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", re.MULTILINE)


def source_files(folder: str) -> set[str]:
    """The files of a folder of the repository that a build takes (no bytecode caches)."""
    return {
        path.relative_to(REPO).as_posix()
        for path in (REPO / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def test_the_wheel_holds_the_package_and_its_metadata_only(dists: Distributions) -> None:
    files = dists.wheel_files()
    package = {f for f in files if not DIST_INFO.match(f)}
    assert package == source_files("tap_contactbased")
    dist_info = {DIST_INFO.sub("", f) for f in files if DIST_INFO.match(f)}
    assert dist_info == {"METADATA", "WHEEL", "RECORD", "entry_points.txt", "licenses/LICENSE"}
    assert dists.wheel_text("licenses/LICENSE") == (REPO / "LICENSE").read_text()
    entry_points = dists.wheel_text("entry_points.txt")
    assert "tap-contactbased = tap_contactbased.cli:main" in entry_points


def test_the_sdist_holds_sources_tests_and_docs_but_no_build_outputs(
    dists: Distributions,
) -> None:
    files = set(dists.sdist_files())
    expected = SDIST_FILES.union(*(source_files(folder) for folder in SDIST_FOLDERS))
    assert files == expected
    assert not [f for f in files if f.startswith(("bench/", "output/", ".work/", ".meltano/"))]
    for name in ("README.md", "CHANGELOG.md", "LICENSE"):
        assert dists.sdist_text(name) == (REPO / name).read_text(), name


@pytest.mark.parametrize("which", ["wheel", "sdist"])
def test_the_metadata_names_the_version_the_license_and_the_readme(
    dists: Distributions, which: str
) -> None:
    text = dists.wheel_text("METADATA") if which == "wheel" else dists.sdist_text("PKG-INFO")
    meta = metadata(text)
    assert meta["Name"] == "tap-contactbased"
    assert meta["Version"] == project_version()
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta["Requires-Python"] == ">=3.10"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert str(meta.get_payload()).strip() == (REPO / "README.md").read_text().strip()
    requires = meta.get_all("Requires-Dist") or []
    assert any(r.startswith("singer-sdk[msgspec]") for r in requires), requires
    assert Path(getattr(dists, which)).name.startswith(f"tap_contactbased-{project_version()}")


def test_the_license_file_is_the_apache_license_pyproject_declares() -> None:
    text = (REPO / "LICENSE").read_text()
    assert text.split()[:5] == ["Apache", "License", "Version", "2.0,", "January"]
    assert "END OF TERMS AND CONDITIONS" in text
    assert 'license = "Apache-2.0"' in (REPO / "pyproject.toml").read_text()


def test_version_about_and_package_metadata_say_the_one_version() -> None:
    version = project_version()
    printed = subprocess.run(
        [str(TAP), "--version"], capture_output=True, text=True, check=True
    ).stdout
    about = subprocess.run(
        [str(TAP), "--about", "--format=json"], capture_output=True, text=True, check=True
    ).stdout
    assert printed.startswith(f"tap-contactbased v{version},"), printed
    assert json.loads(about)["version"] == version
    assert importlib.metadata.version("tap-contactbased") == version
    # No second source to drift: the package never states its version itself.
    package_text = "".join(p.read_text() for p in (REPO / "tap_contactbased").rglob("*.py"))
    assert "__version__" not in package_text


def test_the_changelog_has_unreleased_changes_above_dated_releases() -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## .*$", text, re.MULTILINE)
    assert headings[0] == "## [Unreleased]", headings
    releases = RELEASE.findall(text)
    assert len(releases) == len(headings) - 1, f"a release heading is malformed: {headings}"
    assert releases[-1][0] == "0.1.0", "0.1.0 is the first release"
    numbers = [tuple(int(part) for part in number.split(".")) for number, _ in releases]
    assert numbers == sorted(numbers, reverse=True), "releases go newest first"
    assert [day for _, day in releases] == sorted((day for _, day in releases), reverse=True)
    # The version is a release the changelog dates, or the development of the next one.
    version = project_version()
    released = [number for number, _ in releases]
    if ".dev" in version:
        upcoming = tuple(int(part) for part in version.split(".dev")[0].split("."))
        assert upcoming > numbers[0], f"{version} is not after the last release {released[0]}"
    else:
        assert version in released, f"CHANGELOG.md has no section for {version}"
