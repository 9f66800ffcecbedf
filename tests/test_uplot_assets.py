"""The vendored uPlot is the npm registry's uplot@1.6.32, unchanged, with its licence."""

from __future__ import annotations

import hashlib
from importlib.resources import files

import pytest

UPLOT = files("certctl_load.reporting") / "assets" / "uplot"
INTEGRITY = "sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw=="
DIGESTS = {
    "uPlot.iife.min.js": "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
    "uPlot.min.css": "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
    "LICENSE": "8f989229699b4fe2f1a0432d0e9edc338a8a911e250e2d1b01ecd770a5f5b1bd",
}


@pytest.mark.parametrize("name", sorted(DIGESTS))
def test_each_vendored_file_is_the_packages_own(name):
    assert hashlib.sha256((UPLOT / name).read_bytes()).hexdigest() == DIGESTS[name]


def test_the_licence_is_mit_and_the_readme_names_the_version_and_the_digests():
    assert (UPLOT / "LICENSE").read_text().startswith("The MIT License (MIT)")
    readme = (UPLOT / "README.md").read_text()
    assert "uplot@1.6.32" in readme
    assert INTEGRITY in readme
    assert all(digest in readme for digest in DIGESTS.values())
    assert "(v1.6.32)" in (UPLOT / "uPlot.iife.min.js").read_text()[:100]
