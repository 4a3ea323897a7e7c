"""The folders import one way, as ../shared/design.md draws them:
`service -> (api, console) -> (accounts, tiktok, workers) -> (signer, migrations)`.

Checked twice: an AST walk of every import in each package (lazy ones inside functions
included, as the lead's before-stop hook reads them), and each package imported in a
fresh interpreter, whose `sys.modules` must hold none of the packages above it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {
    "signer", "workers", "accounts", "api", "console", "service", "stack", "migrations",
    "tiktok", "sandbox", "scripts", "tests", "bench",
}  # fmt: skip
# What each package may not import (bench/ may import anything; tests/ anything ours).
BANNED: dict[str, set[str]] = {
    "signer": OURS - {"signer"},
    "migrations": OURS - {"migrations"},
    "workers": {"api", "accounts", "console", "service", "stack", "tiktok", "sandbox"},
    "accounts": {"api", "console", "service", "stack", "tiktok", "sandbox"},
    "tiktok": {"api", "console", "service", "stack", "workers", "accounts", "sandbox"},
    "sandbox": OURS - {"sandbox", "signer", "tiktok"},
    "api": {"console", "service", "stack", "sandbox"},
    "console": {"service", "stack", "sandbox"},
    "scripts": {"tests"},
}


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", sorted(BANNED))
def test_no_import_runs_against_the_layering(package: str) -> None:
    folder = ROOT / package
    if not folder.is_dir():
        pytest.skip(f"no {package}/ yet")
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted(folder.rglob("*.py"))
        for line, module in _imports(ast.parse(path.read_text()))
        if module.split(".")[0] in BANNED[package]
    ]
    assert not wrong, "\n".join(wrong)


# Python packages of ours that import cleanly on their own (scripts/ holds scripts).
PACKAGES = [
    "signer", "migrations", "workers", "accounts", "tiktok", "sandbox", "api", "console", "service",
]  # fmt: skip


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_loads_nothing_above_it(package: str) -> None:
    if not (ROOT / package / "__init__.py").is_file():
        pytest.skip(f"no {package}/ yet")
    program = (
        "import importlib, json, pkgutil, sys\n"
        f"package = importlib.import_module({package!r})\n"
        "for module in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "    if not module.name.endswith('__main__'):\n"
        "        importlib.import_module(module.name)\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout)) & OURS
    assert not loaded & BANNED.get(package, set()), sorted(loaded & BANNED[package])


def test_service_is_the_only_reader_of_the_environment() -> None:
    """No package below `service/` builds a settings class from the environment: the
    classes are defined next to what they configure, and built in service.environment."""
    readers = []
    for package in ("workers", "accounts", "api", "migrations"):
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text()
            readers += [
                f"{path.relative_to(ROOT)}: {word}"
                for word in ("os.environ", "os.getenv")
                if word in text
            ]
            for node in ast.walk(ast.parse(text)):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id.endswith("Settings")
                    and node.func.id != "AppSettings"
                ):
                    readers.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.func.id}()")
    assert not readers, "\n".join(readers)


def test_a_worker_does_not_load_the_web_app() -> None:
    """`signer worker` reads every settings class (console's, TikTok's and the database's
    included) but serves no page, calls no TikTok and asks no Postgres: the console's
    templates, password hashing, the API, the TikTok client with its protobuf messages and
    asyncpg stay out of its memory and its start-up. Its browser engine drives Chromium
    itself: Playwright (a test dependency) is not loaded either."""
    program = (
        "import json, sys\n"
        "import service.environment, service.workers_process, signer.browser\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    unwanted = {
        *("console.app", "api.app", "jinja2", "aiohttp_jinja2", "argon2"),
        *("tiktok.client", "google.protobuf", "asyncpg", "migrations.runner", "playwright"),
    }
    assert not loaded & unwanted, sorted(loaded & unwanted)
