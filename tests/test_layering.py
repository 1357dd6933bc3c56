"""The shape of the code (docs/architecture.md): the one direction of the arrows,
route -> service -> the hypervisor face -> libvirt, checked on the sources.

* only loucloud/virt imports libvirt, and virt knows nothing of Flask, the database or
  the configuration;
* a service reaches a host only through the face (loucloud/virt/driver.py), never the
  verb modules behind it;
* a route module never touches the database (no db, no query, no rollback);
* no import cycles between LouCloud's modules;
* no services/ or virt/ file passes ~400 lines."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "loucloud"
SOURCES = sorted(ROOT.rglob("*.py"))
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package(path: Path) -> list[str]:
    name = module_name(path).split(".")
    return name if path.name == "__init__.py" else name[:-1]


def imports(path: Path, *, top_level_only: bool = False) -> set[str]:
    """Every module ``path`` imports, as absolute dotted names; ``from X import y`` gives
    X.y as well as X (y may be a module)."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package(path)[:len(_package(path)) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def roots(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imports(path)}


def ids(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", SOURCES, ids=ids)
def test_only_virt_imports_libvirt(path):
    in_virt = path.relative_to(ROOT).parts[0] == "virt"
    assert "libvirt" not in roots(path) or in_virt, f"{path} imports libvirt outside virt"


@pytest.mark.parametrize("path", sorted((ROOT / "virt").rglob("*.py")), ids=ids)
def test_virt_knows_nothing_of_flask_db_or_config(path):
    names = imports(path)
    assert not {n.split(".")[0] for n in names} & {
        "flask", "flask_sqlalchemy", "sqlalchemy", "config", "flask_login"}, names
    outside = {n for n in names if n.startswith("loucloud.") and
               not n.startswith("loucloud.virt")}
    assert not outside, f"{path} reaches outside virt: {outside}"


# What a service may take from virt: the face, and the package's errors and pool.
FACE = "loucloud.virt.driver"
VERB_MODULES = {f"loucloud.virt.{m}" for m in
                ("domains", "storage", "hosts", "stats", "xml", "connections", "errors")}


@pytest.mark.parametrize("path", sorted((ROOT / "services").rglob("*.py")), ids=ids)
def test_services_reach_hosts_only_through_the_face(path):
    reached = {n for n in imports(path) if n.startswith("loucloud.virt.")
               and not n.startswith(FACE)}
    bad = {n for n in reached if any(n == m or n.startswith(m + ".") for m in VERB_MODULES)}
    assert not bad, f"{path} imports {bad}: call a method of the Hypervisor face instead"
    assert "loucloud.services.hypervisors.pool" not in imports(path), \
        f"{path} calls the connection pool itself; use hypervisor(host)"
    assert "HostPool" not in path.read_text() or path.name == "hypervisors.py", path


# Page routes (routes.py, disk_routes.py...) and the API's resource modules (its
# machinery, auth, limits and the rate counters' store, is not a door).
API_MACHINERY = {"__init__", "common", "auth", "limits", "ratestore", "problems"}
ROUTES = sorted(set(ROOT.glob("*/*routes.py")) | {
    p for p in (ROOT / "api").glob("*.py") if p.stem not in API_MACHINERY})


@pytest.mark.parametrize("path", ROUTES, ids=ids)
def test_routes_never_touch_the_database(path):
    names = imports(path)
    assert not {n for n in names if n.startswith(("loucloud.extensions", "sqlalchemy",
                                                   "flask_sqlalchemy"))}, \
        f"{path} imports the database; call a service"
    text = path.read_text()
    for bad in ("db.", "db_session", ".query", "rollback(", "select("):
        assert bad not in text, f"{path} uses {bad!r}; a service does that"


def test_no_import_cycles():
    """Module-level imports between LouCloud's modules form no cycle (a package's
    __init__ importing its own routes, the blueprint pattern, is the one exception)."""
    modules = {module_name(p): p for p in SOURCES}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in imports(path, top_level_only=True):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and not imported.startswith(name + "."):
                targets.add(imported)
        graph[name] = targets
    done, stack = set(), []

    def visit(node):
        if node in stack:
            cycle = stack[stack.index(node):] + [node]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if node in done:
            return
        stack.append(node)
        for nxt in sorted(graph[node]):
            visit(nxt)
        stack.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node)


@pytest.mark.parametrize("path", sorted((ROOT / "services").rglob("*.py")) +
                         sorted((ROOT / "virt").rglob("*.py")), ids=ids)
def test_service_and_virt_files_stay_small(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path} has {lines} lines; split it by concern"


def test_nothing_shells_out():
    """No shell anywhere, and no program is run except by the command that starts
    LouCloud's own processes and the image builder (debootstrap and disk tools, from
    the command line): hosts are reached only through libvirt."""
    for path in SOURCES:
        text = path.read_text()
        for bad in ("shell=True", "os.system(", "os.popen(", "virsh", "ssh "):
            assert bad not in text, f"{path} uses {bad!r}"
        if path not in (ROOT / "cli" / "processes.py", ROOT / "imagebuild.py"):
            assert "subprocess" not in text, f"{path} runs programs"


def test_forms_take_integers_through_the_shared_field():
    """Every form's whole numbers go through loucloud.forms.IntegerField, which refuses
    a number no column holds as a field error (WTForms' own lets one beyond float range
    reach NumberRange: an OverflowError, a 500)."""
    for path in SOURCES:
        if path == ROOT / "forms.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            wtforms_names = isinstance(node, ast.ImportFrom) and node.level == 0 and \
                node.module.split(".")[0] == "wtforms" and \
                "IntegerField" in {alias.name for alias in node.names}
            wtforms_attr = isinstance(node, ast.Attribute) and node.attr == "IntegerField" \
                and isinstance(node.value, ast.Name) and node.value.id == "wtforms"
            assert not (wtforms_names or wtforms_attr), \
                f"{path} uses WTForms' IntegerField; use loucloud.forms.IntegerField"
