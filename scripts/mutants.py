"""`make mutants`: mutation testing of the security-critical code with mutmut.

Runs `mutmut run` on the functions in SCOPE (the files are pyproject.toml's
[tool.mutmut] only_mutate; tests/support/mutants.py picks the unit tests that judge each
module), then lists every mutant that was not killed with its diff, marks the ones
docs/reliability.md explains as equivalent (EXPLAINED in tests/support/mutants.py), and
writes the figures to test-artifacts/mutants.json.

    python scripts/mutants.py                 the whole scope, from scratch
    python scripts/mutants.py 'loucloud.security.*'   only these mutants (a glob)

Exit status 0 when every mutant in scope was killed or is explained, 1 otherwise.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.mutants import EXPLAINED, SCOPE  # noqa: E402

MUTMUT = Path(sys.executable).parent / "mutmut"
REPORT = ROOT / "mutants" / "survivors.txt"
FIGURES = ROOT / "test-artifacts" / "mutants.json"


def mutmut(*args: str, capture: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([str(MUTMUT), *args], cwd=ROOT, text=True,
                          capture_output=capture, check=False)


def results() -> dict[str, str]:
    """{mutant name: status} of every mutant mutmut generated."""
    out = mutmut("results", "--all", "true").stdout
    found = {}
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            found[name] = status
    return found


def diff_of(name: str) -> str:
    """The mutant's diff, without mutmut's header line."""
    out = mutmut("show", name).stdout
    return "\n".join(line for line in out.splitlines() if not line.startswith("# "))


def mutated_line(diff: str) -> str:
    """'<the original line(s)> -> <the mutant's>', as EXPLAINED names a mutant (mutmut's
    numbers change whenever the code does; this does only when the line does)."""
    def lines(sign: str) -> str:
        return " / ".join(line[1:].strip() for line in diff.splitlines()
                          if line.startswith(sign) and not line.startswith(sign * 3))
    return f"{lines('-')} -> {lines('+')}"


def function_of(name: str) -> str:
    """'loucloud.services.auth.x_load_session__mutmut_3' -> 'loucloud.services.auth.load_session'."""
    mangled = name.partition("__mutmut_")[0]
    module, _, func = mangled.rpartition(".")
    func = func[2:] if func.startswith("x_") else func.lstrip("x").replace("ǁ", ".").strip(".")
    return f"{module}.{func}"


def explanation(name: str, line: str) -> str | None:
    func = function_of(name)
    for explained_func, explained_line, why in EXPLAINED:
        if explained_func == func and explained_line == line:
            return why
    return None


def source_state() -> tuple[str, str]:
    """(uncommitted changes under loucloud/ as git sees them, a hash of its Python files)."""
    changes = subprocess.run(["git", "status", "--porcelain", "--", "loucloud"], cwd=ROOT,
                             text=True, capture_output=True, check=False).stdout.strip()
    digest = hashlib.sha256()
    for path in sorted((ROOT / "loucloud").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return changes, digest.hexdigest()


def main(argv: list[str]) -> int:
    patterns = argv or list(SCOPE)
    if not MUTMUT.exists():
        print(f"{MUTMUT} is missing: run `make venv-test` (requirements-test.txt).")
        return 2
    changes, before = source_state()
    if changes:
        print(f"Note: loucloud/ has uncommitted changes; their mutants are tested:\n{changes}")
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)  # no stale copies, stats or verdicts
    start = time.monotonic()
    run = mutmut("run", *patterns, capture=False)
    seconds = round(time.monotonic() - start)
    if source_state()[1] != before:
        print("loucloud/ changed while mutmut ran: these results are of no one version. "
              "Run it again.")
        return 1
    if run.returncode != 0:
        print(f"mutmut run failed (exit {run.returncode}) after {seconds} s. A test that fails "
              "without any mutant stops it, and mutmut's fork server keeps that test's output "
              "to itself; to see it: cd mutants && MUTANT_UNDER_TEST=stats ../.venv/bin/python"
              " -m pytest -x -p tests.support.mutants tests/ --ignore=tests/system "
              "--ignore=tests/browser --ignore=tests/test_cli_validation.py")
        return 1
    in_scope = {name: status for name, status in results().items()
                if any(fnmatch.fnmatch(name, p) for p in patterns)}
    counts = Counter(in_scope.values())
    per_module = Counter(name.partition("__mutmut_")[0].rpartition(".")[0]
                         for name in in_scope)
    not_killed = sorted(name for name, status in in_scope.items() if status != "killed")

    lines, unexplained, explained = [], [], []
    for name in not_killed:
        diff = diff_of(name)
        line = mutated_line(diff)
        why = explanation(name, line)
        (explained if why else unexplained).append(name)
        lines += [f"## {name}: {in_scope[name]}" + ("" if why else "  <- NOT EXPLAINED"),
                  f"   {function_of(name)}: {line}",
                  f"   why: {why}" if why else "   why: (none: kill it with a test or explain "
                                                 "it in tests/support/mutants.py EXPLAINED)",
                  diff, ""]
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text("\n".join(lines))

    figures = {"tool": "mutmut " + mutmut("--version").stdout.strip().split()[-1],
               "seconds": seconds, "mutants": len(in_scope), "killed": counts["killed"],
               "statuses": dict(counts), "per_module": dict(per_module),
               "explained": len(explained), "unexplained": unexplained}
    FIGURES.parent.mkdir(exist_ok=True)
    FIGURES.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")

    print()
    print(f"Mutation testing: {len(in_scope)} mutants in {seconds // 60} min {seconds % 60} s:"
          f" {counts['killed']} killed, {len(not_killed)} not killed "
          f"({', '.join(f'{n} {s}' for s, n in sorted(counts.items()) if s != 'killed')})")
    for module, n in sorted(per_module.items()):
        killed = sum(1 for name, s in in_scope.items()
                     if s == "killed" and name.startswith(module + ".x"))
        print(f"  {module}: {n} mutants, {killed} killed")
    print(f"Not killed, explained as equivalent: {len(explained)}; "
          f"NOT explained: {len(unexplained)}")
    for name in unexplained:
        print(f"  {name}: {in_scope[name]}")
    print(f"Every survivor with its diff: {REPORT.relative_to(ROOT)}; "
          f"figures: {FIGURES.relative_to(ROOT)}")
    return 1 if unexplained or not in_scope else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main(sys.argv[1:]))
