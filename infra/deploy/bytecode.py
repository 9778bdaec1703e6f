"""Compiled bytecode for the deploy packages.

Lambda's code directory is read-only: a module without a usable .pyc beside it is
compiled from source on every cold start. The package steps (deploy_check) compile our
packages first with `checked-hash` invalidation — the .pyc holds a hash of its source, so
it stays valid whatever modification times the zip keeps, and a .pyc whose source
changed afterwards is never used (safe in a working tree too). bench/cold_import.py
compiles the same way, so it measures what a deployed function loads.
"""

from __future__ import annotations

import compileall
import py_compile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_PACKAGES = ("core", "functions", "miniprogram_api")


def compile_product(root: Path = ROOT, packages: tuple[str, ...] = PRODUCT_PACKAGES) -> None:
    """Write checked-hash .pyc files into each package's __pycache__ (raises on a syntax error)."""
    for name in packages:
        ok = compileall.compile_dir(str(root / name), quiet=1, force=True,
                                    invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
        if not ok:
            raise RuntimeError(f"compileall failed in {name}")
