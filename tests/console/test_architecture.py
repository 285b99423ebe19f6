"""The import graph between our apps follows the layout of DESIGN.md ("Who imports whom").

From the floor up: the console core (customers, assets, users, roles, tokens, two-factor,
audit, health) imports no other app of ours; alerts stands on it; tickets on alerts; traffic
on alerts and the rule language; mitigations on tickets and traffic; the roof (``reports``:
dashboards, rollups, charts, reports) reads every app and no app imports it. The plain
packages (feed formats, traffic parsers, the rule language, the enforcement backends)
import no Django model.

Every ``import`` is read with ``ast``, including imports inside functions and under
``TYPE_CHECKING``: a lazy import is still an arrow.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("console", "alerts", "tickets", "traffic", "mitigations", "reports")

# The project wiring lives in the console package but is no part of the floor: it puts every
# app together (settings, URL conf, API router, demo seeding) and nothing of ours imports it.
# The Celery app (console.celery) is floor: it names queues and routes by string, imports no app,
# and health checks read its queue names.
WIRING = {"console.settings", "console.urls", "console.wsgi", "console.api.urls", "console.demo"}

# What each app may import besides itself. mitigations may reach alerts directly: it stands on
# tickets, which stands on alerts. traffic may use only the rule language of mitigations (its
# evaluator simulates rules), never the mitigations app itself, which stands on traffic.
ALLOWED = {
    "console": set(),
    "alerts": {"console"},
    "tickets": {"alerts", "console"},
    "traffic": {"alerts", "console", "mitigations.rules"},
    "mitigations": {"tickets", "traffic", "alerts", "console"},
    "reports": {"console", "alerts", "tickets", "traffic", "mitigations"},
}

PLAIN = ("alerts.formats", "traffic.parsers", "mitigations.rules", "mitigations.backends")
# Plain helpers of the floor a plain package may use: no model behind them.
PLAIN_HELPERS = {"console.outbound"}
DJANGO_WITH_MODELS = ("django.db", "django.apps", "django.contrib")


def module_name(path: Path, root: Path) -> str:
    name = ".".join(path.relative_to(root).with_suffix("").parts)
    return name.removesuffix(".__init__")


def modules(root: Path) -> Iterator[tuple[str, Path]]:
    for app in APPS:
        for path in sorted((root / app).rglob("*.py")):
            if "migrations" in path.relative_to(root).parts:
                continue
            yield module_name(path, root), path


def imports_of(name: str, path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file, relative ones resolved."""
    return _imports(name, path, path.stat().st_mtime_ns)


@functools.cache
def _imports(name: str, path: Path, mtime: int) -> list[tuple[int, str]]:
    found = []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((node.lineno, alias.name))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parents = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parents, base] if base else parents)
            # "from console import roles" names the module console.roles.
            for alias in node.names:
                found.append((node.lineno, f"{base}.{alias.name}"))
    return found


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def app_of(module: str) -> str | None:
    top = module.split(".")[0]
    return top if top in APPS else None


def violations(root: Path = ROOT) -> list[str]:
    found = []
    for name, path in modules(root):
        source = app_of(name)
        assert source is not None
        for line, imported in imports_of(name, path):
            where = f"{path.relative_to(root)}:{line} imports {imported}"
            if any(within(name, p) for p in PLAIN):
                if any(within(imported, d) for d in DJANGO_WITH_MODELS):
                    found.append(f"{where}: a plain package imports no Django model")
                target = app_of(imported)
                if (
                    target
                    and not any(within(imported, p) for p in PLAIN)
                    and not any(within(imported, h) for h in PLAIN_HELPERS)
                ):
                    found.append(f"{where}: a plain package imports only plain packages")
            target = app_of(imported)
            if target is None or target == source or name in WIRING:
                continue
            if any(within(imported, w) for w in WIRING):
                found.append(f"{where}: the project wiring is imported by nothing of ours")
            elif target == "reports":
                found.append(f"{where}: no app imports the roof (reports)")
            elif source == "console":
                found.append(f"{where}: the floor (console core) imports no other app")
            elif not any(within(imported, allowed) for allowed in ALLOWED[source]):
                found.append(f"{where}: {source} may import only {sorted(ALLOWED[source])}")
    return found


def test_every_import_between_apps_follows_the_layers() -> None:
    assert violations() == []


def test_the_graph_reads_real_code() -> None:
    # A checker that finds no module checks nothing: the known arrows must be seen.
    seen = {(name, imported) for name, path in modules(ROOT) for _, imported in imports_of(name, path)}
    assert ("tickets.models", "alerts.models.Alert") in seen
    assert ("reports.selectors", "tickets.selectors") in seen


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for app in APPS:
        (tmp_path / app).mkdir()
        (tmp_path / app / "__init__.py").write_text("")
    for rel, body in files.items():
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
    return tmp_path


def test_an_arrow_from_the_floor_to_an_app_is_caught(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"console/roles.py": "def f():\n    from alerts.models import Alert\n"})
    assert violations(root) == [
        "console/roles.py:2 imports alerts.models.Alert: the floor (console core) imports no other app"
    ]


def test_an_arrow_from_an_app_to_the_roof_is_caught(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"tickets/services.py": "from reports import selectors\n"})
    assert violations(root) == ["tickets/services.py:1 imports reports.selectors: no app imports the roof (reports)"]


def test_an_arrow_against_the_layers_is_caught(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "alerts/services.py": "import tickets.services\n",
            "traffic/services.py": "from mitigations import services\nfrom mitigations.rules import parse\n",
        },
    )
    assert violations(root) == [
        "alerts/services.py:1 imports tickets.services: alerts may import only ['console']",
        "traffic/services.py:1 imports mitigations.services: traffic may import only "
        "['alerts', 'console', 'mitigations.rules']",
    ]


def test_a_plain_package_importing_a_model_is_caught(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {"mitigations/rules/parser.py": "from django.db import models\nfrom ..models import Mitigation\n"},
    )
    found = violations(root)
    assert "mitigations/rules/parser.py:1 imports django.db.models: a plain package imports no Django model" in found
    assert (
        "mitigations/rules/parser.py:2 imports mitigations.models.Mitigation: "
        "a plain package imports only plain packages"
    ) in found
