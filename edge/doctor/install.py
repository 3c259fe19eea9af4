"""Python and the installed packages against what edge-salesbot requires."""

from __future__ import annotations

import importlib.metadata
import sys
import tomllib
from typing import Final

from edge.config import PACKAGE_DIR, Config
from edge.doctor.finding import Finding

MIN_PYTHON: Final = (3, 11)
DIST: Final = "edge-salesbot"
OPTIONAL: Final = {"sounddevice": "kiosk (pip install 'edge-salesbot[kiosk]')"}
"""Packages some features need, and which feature."""


def requirements() -> list[str]:
    """Runtime requirements: pyproject.toml when running from a checkout (what should be installed),
    else the installed package's metadata."""
    pyproject = PACKAGE_DIR.parent / "pyproject.toml"
    if pyproject.is_file():
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        return list(data.get("project", {}).get("dependencies", []))
    try:
        return [r for r in importlib.metadata.requires(DIST) or [] if "extra ==" not in r]
    except importlib.metadata.PackageNotFoundError:
        return []


def check(config: Config) -> list[Finding]:
    from packaging.requirements import InvalidRequirement, Requirement

    findings = []
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] < MIN_PYTHON:
        findings.append(Finding("python", "fail", f"Python {version} is too old",
                                "install Python 3.11 or newer and recreate the virtual environment"))
    else:
        findings.append(Finding("python", "ok", f"Python {version} ({sys.executable})"))
    for text in requirements():
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        findings.append(_package(requirement))
    for name, feature in OPTIONAL.items():
        try:
            findings.append(Finding(f"package {name}", "ok", f"{importlib.metadata.version(name)} ({feature})"))
        except importlib.metadata.PackageNotFoundError:
            findings.append(Finding(f"package {name}", "warn", f"not installed; only {feature} needs it",
                                    f"pip install {name} if this box is a kiosk"))
    return findings


def _package(requirement) -> Finding:
    name = f"package {requirement.name}"
    try:
        installed = importlib.metadata.version(requirement.name)
    except importlib.metadata.PackageNotFoundError:
        return Finding(name, "fail", f"not installed (needs {requirement})",
                       f"pip install '{requirement}' (or reinstall: pip install edge-salesbot)")
    if requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
        return Finding(name, "fail", f"{installed} installed, needs {requirement.specifier}",
                       f"pip install '{requirement}'")
    return Finding(name, "ok", installed)
