"""The dependency arrows point one way (DESIGN.md): collection <- validation <- labeling <- trainingsets, config wires
them, no app imports another app's tasks, and the pure engines (validation/stats, labeling/quality) import neither
Django nor any app. Every import counts, those inside functions too; migrations are left out."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each app, left to right: an app may import the apps to its left, never those to its right.
APPS = ["collection", "validation", "labeling", "trainingsets"]
PURE = ["validation.stats", "labeling.quality"]
# What a pure package may not import besides the project's own packages outside itself.
FRAMEWORKS = {"django", "rest_framework", "celery", "kombu", "drf_spectacular"}
PROJECT = set(APPS) | {"config", "testdata", "bench", "tests"}


def imported_modules(source: str, module: str, *, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, module) for every import in `source`, the file of `module`; relative imports are made absolute, and
    `from a import b` gives both `a` and `a.b` (b may be a module)."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
    return found


def _inside(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """Why each import of `module` (its source given) breaks an arrow; empty when none does."""
    app = module.split(".")[0]
    wrong = []
    for line, name in imported_modules(source, module, is_package=is_package):
        root = name.split(".")[0]
        if app in APPS and root in APPS and APPS.index(root) > APPS.index(app):
            wrong.append((line, name, f"{app} imports {root}, an app to its right"))
        elif app in APPS and root in APPS and root != app and ".tasks" in f"{name}.":
            wrong.append((line, name, f"{app} imports another app's tasks ({root}.tasks): config/pipeline.py wires "
                                      "the steps"))
        for pure in PURE:
            if _inside(module, pure) and not _inside(name, pure) and (root in FRAMEWORKS or root in PROJECT):
                wrong.append((line, name, f"{pure} is pure and imports {root} (no Django, no app)"))
    # `from a import b` is read as a and a.b: one finding per statement and reason.
    first = {}
    for line, name, why in wrong:
        first.setdefault((line, why), name)
    return [f"line {line}: import {name}: {why}" for (line, why), name in first.items()]


def app_modules():
    """(path, module, is_package) of every .py file of every app, migrations left out."""
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts:
                continue
            parts = list(relative.with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            yield path, ".".join(parts[:-1] if is_package else parts), is_package


def test_every_app_imports_only_to_its_left_and_no_other_apps_tasks_and_the_engines_stay_pure():
    found = []
    for path, module, is_package in app_modules():
        found += [f"{path.relative_to(ROOT)}:{v.removeprefix('line ')}"
                  for v in violations(path.read_text(), module, is_package=is_package)]
    assert not found, "imports against the arrows (DESIGN.md):\n" + "\n".join(found)


def test_the_check_reads_every_app_and_its_pure_packages():
    modules = {module for _, module, _ in app_modules()}
    assert {"collection.models", "validation.stats.compare", "labeling.quality", "trainingsets.tasks"} <= modules
    assert not any(".migrations" in module for module in modules)


@pytest.mark.parametrize("module,source,why", [
    ("collection.services", "from validation.models import Baseline", "collection imports validation"),
    ("collection.admin", "def f():\n    import labeling.services\n", "collection imports labeling"),
    ("validation.views", "from trainingsets import selectors", "validation imports trainingsets"),
    ("labeling.services.queue", "from trainingsets.models import TrainingSet", "labeling imports trainingsets"),
    ("trainingsets.services", "from labeling.tasks import route_batch", "another app's tasks"),
    ("trainingsets.api", "from validation import tasks", "another app's tasks"),
    ("labeling.receivers", "import collection.tasks as t", "another app's tasks"),
    ("validation.stats.compare", "import django.db", "validation.stats is pure"),
    ("validation.stats.compare", "from ..models import Baseline", "validation.stats is pure and imports validation"),
    ("validation.stats.compare", "def f():\n    from config.retry import TRANSIENT\n", "validation.stats is pure"),
    ("labeling.quality.kappa", "from collection.models import Record", "labeling.quality is pure"),
])
def test_the_check_catches_a_planted_import_against_the_arrows(module, source, why):
    found = violations(source, module)
    assert len(found) == 1 and why in found[0] and found[0].startswith("line ")


@pytest.mark.parametrize("module,source", [
    ("trainingsets.services", "from labeling.models import LabelingProject\nfrom validation import alerts"),
    ("labeling.tasks", "from collection.models import Batch\nfrom config.retry import PIPELINE_STEP"),
    ("validation.tasks", "from . import services\nfrom .services import verdicts"),
    ("validation.stats.compare", "import numpy as np\nfrom .metrics import psi\nfrom validation.stats import spec"),
    ("labeling.quality", "from . import kappa"),
])
def test_the_check_lets_an_import_along_the_arrows_pass(module, source):
    assert violations(source, module, is_package=module == "labeling.quality") == []
