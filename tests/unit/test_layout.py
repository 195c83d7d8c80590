"""The layout of shared/ (docs/decisions/0004-layout.md), checked so that it cannot rot.

Rooms: the root (infrastructure modules and the `db` and `queries` packages), `web` (the api's
HTTP layer) and one package per capability (every other package). The root imports only the
root; `web` imports the root; a capability imports the root, `web` and itself, and another
capability only through that capability's `service` module. The wiring modules (`routes`,
`maintenance`) sit on top and may import anything; nothing in shared/ imports them. No import
cycles, and nothing in shared/ imports functions/, tools/, bench/ or tests/.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
SHARED = REPOSITORY / "shared"
INFRASTRUCTURE_PACKAGES = {"db", "queries"}
HTTP_LAYER = "web"
WIRING = {"shared.routes", "shared.maintenance"}
OUTSIDE_SHARED = {"functions", "tools", "bench", "tests"}
MAX_LINES = 400


def _name(path: Path) -> str:
    parts = path.relative_to(REPOSITORY).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(path): path for path in sorted(SHARED.rglob("*.py"))}
PACKAGES = sorted(p.name for p in SHARED.iterdir() if (p / "__init__.py").exists())
CAPABILITIES = [p for p in PACKAGES if p not in INFRASTRUCTURE_PACKAGES | {HTTP_LAYER}]


def imported(path: Path) -> Iterator[str]:
    """Every module a file imports, at any depth of the file (lazy imports too)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (this test reads absolute ones)"
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                yield submodule if submodule in MODULES else str(node.module)


def room(module: str) -> str:
    """`root`, `web` or the capability a module of shared/ belongs to."""
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and parts[1] in PACKAGES):
        return "root" if parts[1] in INFRASTRUCTURE_PACKAGES else parts[1]
    return "root"


def graph() -> dict[str, set[str]]:
    """{module of shared/: the modules of shared/ it imports}."""
    return {
        name: {target for target in imported(path) if target in MODULES} - {name}
        for name, path in MODULES.items()
    }


def refusal(importer: str, target: str) -> str | None:
    """Why `importer` may not import `target`, or None when it may."""
    source, destination = room(importer), room(target)
    if target in WIRING:
        return "the wiring modules sit on top: nothing in shared/ imports them"
    if importer in WIRING or destination in ("root", source):
        return None
    if source == "root":
        return f"the root imports only the root, not {destination}/"
    if destination == HTTP_LAYER:
        return None if source in CAPABILITIES else f"{source}/ may not import web/"
    if source == HTTP_LAYER:
        return "web/ imports no capability"
    if target == f"shared.{destination}.service":
        return None
    return f"{source}/ reaches another capability only through shared.{destination}.service"


def test_shared_imports_nothing_outside_it():
    found = [
        f"{name} imports {target}"
        for name, path in MODULES.items()
        for target in imported(path)
        if target.split(".")[0] in OUTSIDE_SHARED
    ]
    assert found == []


def test_no_import_cycles():
    graphlib.TopologicalSorter(graph()).prepare()  # raises CycleError naming the cycle


def test_each_room_imports_only_what_the_layout_allows():
    found = [
        f"{importer} -> {target}: {why}"
        for importer, targets in graph().items()
        for target in sorted(targets)
        if (why := refusal(importer, target))
    ]
    assert found == []


def test_the_rules_refuse_what_they_should():
    assert refusal("shared.storage", "shared.web.router")
    assert refusal("shared.purge", "shared.gallery.routes")
    assert refusal("shared.web.dispatch", "shared.sessions.routes")
    assert refusal("shared.sessions.routes", "shared.generation.models")
    assert refusal("shared.generation.routes", "shared.routes")
    assert refusal("shared.sessions.routes", "shared.generation.service") is None
    assert refusal("shared.routes", "shared.uploads.routes") is None


def test_no_module_of_shared_is_too_long():
    long = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_every_package_is_documented():
    for readme in (SHARED / "README.md", REPOSITORY / "README.md"):
        text = readme.read_text(encoding="utf-8")
        missing = [p for p in PACKAGES if f"{p}/`" not in text]
        assert missing == [], f"{readme.relative_to(REPOSITORY)} does not name {missing}"
