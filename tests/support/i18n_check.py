"""What tests/test_i18n_catalogue.py holds the code to: every text a person reads is
marked for translation and has its Chinese translation.

Unmarked text is found
- in the page templates: text and the attributes people read (title, placeholder,
  aria-label, alt, data-confirm, a button's value) outside {{ }}, {% %} and
  {% trans %} blocks, and in JavaScript strings passed to t() being the only way
  pages' scripts say something (checked in the scripts: a string literal holding a
  sentence outside t() is unmarked);
- in Python: a literal or f-string given to flash(), to perform(done=...), to a
  LouCloud refusal (ServiceError and its kinds), to a form field's label or a
  validator's message=, and in the command line to click.echo(), fail() and
  click.confirm().
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "loucloud"
WORD = re.compile(r"[A-Za-z][A-Za-z']+")
# Names and codes that read the same in every language (a text made only of these, of
# numbers and of punctuation needs no translation).
SAME_EVERYWHERE = {
    "LouCloud", "VNC", "SSH", "CPU", "CPUs", "vCPU", "vCPUs", "MiB", "GiB", "TiB", "KiB",
    "ID", "URI", "UUID", "UEFI", "BIOS", "ISO", "API", "JSON", "CSV", "HTTP", "HTTPS",
    "IPv", "IP", "MAC", "DHCP", "NAT", "KVM", "QEMU", "TCG", "libvirt", "qcow", "raw",
    "noVNC", "OpenAPI", "Swagger", "UI", "UTC", "SHA", "OS", "Linux", "Windows", "Debian",
    "cloud-init", "NoCloud", "GiB/s", "MiB/s", "ms", "s", "min", "h", "d", "B", "OK",
    "English", "admin", "root", "virsh", "qemu", "vda", "vdb", "sda", "hda", "lct",
    "Bearer", "curl", "jq", "redis", "Redis", "MariaDB", "SQLite", "Apache", "systemd",
}
READ_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt", "data-confirm"}
GETTEXT = {"_", "gettext", "ngettext", "lazy_gettext", "_l", "lazy_ngettext", "LAZY"}


@dataclass(frozen=True)
class Unmarked:
    path: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.text[:100]!r}"


def needs_translation(text: str) -> bool:
    words = WORD.findall(text)
    return any(w not in SAME_EVERYWHERE and w.strip("'") not in SAME_EVERYWHERE
               for w in words)


# -- templates -----------------------------------------------------------------------
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
COMMENT = re.compile(r"\{#.*?#\}", re.S)
TRANS = re.compile(r"\{%-?\s*trans\b.*?%\}.*?\{%-?\s*endtrans\s*-?%\}", re.S)
SCRIPT = re.compile(r"(<script\b[^>]*>)(.*?)(</script>)|(<style\b[^>]*>)(.*?)(</style>)",
                    re.S | re.I)


def _blank(match: re.Match) -> str:
    """Keep the line count: a removed part leaves its newlines."""
    return "\n" * match.group(0).count("\n")


class _Texts(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, str]] = []

    def handle_data(self, data):
        if data.strip():
            self.found.append((self.getpos()[0], data.strip()))

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in READ_ATTRIBUTES:
            if attrs.get(name):
                self.found.append((self.getpos()[0], attrs[name]))
        if tag == "input" and attrs.get("type") in ("submit", "button") and attrs.get("value"):
            self.found.append((self.getpos()[0], attrs["value"]))


def template_texts(path: Path) -> list[tuple[int, str]]:
    source = path.read_text()
    for pattern in (COMMENT, TRANS, SCRIPT):
        source = pattern.sub(_blank, source)
    source = JINJA.sub(lambda m: " " + "\n" * m.group(0).count("\n"), source)
    parser = _Texts()
    parser.feed(source)
    parser.close()
    return parser.found


def unmarked_in_templates() -> list[Unmarked]:
    found = []
    for path in sorted((PACKAGE / "pages").rglob("*.html")):
        for line, text in template_texts(path):
            if needs_translation(text):
                found.append(Unmarked(str(path.relative_to(ROOT)), line, text))
    return found


# -- Python --------------------------------------------------------------------------
def _is_text(node: ast.AST) -> bool:
    """A literal sentence: a str constant, an f-string, or a concatenation with one."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return needs_translation(node.value)
    if isinstance(node, ast.JoinedStr):
        return needs_translation("".join(v.value for v in node.values
                                         if isinstance(v, ast.Constant)))
    if isinstance(node, ast.BinOp):
        return _is_text(node.left) or _is_text(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
            node.func.attr in ("format", "join") and isinstance(node.func.value, ast.Constant):
        return _is_text(node.func.value)
    return False


def _name(func: ast.AST) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return f"{_name(func.value)}.{func.attr}"
    return ""


def refusal_names() -> set[str]:
    """LouCloud's refusals: ServiceError and every kind of it (their class names)."""
    import importlib
    import pkgutil

    import loucloud.services as services
    from loucloud.services import ServiceError

    for info in pkgutil.walk_packages(services.__path__, "loucloud.services."):
        importlib.import_module(info.name)
    seen, todo = set(), [ServiceError]
    while todo:
        cls = todo.pop()
        seen.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return seen


def unmarked_in_python(refusals: set[str]) -> list[Unmarked]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        in_cli = rel.startswith("loucloud/cli/")
        tree = ast.parse(path.read_text(), rel)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _name(node.func)
            short = name.rsplit(".", 1)[-1]
            texts: list[ast.AST] = []
            if short in ("flash",) or short in refusals or \
                    (in_cli and name in ("click.echo", "fail", "click.confirm")):
                texts += node.args[:1]
                texts += [k.value for k in node.keywords if k.arg == "message"]
            if short == "perform":
                texts += [k.value for k in node.keywords if k.arg == "done"]
            if short.endswith("Field") and short[:1].isupper():
                texts += node.args[:1]
                texts += [k.value for k in node.keywords if k.arg in ("label", "description")]
            if short in ("InputRequired", "DataRequired", "Length", "NumberRange", "Regexp",
                         "EqualTo", "Email", "Optional", "AnyOf", "NoneOf"):
                texts += [k.value for k in node.keywords if k.arg == "message"]
            for text in texts:
                if _is_text(text):
                    found.append(Unmarked(rel, text.lineno, ast.unparse(text)))
    return found


# -- the pages' scripts --------------------------------------------------------------
JS_STRING = re.compile(r"""(?<![\w$.])(t\(\s*)?(["'])((?:\\.|(?!\2).)*)\2""")
JS_SENTENCE = re.compile(r"^[A-Z][a-z']+(?:[ ,;:.…][^<>{}=]*)?$")


def unmarked_in_scripts() -> list[Unmarked]:
    """A string literal that reads as a sentence ("Choose a file.") outside t()."""
    found = []
    for path in sorted((PACKAGE / "static").glob("*.js")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("//", 1)[0] if not line.lstrip().startswith("//") else ""
            for match in JS_STRING.finditer(code):
                marked, text = match.group(1), match.group(3)
                if not marked and JS_SENTENCE.match(text) and needs_translation(text) \
                        and " " in text:
                    found.append(Unmarked(str(path.relative_to(ROOT)), number, text))
    return found


# -- the catalogue -------------------------------------------------------------------
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None,
            "_l": None, "LAZY": None, "lazy_ngettext": (1, 2), "t": None}
CATALOGUE = PACKAGE / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{(\w*)\}")


def extracted() -> dict[str, list[str]]:
    """Every message marked in the code, with where (pybabel extract's way, babel.cfg's
    files)."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    with open(ROOT / "babel.cfg") as f:
        method_map, options_map = parse_mapping_cfg(f)
    found: dict[str, list[str]] = {}
    for filename, line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS):
        msgid = message[0] if isinstance(message, tuple) else message   # a plural: its
        if msgid:                                                         # singular
            found.setdefault(msgid, []).append(f"{filename}:{line}")
    return found


def catalogue() -> dict[str, object]:
    from babel.messages.pofile import read_po

    with open(CATALOGUE, "rb") as f:
        return {m.id if isinstance(m.id, str) else m.id[0]: m for m in read_po(f) if m.id}


def placeholders(text: str) -> set[str]:
    return {a or b for a, b in PLACEHOLDER.findall(text)}


def marked_in_python(paths=None) -> list[Unmarked]:
    """Every message the Python code marks, found by walking its syntax tree, which also
    looks inside f-strings and inside another mark's arguments, where pybabel's
    extractor does not: a message there is marked but never reaches the catalogue."""
    found = []
    for path in paths or [*sorted(PACKAGE.rglob("*.py")), ROOT / "manage.py"]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and _name(node.func) in GETTEXT and node.args \
                    and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                found.append(Unmarked(str(path.relative_to(ROOT)) if path.is_relative_to(
                    ROOT) else str(path), node.lineno, node.args[0].value))
    return found
