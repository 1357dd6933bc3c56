"""The shape of the code (CONVENTIONS.md): only loucloud/virt imports libvirt, and virt
knows nothing of Flask, the database or the configuration."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "loucloud"


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level >= 2:
            names.add("..")  # reaches outside its own package
    return names


SOURCES = sorted(ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_only_virt_imports_libvirt(path):
    uses_libvirt = "libvirt" in imported_modules(path)
    in_virt = path.relative_to(ROOT).parts[0] == "virt"
    assert not uses_libvirt or in_virt, f"{path} imports libvirt outside loucloud/virt"


@pytest.mark.parametrize("path", sorted((ROOT / "virt").rglob("*.py")),
                         ids=lambda p: p.name)
def test_virt_knows_nothing_of_flask_db_or_config(path):
    names = imported_modules(path)
    assert not names & {"flask", "flask_sqlalchemy", "sqlalchemy", "config", "flask_login",
                        ".."}, f"{path} imports {names}"


def test_nothing_shells_out():
    """No shell anywhere, and no program is run except by the CLI (which starts
    LouCloud's own processes): hosts are reached only through libvirt."""
    for path in SOURCES:
        text = path.read_text()
        for bad in ("shell=True", "os.system(", "os.popen(", "virsh", "ssh "):
            assert bad not in text, f"{path} uses {bad!r}"
        if path.name != "cli.py":
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
