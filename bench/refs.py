"""``--ref REV``: the target as it is at another commit, extracted from git and run as its console script.

A refactor must leave speed and memory unchanged; the code before it is measured in the same run
as the code after it. The tree is run through ``BOOT`` by its own pyproject.toml entry point, so a
revision with another layout runs as it was, and never the working tree's code under its name.
Only the tree's target is run: the helpers (endpoints, baseline, generator) are always the
current bench/'s, so refs from before bench/ was a package work the same.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.base import OUT, PY, ROOT, log

#: script would: the tree first on sys.path, then the tree's own ``[project.scripts]``
#: entry ``target-kinesis = "module:attr.attr"`` imported and called with ARGS, whatever
#: the tree's package layout, on the packages of this interpreter. It refuses to run when
#: the module came from elsewhere (e.g. from the editable install of the working tree).
BOOT = """\
import importlib, os, sys
try:
    import tomllib
except ImportError:
    import tomli as tomllib
tree = os.path.realpath(sys.argv[1])
if sys.path and sys.path[0] == "":
    del sys.path[0]  # -c puts the cwd first, a console script does not
sys.path[:0] = [root for root in (os.path.join(tree, "src"), tree) if os.path.isdir(root)]
with open(os.path.join(tree, "pyproject.toml"), "rb") as fh:
    entry = tomllib.load(fh)["project"]["scripts"]["target-kinesis"]
module, _, attrs = entry.partition(":")
target = importlib.import_module(module.strip())
origin = os.path.realpath(getattr(sys.modules[module.strip().split(".")[0]], "__file__", None) or "?")
if not origin.startswith(tree + os.sep):
    sys.exit(f"bench --ref: {module} was imported from {origin}, not from {tree}")
for attr in filter(None, attrs.strip().split(".")):
    target = getattr(target, attr)
sys.argv = ["target-kinesis", *sys.argv[2:]]
sys.exit(target())
"""

REF_MARKER = ".bench-ref-sha"  # in an extracted tree: the full sha it was extracted from


@dataclass(frozen=True)
class RefTree:
    rev: str  # as given to --ref
    sha: str
    short: str
    path: Path
    entry: str  # its `target-kinesis` console script, "module:attr"
    subject: str  # first line of the commit message


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def _script_entry(tree: Path) -> str:
    """The tree's ``target-kinesis`` console script, as its pyproject.toml declares it."""
    import tomllib

    try:
        with open(tree / "pyproject.toml", "rb") as fh:
            return tomllib.load(fh)["project"]["scripts"]["target-kinesis"]
    except (OSError, KeyError, ValueError) as exc:
        raise SystemExit(f"{tree}: no [project.scripts] target-kinesis in pyproject.toml ({exc!r})") from exc


def _git_archive(sha: str, dest: Path) -> None:
    """``git archive SHA | tar -x -C DEST``."""
    archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", sha], stdout=subprocess.PIPE)
    assert archive.stdout is not None
    untar = subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=False)
    archive.stdout.close()
    if archive.wait() != 0 or untar.returncode != 0:
        raise SystemExit(f"git archive {sha} | tar -x -C {dest} failed")


def compile_bytecode(tree: Path) -> None:
    """Write the bytecode of a source tree's Python files now, as an installed package has it.

    Both sides of a comparison must start from bytecode: under PYTHONDONTWRITEBYTECODE (set on
    some machines, this one included) a tree never gets its .pyc files, and each start of the
    target then compiles its sources again, ~0.15 s that is not the code's own cost.
    """
    subprocess.run(
        [PY, "-m", "compileall", "-q", "-j", "0", str(tree)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        check=False,
    )


def extract_ref(rev: str) -> RefTree:
    """Extract ``rev``'s tree to bench/out/ref-SHORT/ (kept, and reused for the same sha)."""
    sha = _git("rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}")
    short = _git("rev-parse", "--short", sha)
    dest = OUT / f"ref-{short}"
    marker = dest / REF_MARKER
    if marker.is_file() and marker.read_text().strip() == sha:
        log(f"--ref {rev}: reusing {dest.relative_to(ROOT)}")
    else:
        log(f"--ref {rev}: extracting {sha} -> {dest.relative_to(ROOT)}")
        tmp = Path(tempfile.mkdtemp(prefix=f".ref-{short}-", dir=OUT))
        try:
            _git_archive(sha, tmp)
            shutil.rmtree(dest, ignore_errors=True)
            tmp.rename(dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        compile_bytecode(dest)  # (see compile_bytecode)
        marker.write_text(sha + "\n")
    return RefTree(rev, sha, short, dest, _script_entry(dest), _git("log", "-1", "--format=%s", sha))


def ref_key(key: str, ref: RefTree) -> str:
    return f"{key}@{ref.short}"


def is_ref(key: str) -> bool:
    return "@" in key


def base_key(key: str) -> str:
    """``tk-kinesis`` for ``tk-kinesis@SHA``."""
    return key.split("@", 1)[0]


REF_BASES = (
    "tk-kinesis",
    "tk-firehose",
    "tk-kinesis-serial",
    "tk-kinesis-kpl",
)  # the contenders that --ref runs at REV too


def with_refs(keys: list[str], ref: RefTree | None) -> list[str]:
    """``keys`` with each target contender followed by its --ref twin."""
    out: list[str] = []
    for key in keys:
        out.append(key)
        if ref is not None and key in REF_BASES:
            out.append(ref_key(key, ref))
    return out
