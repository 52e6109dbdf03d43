"""validation.stats is a pure library: importing it never imports Django."""

import subprocess
import sys
from pathlib import Path

import validation.stats

ROOT = Path(__file__).resolve().parents[3]


def test_importing_the_library_and_every_submodule_leaves_django_unimported():
    package = Path(validation.stats.__file__).parent
    modules = sorted(f"validation.stats.{p.stem}" for p in package.glob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, sys\n"
        "import validation.stats\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = [m for m in sys.modules if m == 'django' or m.startswith('django.')]\n"
        "assert not bad, bad\n"
        "print(len(sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env={"PATH": "/usr/bin"}
    )
    assert result.returncode == 0, result.stderr
    assert len(modules) >= 10
