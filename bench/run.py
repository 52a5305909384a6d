"""Benchmark harness for target-kinesis.

Runs, sequentially and on the same generated Singer input against the same local null
endpoint (a separate process, so its CPU is not charged to anyone; no limits: every stream
has ``--null-shards`` shards, 256 by default, which the target reads with ListShards):

* ``tk-kinesis``        target-kinesis -> Kinesis PutRecords
* ``tk-firehose``       target-kinesis -> Firehose PutRecordBatch
* ``baseline``          bench/baseline_producer.py (the hand-written producer) -> Kinesis
* ``null-target``       bench/null_target.py (Singer SDK target that drops records)
* ``baseline-firehose`` (optional, via --contenders) the baseline producer -> Firehose
* ``tk-kinesis-kpl``    (optional, via --contenders) target-kinesis -> Kinesis with
                        ``aggregation: kpl`` (events packed into KPL aggregated records)
* ``tk-kinesis-serial`` (optional, via --contenders) target-kinesis -> Kinesis with
                        ``mapping_processes: 0`` (one process, as on a single CPU)

and reports wall time, records/s, CPU seconds and peak memory of each child (RSS from
``wait4``, or the PSS of its whole process tree when larger), the records the endpoint received, the throughput ratios, the linearity of
records/s across ``--sizes`` and the memory ceiling.

``--ref REV`` adds ``tk-kinesis@SHA`` (and ``tk-firehose@SHA``): the target as it is at
commit REV, extracted under bench/out/ref-SHA/, run with the same config, input, endpoint
and interpreter, alternating with the others; the report sets them side by side.
``--streams N`` measures what opening N streams costs (one SCHEMA each, then its records).
``--capacity [SCENARIO,...]`` runs the target (and its ``--ref`` twin) against streams that
refuse writes beyond AWS's limits (tests/support/capacity_endpoint.py, a fresh one per run)
and reports how close it came to each stream's capacity and how much was refused; its
``kinesis-kpl`` and ``firehose-lines`` scenarios set the target with ``aggregation`` beside the
target without it, read back every stored record and count events lost, duplicated and misplaced.

Usage::

    .venv/bin/python bench/run.py [--records 100000] [--sizes 10000,100000,1000000]
                                  [--repeat 1] [--ref REV] [--streams N] [--write-results]
    .venv/bin/python bench/run.py --capacity [SCENARIO,...] [--capacity-scale 0.25] --sizes '' [--ref REV]
    .venv/bin/python bench/run.py --profile [--records 100000] [--write-results]
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import pstats
import re
import resource
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
LOGS = OUT / "logs"
PY = sys.executable
BIN = Path(sys.executable).parent

sys.path.insert(0, str(BENCH))
import generate  # noqa: E402  (bench/ is not a package)

GOAL_RATIO = 2.0  # target-kinesis (Kinesis) records/s vs the hand-written producer
GOAL_RSS_MIB = 150.0
GOAL_LINEARITY_PCT = 15.0
GOAL_KPL_THROUGHPUT_RATIO = 1.0  # target-kinesis with aggregation kpl vs without, records (events)/s

# --------------------------------------------------------------------------------------
# child-process bookkeeping: everything we start is killed on exit
# --------------------------------------------------------------------------------------

_LIVE: dict[int, subprocess.Popen] = {}
_LIVE_LOCK = threading.Lock()


def _register(proc: subprocess.Popen) -> None:
    with _LIVE_LOCK:
        _LIVE[proc.pid] = proc


def _unregister(proc: subprocess.Popen) -> None:
    with _LIVE_LOCK:
        _LIVE.pop(proc.pid, None)


def _killpg(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal the process group led by ``pid`` (every child runs in its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _cleanup() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE.values())
        _LIVE.clear()
    for proc in procs:
        if proc.returncode is None:
            _killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 3.0
    for proc in procs:
        if proc.returncode is not None:
            continue
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired, ChildProcessError):
                proc.wait(timeout=2.0)
        except ChildProcessError:
            pass


def _on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, _on_sigterm)
signal.signal(signal.SIGHUP, _on_sigterm)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# input
# --------------------------------------------------------------------------------------


def _generator_digest() -> str:
    return hashlib.sha256((BENCH / "generate.py").read_bytes()).hexdigest()[:16]


def ensure_input(records: int, seed: int, hot_share: float = 0.0, lean: bool = False) -> Path:
    """Generate (or reuse the cached) input of ``records`` records; with ``hot_share``, that share
    of them has one user_id (generate.HOT_USER_ID): the hot-key variant; with ``lean``, the orders
    cut down to ~456-byte events on the wire (generate.py --lean: the capacity scenarios' input)."""
    hot = f"-hot{round(hot_share * 1000)}" if hot_share else ""
    path = OUT / f"orders-{records}-s{seed}{hot}{'-lean' if lean else ''}.singer"
    what = f"{records:,} {'lean ' if lean else ''}records" + (
        f", {hot_share:.0%} of them one user's" if hot_share else ""
    )
    return _cached_input(path, what, lambda out: generate.write(records, out, seed, hot_share, lean), seed)


def ensure_streams_input(streams: int, per_stream: int, seed: int) -> Path:
    """Generate (or reuse the cached) input of ``streams`` streams of ``per_stream`` records."""
    path = OUT / f"streams-{streams}x{per_stream}-s{seed}.singer"
    return _cached_input(
        path,
        f"{streams:,} streams x {per_stream:,} records",
        lambda out: generate.write_streams(streams, per_stream, out, seed),
        seed,
    )


def _cached_input(path: Path, what: str, write: Callable[[str], dict], seed: int) -> Path:
    """``path`` if it was written by this generator, else write it with ``write``."""
    meta_path = path.with_suffix(".meta.json")
    digest = _generator_digest()
    if path.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError:
            meta = {}
        if meta.get("generator") == digest and meta.get("bytes") == path.stat().st_size:
            return path
    log(f"generating {what} -> {path.relative_to(ROOT)}")
    t0 = time.perf_counter()
    stats = write(str(path))
    stats["generator"] = digest
    stats["seed"] = seed
    meta_path.write_text(json.dumps(stats))
    log(
        f"generated {stats['bytes'] / 2**20:.1f} MiB, "
        f"{stats['avg_record_line_bytes']:.0f} bytes/RECORD line in "
        f"{time.perf_counter() - t0:.1f}s"
    )
    return path


def input_meta(path: Path) -> dict:
    return json.loads(path.with_suffix(".meta.json").read_text())


# --------------------------------------------------------------------------------------
# endpoints: the null endpoint, and the capacity endpoint of --capacity
# --------------------------------------------------------------------------------------

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

NULL_SHARDS = 256  # --null-shards: the open shards of every stream of the null endpoint
CAPACITY_ENDPOINT = ROOT / "tests" / "support" / "capacity_endpoint.py"
CAPACITY_READBACK = BENCH / "capacity_readback.py"  # the capacity endpoint plus GET /__records


def null_endpoint_argv(shards: int = NULL_SHARDS) -> list[str]:
    return [PY, str(BENCH / "null_endpoint.py"), "0", "--shards", str(shards)]


class Endpoint:
    """An endpoint in its own process: prints its port on its first stdout line, answers
    ``GET /__health`` with 200. The null endpoint unless told another command."""

    def __init__(self, argv: list[str] | None = None, name: str = "null_endpoint", log_stem: str = "") -> None:
        self.argv = argv or null_endpoint_argv()
        self.name = name
        self.log_path = LOGS / f"{log_stem or name}.stderr"
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.url = ""

    def start(self, timeout: float = 20.0, quiet: bool = False) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        err = open(self.log_path, "wb")  # noqa: SIM115 (lives with proc)
        self.proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        err.close()
        _register(self.proc)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            raise RuntimeError(f"{self.name} did not print its port within {timeout}s (see {self.log_path})")
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), _NO_PROXY.open(self.url + "/__health", timeout=2) as resp:
                if resp.status == 200:
                    if not quiet:
                        log(f"{self.name} pid {self.proc.pid} on {self.url}")
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not healthy (see {self.log_path})")

    def _call(self, path: str, method: str = "GET") -> dict:
        req = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        with _NO_PROXY.open(req, timeout=10) as resp:
            return json.loads(resp.read())

    def counts(self) -> dict:
        return self._call("/__counts")

    def reset(self) -> dict:
        return self._call("/__reset", "POST")

    def stats(self, stream: str) -> dict:
        """The capacity endpoint's counters of one stream (``GET /__stats?stream=NAME``)."""
        return self._call(f"/__stats?stream={urllib.parse.quote(stream)}")

    def cpu_seconds(self) -> float:
        """user+sys CPU of the endpoint process (all threads), from /proc."""
        if self.proc is None:
            return 0.0
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _killpg(proc.pid)
                proc.wait(timeout=5)
        _unregister(proc)
        if proc.stdout:
            proc.stdout.close()


# --------------------------------------------------------------------------------------
# contenders
# --------------------------------------------------------------------------------------


@dataclass
class Contender:
    key: str
    label: str
    argv: list[str] | None  # None: missing
    counted_api: str | None  # "kinesis" / "firehose": the endpoint must receive every record
    missing: str = ""
    #: settings added to the target's config (``{"aggregation": "kpl"}``)
    config: dict = field(default_factory=dict)
    #: the null endpoint's counter that must equal the input's records (default ``API_records``;
    #: ``kinesis_events`` when records are packed: it counts the events inside KPL aggregates)
    received_key: str | None = None


def write_config(path: Path, url: str, service: str, stream: str = "bench", extra: dict | None = None) -> Path:
    """The target's config: ``stream`` at the endpoint ``url``, dummy credentials, preflight on,
    plus ``extra`` settings."""
    cfg = {
        "stream_name": stream,
        "service": service,
        "endpoint_url": url,
        "region": "us-east-1",
        "aws_access_key_id": "x",
        "aws_secret_access_key": "y",
        "preflight_check": True,
        **(extra or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg, indent=2) + "\n")
    return path


def _config(endpoint: Endpoint, service: str, aggregation: str = "") -> Path:
    name = f"config-{service}-{aggregation}.json" if aggregation else f"config-{service}.json"
    return write_config(OUT / name, endpoint.url, service, extra={"aggregation": aggregation} if aggregation else None)


def target_command(override: str | None) -> tuple[list[str] | None, str]:
    if override:
        argv = shlex.split(override)
        exe = shutil.which(argv[0]) or (argv[0] if Path(argv[0]).exists() else None)
        if exe is None:
            return None, f"--target-cmd {argv[0]!r} not found"
        return argv, ""
    for candidate in (BIN / "target-kinesis", ROOT / ".venv" / "bin" / "target-kinesis"):
        if candidate.exists():
            return [str(candidate)], ""
    return None, (
        f"target-kinesis CLI not found at {BIN / 'target-kinesis'} (install the package: .venv/bin/pip install -e .)"
    )


# --------------------------------------------------------------------------------------
# --ref: the target as it is at another commit
# --------------------------------------------------------------------------------------

#: ``python -c BOOT TREE ARGS...`` runs the target of the source tree TREE as its console
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


REF_BASES = ("tk-kinesis", "tk-firehose", "tk-kinesis-serial")  # the contenders that --ref runs at REV too


def with_refs(keys: list[str], ref: RefTree | None) -> list[str]:
    """``keys`` with each target contender followed by its --ref twin."""
    out: list[str] = []
    for key in keys:
        out.append(key)
        if ref is not None and key in REF_BASES:
            out.append(ref_key(key, ref))
    return out


def build_contenders(endpoint: Endpoint, target_cmd: str | None, ref: RefTree | None = None) -> dict[str, Contender]:
    cfg_k = str(_config(endpoint, "kinesis"))
    cfg_f = str(_config(endpoint, "firehose"))
    cfg_kpl = str(_config(endpoint, "kinesis", "kpl"))
    serial = {"mapping_processes": 0}
    cfg_serial = str(write_config(OUT / "config-kinesis-serial.json", endpoint.url, "kinesis", extra=serial))
    tk, missing = target_command(target_cmd)
    baseline = [PY, str(BENCH / "baseline_producer.py")]
    contenders = {
        "tk-kinesis": Contender(
            "tk-kinesis",
            "target-kinesis -> Kinesis",
            [*tk, "--config", cfg_k] if tk else None,
            "kinesis",
            missing,
        ),
        "tk-firehose": Contender(
            "tk-firehose",
            "target-kinesis -> Firehose",
            [*tk, "--config", cfg_f] if tk else None,
            "firehose",
            missing,
        ),
        "tk-kinesis-kpl": Contender(
            "tk-kinesis-kpl",
            "target-kinesis -> Kinesis, aggregation kpl",
            [*tk, "--config", cfg_kpl] if tk else None,
            "kinesis",
            missing,
            config={"aggregation": "kpl"},
            received_key="kinesis_events",
        ),
        "tk-kinesis-serial": Contender(
            "tk-kinesis-serial",
            "target-kinesis -> Kinesis, no mapping processes",
            [*tk, "--config", cfg_serial] if tk else None,
            "kinesis",
            missing,
            config=serial,
        ),
        "baseline": Contender("baseline", "baseline producer -> Kinesis", [*baseline, "--config", cfg_k], "kinesis"),
        "baseline-firehose": Contender(
            "baseline-firehose",
            "baseline producer -> Firehose",
            [*baseline, "--config", cfg_f],
            "firehose",
        ),
        "null-target": Contender(
            "null-target",
            "null SDK target (validation on)",
            [PY, str(BENCH / "null_target.py"), "--config", cfg_k],
            None,
        ),
    }
    if ref is not None:
        boot = [PY, "-c", BOOT, str(ref.path)]
        for key, cfg in zip(REF_BASES, (cfg_k, cfg_f, cfg_serial), strict=True):
            current = contenders[key]
            contenders[ref_key(key, ref)] = Contender(
                ref_key(key, ref), f"{current.label} @{ref.short}", [*boot, "--config", cfg], current.counted_api
            )
    return contenders


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    no_proxy = "127.0.0.1,localhost"
    for key in ("NO_PROXY", "no_proxy"):
        env[key] = f"{env[key]},{no_proxy}" if env.get(key) else no_proxy
    # keep the host's AWS setup out of the measurement
    for key in list(env):
        if key.startswith("AWS_"):
            del env[key]
    missing = str(OUT / "no-such-aws-file")
    env.update(
        AWS_CONFIG_FILE=missing,
        AWS_SHARED_CREDENTIALS_FILE=missing,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="y",
    )
    return env


# --------------------------------------------------------------------------------------
# one measured run
# --------------------------------------------------------------------------------------


@dataclass
class Run:
    key: str
    label: str
    records: int
    status: str = "ok"
    wall: float = 0.0
    cpu_user: float = 0.0
    cpu_sys: float = 0.0
    rss_mib: float = 0.0
    received: int | None = None
    calls: int | None = None
    aws_records: int | None = None  # AWS records that carried `received` events (packed contenders)
    endpoint_cpu: float = 0.0
    other_cpu: float = 0.0  # CPU used meanwhile by processes other than child and endpoint
    state_lines: int = 0
    rc: int | None = None
    detail: str = ""
    walls: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)  # rss_mib of each repeat (rss_mib: the largest)

    @property
    def cpu(self) -> float:
        return self.cpu_user + self.cpu_sys

    @property
    def rps(self) -> float:
        return self.records / self.wall if self.wall > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def system_busy_seconds() -> float:
    """CPU seconds (all cores, all processes) spent busy since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # guest time is already counted in user
    return busy / os.sysconf("SC_CLK_TCK")


TIMEOUT_BASE = 60.0  # seconds; --timeout-base


def timeout_for(records: int, min_rate: float, factor: float = 1.0) -> float:
    return factor * (TIMEOUT_BASE + records / min_rate)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        data = path.read_bytes()[-8192:].decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in data[-lines:])


def _count_state_lines(path: Path) -> int:
    n = 0
    with contextlib.suppress(OSError), open(path, "rb") as fh:
        for line in fh:
            if b'"bookmarks"' in line:
                n += 1
    return n


@dataclass
class ChildResult:
    rc: int
    wall: float
    rusage: os.struct_rusage
    timed_out: bool
    rss_mib: float  # peak memory: RSS of the child, or PSS of its process tree if larger


def _proc_kib(path: str, field: bytes) -> int:
    """A `Name:  N kB` line of a /proc file (0 when the process or the line is gone)."""
    try:
        with open(path, "rb") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _vm_hwm_kib(pid: int) -> int:
    return _proc_kib(f"/proc/{pid}/status", b"VmHWM:")


def _tree_pss_kib(pid: int) -> int:
    """PSS of `pid` and all its descendants: the memory a process tree really uses.

    target-kinesis forks mapping processes; each one's RSS counts the pages it shares
    with the others again, PSS divides shared pages among their sharers.
    """
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        total += _proc_kib(f"/proc/{current}/smaps_rollup", b"Pss:")
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", "rb") as fh:
                    pending.extend(int(child) for child in fh.read().split())
        except (OSError, ValueError):
            continue
    return total


def run_child(
    argv: list[str],
    input_path: Path,
    log_stem: str,
    timeout: float,
    env: dict[str, str],
) -> ChildResult:
    """Run argv with stdin from input_path, in its own session, killed after ``timeout`` s.

    Peak RSS: ``ru_maxrss`` from ``wait4`` is exact for the child, except that Linux carries
    the parent's high-water mark over a fork+exec. So when the child's ``ru_maxrss`` does not
    exceed this harness's own peak, the child's real peak is lower: it is then taken from
    ``VmHWM`` in /proc, sampled every 50 ms while the child runs (monotonic, so at most the
    growth of the last 50 ms can be missed).
    """
    LOGS.mkdir(parents=True, exist_ok=True)
    timed_out = threading.Event()
    done = threading.Event()
    hwm = [0]
    tree = [0]
    own_peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with (
        open(input_path, "rb") as stdin,
        open(LOGS / f"{log_stem}.stdout", "wb") as stdout,
        open(LOGS / f"{log_stem}.stderr", "wb") as stderr,
    ):
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            env=env,
            cwd=OUT,
            start_new_session=True,
        )
        _register(proc)

        def _expire() -> None:
            timed_out.set()
            _killpg(proc.pid, signal.SIGKILL)

        def _sample() -> None:
            ticks = 0
            while not done.wait(0.05):
                hwm[0] = max(hwm[0], _vm_hwm_kib(proc.pid))
                if ticks % 5 == 0:  # reading PSS costs the kernel a page-table walk: 4x a second
                    tree[0] = max(tree[0], _tree_pss_kib(proc.pid))
                ticks += 1

        timer = threading.Timer(timeout, _expire)
        timer.daemon = True
        timer.start()
        sampler = threading.Thread(target=_sample, daemon=True)
        sampler.start()
        try:
            # wait for exit without reaping: the pid (and its group) stays ours, so the
            # group can be cleaned of stragglers safely before the zombie is reaped.
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            wall = time.perf_counter() - t0
        finally:
            done.set()
            timer.cancel()
            _killpg(proc.pid, signal.SIGKILL)  # stragglers the child may have left
            _, status, rusage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            _unregister(proc)
            sampler.join(timeout=1.0)
    peak_kib = rusage.ru_maxrss if rusage.ru_maxrss > own_peak_kib else hwm[0]
    peak_kib = max(peak_kib, tree[0])  # a process tree: the larger of the two
    return ChildResult(proc.returncode, wall, rusage, timed_out.is_set(), peak_kib / 1024.0)


def measure(
    contender: Contender,
    input_path: Path,
    records: int,
    endpoint: Endpoint,
    timeout: float,
    env: dict[str, str],
    tag: str = "",
) -> Run:
    run = Run(contender.key, contender.label, records)
    if contender.argv is None:
        run.status = "SKIPPED"
        run.detail = contender.missing
        return run
    if not endpoint.alive():
        raise RuntimeError("null endpoint died; see bench/out/logs/null_endpoint.stderr")
    endpoint.reset()
    ep_cpu0 = endpoint.cpu_seconds()
    sys_cpu0 = system_busy_seconds()
    stem = f"{contender.key}-{records}{tag}"
    try:
        child = run_child(contender.argv, input_path, stem, timeout, env)
    except OSError as exc:  # e.g. the command cannot be executed
        run.status = "FAILED"
        run.detail = f"cannot start {contender.argv[0]}: {exc}"
        log(f"!!! {contender.label}: {run.detail}")
        return run
    counts = endpoint.counts()
    run.endpoint_cpu = endpoint.cpu_seconds() - ep_cpu0
    sys_cpu = system_busy_seconds() - sys_cpu0
    rc, wall, timed_out = child.rc, child.wall, child.timed_out
    run.rc = rc
    run.wall = wall
    run.walls = [wall]
    run.cpu_user, run.cpu_sys = child.rusage.ru_utime, child.rusage.ru_stime
    run.rss_mib = child.rss_mib
    run.peaks = [child.rss_mib]
    run.other_cpu = max(0.0, sys_cpu - run.cpu - run.endpoint_cpu)
    if run.other_cpu > 0.25 * max(wall, 1.0):
        log(
            f"warning: other processes used {run.other_cpu:.1f} CPU-s during this {wall:.1f}s run "
            "(busy machine: numbers are noisy; rerun on an idle machine or use --repeat)"
        )
    run.state_lines = _count_state_lines(LOGS / f"{stem}.stdout")
    if contender.counted_api:
        run.received = counts.get(contender.received_key or f"{contender.counted_api}_records", 0)
        run.calls = counts.get(f"{contender.counted_api}_calls", 0)
        if contender.received_key:
            run.aws_records = counts.get(f"{contender.counted_api}_records", 0)
    else:
        run.received = counts.get("kinesis_records", 0) + counts.get("firehose_records", 0)
    if timed_out:
        run.status = "TIMEOUT"
        run.detail = f"killed after {timeout:.0f}s"
    elif rc != 0:
        run.status = "FAILED"
        run.detail = f"exit code {rc}"
    elif contender.counted_api and run.received != records:
        run.status = "MISMATCH"
        run.detail = f"endpoint received {run.received:,} of {records:,} records"
    if not run.ok:
        log(f"!!! {contender.label}: {run.status} {run.detail}")
        tail = _tail(LOGS / f"{stem}.stderr")
        if tail:
            log(f"stderr tail ({LOGS / (stem + '.stderr')}):\n{tail}")
    if run.status == "MISMATCH":
        print(
            f"\n*** MISMATCH *** {contender.label}: {run.detail}\n",
            file=sys.stderr,
            flush=True,
        )
    return run


def merge(runs: list[Run]) -> Run:
    """Combine repeats: median wall/CPU, max RSS, worst status."""
    if len(runs) == 1:
        return runs[0]
    bad = [r for r in runs if not r.ok]
    base = bad[0] if bad else runs[0]
    good = [r for r in runs if r.ok] or runs
    merged = Run(base.key, base.label, base.records, base.status, detail=base.detail)
    merged.walls = [r.wall for r in good]
    merged.wall = statistics.median(merged.walls)
    merged.cpu_user = statistics.median(r.cpu_user for r in good)
    merged.cpu_sys = statistics.median(r.cpu_sys for r in good)
    merged.rss_mib = max(r.rss_mib for r in runs)
    merged.peaks = [r.rss_mib for r in good]
    merged.endpoint_cpu = statistics.median(r.endpoint_cpu for r in good)
    merged.other_cpu = max(r.other_cpu for r in runs)
    merged.received = base.received
    merged.calls = base.calls
    merged.aws_records = base.aws_records
    merged.state_lines = base.state_lines
    merged.rc = base.rc
    return merged


@dataclass
class Bench:
    """What every measured run shares."""

    contenders: dict[str, Contender]
    endpoint: Endpoint
    env: dict[str, str]
    repeat: int
    min_rate: float


def run_alternating(
    bench: Bench, keys: list[str], input_path: Path, records: int, what: str, tag: str = "", extra_timeout: float = 0.0
) -> dict[str, Run]:
    """Each of ``keys`` ``bench.repeat`` times on one input, the contenders alternating run
    by run, so that the drift of a shared machine weighs on all of them alike. Returns each
    one's repeats merged (median); a missing contender gets one SKIPPED run."""
    reps: dict[str, list[Run]] = {key: [] for key in keys}
    timeout = timeout_for(records, bench.min_rate) + extra_timeout
    for rep in range(bench.repeat):
        for key in keys:
            c = bench.contenders[key]
            if c.argv is None and reps[key]:
                continue  # already recorded as SKIPPED
            if c.argv is not None:
                log(f"{what} {rep + 1}/{bench.repeat}: {c.label}, {records:,} records")
            r = measure(c, input_path, records, bench.endpoint, timeout, bench.env, tag=f"{tag}-r{rep}")
            if r.status != "SKIPPED":
                aws = "" if r.aws_records is None else f" in {r.aws_records:,} AWS records"
                log(
                    f"  {r.wall:.2f}s  {r.rps:,.0f} rec/s  cpu {r.cpu:.2f}s  "
                    f"rss {r.rss_mib:.1f} MiB  received {_fmt_int(r.received)}{aws}  "
                    f"endpoint cpu {r.endpoint_cpu:.2f}s  {r.status}"
                )
            reps[key].append(r)
    return {key: merge(runs) for key, runs in reps.items()}


def measure_startup(bench: Bench, keys: list[str], seed: int) -> tuple[dict[str, float], dict[str, float]]:
    """Wall and CPU seconds of each contender on an input with no records (SCHEMA + STATE)."""
    startup: dict[str, float] = {}
    startup_cpu: dict[str, float] = {}
    runnable = [key for key in keys if bench.contenders[key].argv is not None]
    if not runnable:
        return startup, startup_cpu
    runs = run_alternating(bench, runnable, ensure_input(0, seed), 0, "startup")
    for key, r in runs.items():
        if r.status in ("ok", "MISMATCH"):  # 0 == 0 received: always ok
            startup[key], startup_cpu[key] = r.wall, r.cpu
            log(f"startup {r.label}: {r.wall:.2f}s, cpu {r.cpu:.2f}s")
    return startup, startup_cpu


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------


def _fmt_int(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _ratio(a: float | None, b: float | None) -> str:
    """``a / b`` as "1.23x" ("-" unless both are known and positive)."""
    return f"{a / b:.2f}x" if a and b and a > 0 and b > 0 else "-"


def _shorten(text: str, width: int = 72) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _status_text(run: Run) -> str:
    return run.status if not run.detail else f"{run.status}: {run.detail}"


def _md_table(header: list[str], rows: list[list[str]], align: str) -> str:
    """A markdown table; ``align`` has one letter per column: ``l`` (text) or ``r`` (numbers)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _marginal_cpu_us(runs: list[Run], startup_cpu: dict[str, float]) -> list[float | None]:
    """CPU per record added from the next smaller size (from the 0-record run for the first).

    What cost growing linearly means: each record costs the same whatever the size, once
    the fixed start-up is paid. Differences of medians, so a noisy start-up weighs only on
    the first step.
    """
    out: list[float | None] = []
    previous: tuple[int, float] | None = None
    for run in runs:
        if previous is None and run.key in startup_cpu:
            previous = (0, startup_cpu[run.key])
        if previous is None or not run.ok or run.records <= previous[0]:
            out.append(None)
        else:
            out.append((run.cpu - previous[1]) / (run.records - previous[0]) * 1e6)
        previous = (run.records, run.cpu) if run.ok else previous
    return out


def _net_rps(run: Run, startup: dict[str, float]) -> float | None:
    s = startup.get(run.key)
    if s is None or not run.ok or run.wall - s <= 0:
        return None
    return run.records / (run.wall - s)


def results_table(runs: list[Run], startup: dict[str, float]) -> str:
    rows = [
        "| contender | records | wall s | records/s | net records/s | CPU s | CPU µs/rec "
        "| peak RSS MiB | endpoint received | endpoint CPU s | other CPU s | status |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        if r.status == "SKIPPED":
            rows.append(f"| {r.label} | {r.records:,} | - | - | - | - | - | - | - | - | - | SKIPPED: {r.detail} |")
            continue
        net = _net_rps(r, startup)
        status = _status_text(r)
        rows.append(
            f"| {r.label} | {r.records:,} | {r.wall:.2f} | {r.rps:,.0f} | "
            f"{'-' if net is None else f'{net:,.0f}'} | {r.cpu:.2f} | "
            f"{(r.cpu / r.records * 1e6) if r.records else 0:.1f} | {r.rss_mib:.1f} | "
            f"{_fmt_int(r.received)} | {r.endpoint_cpu:.2f} | {r.other_cpu:.2f} | {status} |"
        )
    return "\n".join(rows)


def startup_table(startup: dict[str, float], startup_cpu: dict[str, float], labels: dict[str, str]) -> str:
    rows = [[labels[k], f"{v:.2f}", _fmt(startup_cpu.get(k), ".2f")] for k, v in startup.items()]
    return _md_table(["contender", "startup s (0 records)", "CPU s"], rows, "lrr")


def _net_ratio(a: Run, b: Run, startup: dict[str, float]) -> str:
    """`a`'s records/s over `b`'s, each net of its start-up ("-" without start-up runs)."""
    return _ratio(_net_rps(a, startup), _net_rps(b, startup))


def _median_peak(run: Run) -> float:
    return statistics.median(run.peaks) if run.peaks else run.rss_mib


def ref_section(runs: list[Run], pairs: list[tuple[str, str]], startup: dict[str, float]) -> str:
    """Each target contender next to its --ref twin, at every size both ran (medians of the repeats)."""
    by = {(r.key, r.records): r for r in runs}
    rows: list[list[str]] = []
    for cur_key, ref_key_ in pairs:
        for records in sorted(n for k, n in by if k == cur_key):
            cur, ref = by[(cur_key, records)], by.get((ref_key_, records))
            if ref is None:
                continue
            both = cur.ok and ref.ok
            status = "ok" if both else f"current {_status_text(cur)}; ref {_status_text(ref)}"
            if not both:
                rows.append([cur.label, f"{records:,}", *["-"] * 10, status])
                continue
            cur_us, ref_us = cur.cpu / records * 1e6, ref.cpu / records * 1e6
            cur_mib, ref_mib = _median_peak(cur), _median_peak(ref)
            rows.append(
                [
                    cur.label,
                    f"{records:,}",
                    f"{cur.rps:,.0f}",
                    f"{ref.rps:,.0f}",
                    _ratio(cur.rps, ref.rps),
                    _net_ratio(cur, ref, startup),
                    f"{cur_us:.1f}",
                    f"{ref_us:.1f}",
                    _ratio(cur_us, ref_us),
                    f"{cur_mib:.1f}",
                    f"{ref_mib:.1f}",
                    _ratio(cur_mib, ref_mib),
                    status,
                ]
            )
    if not rows:
        return "(no size was run by both)"
    header = [
        "contender",
        "records",
        "records/s",
        "records/s ref",
        "ratio",
        "net of startup",
        "CPU µs/rec",
        "CPU µs/rec ref",
        "ratio",
        "peak MiB",
        "peak MiB ref",
        "ratio",
        "status",
    ]
    return _md_table(header, rows, "lrrrrrrrrrrrl")


def _throughput_verdict(tk: Run, baseline: Run, startup: dict[str, float]) -> tuple[str, tuple[bool, str]]:
    """The throughput goal, judged end to end at one size; one wording wherever it is judged."""
    raw = tk.rps / baseline.rps
    return f"throughput at {tk.records:,} records (end to end)", (
        raw >= GOAL_RATIO,
        f"{raw:.2f}x the baseline producer, {_net_ratio(tk, baseline, startup)} net of start-up "
        f"(goal >= {GOAL_RATIO:.0f}x)",
    )


def _ms_per_stream(run: Run, streams: int, startup: dict[str, float], startup_cpu: dict[str, float]) -> tuple:
    """Wall and CPU ms per stream net of the contender's start-up (None when unknown)."""
    if not run.ok or run.key not in startup or run.key not in startup_cpu:
        return None, None
    return (run.wall - startup[run.key]) / streams * 1e3, (run.cpu - startup_cpu[run.key]) / streams * 1e3


def streams_section(
    runs: dict[str, Run], streams: int, startup: dict[str, float], startup_cpu: dict[str, float]
) -> str:
    """One row per contender of the --streams scenario; after a --ref twin, current / ref."""
    rows: list[list[str]] = []
    for key, r in runs.items():
        if r.status == "SKIPPED":
            rows.append([r.label, *["-"] * 6, _status_text(r)])
            continue
        wall_ms, cpu_ms = _ms_per_stream(r, streams, startup, startup_cpu)
        rows.append(
            [
                r.label,
                f"{r.wall:.2f}",
                f"{r.cpu:.2f}",
                _fmt(wall_ms, ".2f"),
                _fmt(cpu_ms, ".2f"),
                f"{_median_peak(r):.1f}",
                _fmt_int(r.received),
                _status_text(r),
            ]
        )
        current = runs.get(base_key(key))
        if is_ref(key) and current is not None and current.ok and r.ok:
            cur_ms = _ms_per_stream(current, streams, startup, startup_cpu)
            rows.append(
                [
                    f"**current / ref** ({current.label})",
                    _ratio(current.wall, r.wall),
                    _ratio(current.cpu, r.cpu),
                    _ratio(cur_ms[0], wall_ms),
                    _ratio(cur_ms[1], cpu_ms),
                    _ratio(_median_peak(current), _median_peak(r)),
                    "",
                    "",
                ]
            )
    header = [
        "contender",
        "wall s",
        "CPU s",
        "wall ms/stream (net)",
        "CPU ms/stream (net)",
        "peak MiB",
        "endpoint received",
        "status",
    ]
    return _md_table(header, rows, "lrrrrrrl")


def ratios_section(runs: dict[str, Run], startup: dict[str, float]) -> tuple[str, dict]:
    verdicts: dict = {}
    lines = ["| ratio | records/s | net of startup |", "|---|---:|---:|"]
    tk = runs.get("tk-kinesis")
    if tk is None or not tk.ok:
        why = "not run" if tk is None else f"{tk.status} {tk.detail}".strip()
        return f"target-kinesis (Kinesis) has no result ({why}): no ratios.", verdicts
    for other_key, name in (
        ("baseline", "target-kinesis (Kinesis) / baseline producer"),
        ("null-target", "target-kinesis (Kinesis) / null SDK target"),
        ("baseline-firehose", "target-kinesis (Kinesis) / baseline producer (Firehose)"),
    ):
        other = runs.get(other_key)
        if other is None or not other.ok or other.rps == 0:
            continue
        lines.append(f"| {name} | {tk.rps / other.rps:.2f}x | {_net_ratio(tk, other, startup)} |")
        if other_key == "baseline":
            verdicts.update([_throughput_verdict(tk, other, startup)])
    fh, base_fh = runs.get("tk-firehose"), runs.get("baseline-firehose")
    if fh and fh.ok and base_fh and base_fh.ok:
        lines.append(f"| target-kinesis (Firehose) / baseline producer (Firehose) | {fh.rps / base_fh.rps:.2f}x | - |")
    kpl = runs.get("tk-kinesis-kpl")
    notes: list[str] = []
    if kpl is not None and kpl.status != "SKIPPED":
        verdicts.update([_kpl_throughput_verdict(kpl, tk, startup)])
        if kpl.ok:
            lines.append(
                f"| target-kinesis (Kinesis, aggregation kpl) / target-kinesis (Kinesis) | {kpl.rps / tk.rps:.2f}x "
                f"| {_net_ratio(kpl, tk, startup)} |"
            )
            per_record = kpl.received / kpl.aws_records if kpl.received and kpl.aws_records else None
            notes.append(
                f"Aggregation kpl: {_fmt_int(kpl.received)} events (counted inside the aggregates by the endpoint) "
                f"in {_fmt_int(kpl.aws_records)} AWS records ({_fmt(per_record, ',.1f')} events a record) over "
                f"{_fmt_int(kpl.calls)} PutRecords calls, against {_fmt_int(tk.calls)} without; CPU "
                f"{kpl.cpu / kpl.records * 1e6:.1f} µs/event against {tk.cpu / tk.records * 1e6:.1f} "
                f"({_ratio(kpl.cpu, tk.cpu)}); endpoint CPU {kpl.endpoint_cpu:.2f} s against "
                f"{tk.endpoint_cpu:.2f} s (it decodes every aggregate to count its events)."
            )
    if len(lines) == 2:
        return "(no other contender to compare target-kinesis (Kinesis) with)", verdicts
    return "\n".join(lines) + "".join(f"\n\n{note}" for note in notes), verdicts


def _kpl_throughput_verdict(kpl: Run, tk: Run, startup: dict[str, float]) -> tuple[str, tuple[bool, str]]:
    """Aggregation must not cost throughput: events/s with kpl at least those without it."""
    name = f"throughput with aggregation kpl at {kpl.records:,} records (null endpoint)"
    if not kpl.ok:
        return name, (False, _status_text(kpl))
    raw = kpl.rps / tk.rps
    return name, (
        raw >= GOAL_KPL_THROUGHPUT_RATIO,
        f"{raw:.2f}x the events/s without aggregation ({kpl.rps:,.0f} against {tk.rps:,.0f}), "
        f"{_net_ratio(kpl, tk, startup)} net of start-up (goal >= {GOAL_KPL_THROUGHPUT_RATIO:.2f}x)",
    )


def linearity_section(
    by_size: dict[str, list[Run]], startup: dict[str, float], startup_cpu: dict[str, float]
) -> tuple[str, dict]:
    """`startup` / `startup_cpu`: wall and CPU seconds of each contender on a 0-record input."""
    verdicts: dict = {}
    out: list[str] = []
    for key, runs in by_size.items():
        if not runs:
            continue
        label = runs[0].label
        judged = verdicts if not is_ref(key) else {}  # a --ref twin is shown, not judged
        if any(r.status == "SKIPPED" for r in runs):
            out.append(f"{label}: SKIPPED ({runs[0].detail})")
            continue
        rows = [
            f"**{label}**",
            "",
            "| records | wall s | records/s | net records/s | CPU µs/rec | marginal CPU µs/rec | peak RSS MiB | status |",
            "|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        marginal = _marginal_cpu_us(runs, startup_cpu)
        for r, net_cpu in zip(runs, marginal, strict=True):
            net = _net_rps(r, startup)
            rows.append(
                f"| {r.records:,} | {r.wall:.2f} | {r.rps:,.0f} | "
                f"{'-' if net is None else f'{net:,.0f}'} | "
                f"{r.cpu / r.records * 1e6:.1f} | {'-' if net_cpu is None else f'{net_cpu:.1f}'} | "
                f"{r.rss_mib:.1f} | {_status_text(r)} |"
            )
        ok_runs = [r for r in runs if r.ok]
        if len(ok_runs) >= 2 and len(ok_runs) == len(runs):
            raw = [r.rps for r in ok_runs]
            dev_raw = (max(raw) / min(raw) - 1) * 100
            nets = [_net_rps(r, startup) for r in ok_runs]
            rows.append("")
            rows.append(f"- records/s spread (max/min - 1): **{dev_raw:.1f}%** end to end")
            cpu = [r.cpu / r.records for r in ok_runs]
            rows.append(
                f"- CPU per record spread: {(max(cpu) / min(cpu) - 1) * 100:.1f}% "
                "(start-up CPU included; insensitive to other load on the machine)"
            )
            steps = [m for m in marginal if m is not None]
            # Between the sizes run: what each further record costs. The step from the
            # 0-record run to the smallest size also carries one-time warm-up (forked
            # processes' first page copies, connections, caches); it is shown, not judged.
            between = [m for r, m in zip(runs, marginal, strict=True) if m is not None and r is not runs[0]]
            if len(steps) >= 2 and all(m > 0 for m in steps):
                dev_all = (max(steps) / min(steps) - 1) * 100
                rows.append(
                    "- marginal CPU per record, from a 0-record run to the smallest size and from each size "
                    f"to the next: **{dev_all:.1f}%** spread (the first step carries the one-time warm-up)"
                )
            if len(between) >= 2 and all(m > 0 for m in between):
                dev_cpu = (max(between) / min(between) - 1) * 100
                rows.append(f"- marginal CPU per record between the sizes run: **{dev_cpu:.1f}%** spread")
                judged[f"cost per record {label} (marginal CPU between sizes)"] = (
                    dev_cpu <= GOAL_LINEARITY_PCT,
                    f"{dev_cpu:.1f}% spread of the CPU each further record costs, "
                    f"{' / '.join(f'{m:.1f}' for m in between)} µs (goal <= {GOAL_LINEARITY_PCT:.0f}%)",
                )
            if all(nets):
                dev_net = (max(nets) / min(nets) - 1) * 100
                rows.append(f"- net of startup ({startup[key]:.2f}s, measured on a 0-record input): **{dev_net:.1f}%**")
                judged[f"records/s across sizes {label}"] = (
                    dev_net <= GOAL_LINEARITY_PCT,
                    f"{dev_net:.1f}% net of startup, {dev_raw:.1f}% end to end (goal <= {GOAL_LINEARITY_PCT:.0f}%)",
                )
            else:
                judged[f"records/s across sizes {label}"] = (
                    dev_raw <= GOAL_LINEARITY_PCT,
                    f"{dev_raw:.1f}% end to end (goal <= {GOAL_LINEARITY_PCT:.0f}%)",
                )
        out.append("\n".join(rows))
    tk, base = by_size.get("tk-kinesis"), by_size.get("baseline")
    if tk and base:
        rows = [
            "**target-kinesis (Kinesis) / baseline producer, at each size**",
            "",
            "| records | records/s ratio | net of startup |",
            "|---:|---:|---:|",
        ]
        largest: tuple[Run, Run] | None = None
        for t, b in zip(tk, base, strict=False):
            if t.records != b.records or not (t.ok and b.ok):
                continue
            rows.append(f"| {t.records:,} | {t.rps / b.rps:.2f}x | {_net_ratio(t, b, startup)} |")
            largest = (t, b)
        out.append("\n".join(rows))
        if largest is not None:
            verdicts.update([_throughput_verdict(*largest, startup)])
    return "\n\n".join(out) if out else "(no linearity runs)", verdicts


def memory_verdicts(all_runs: list[Run]) -> dict:
    verdicts: dict = {}
    for key in ("tk-kinesis", "tk-kinesis-kpl", "tk-firehose"):
        # a run that failed or timed out proves nothing about memory
        runs = [r for r in all_runs if r.key == key and r.status in ("ok", "MISMATCH")]
        if not runs:
            continue
        worst = max(runs, key=lambda r: r.rss_mib)
        verdicts[f"memory {worst.label}"] = (
            worst.rss_mib < GOAL_RSS_MIB,
            f"peak {worst.rss_mib:.1f} MiB at {worst.records:,} records "
            f"(goal < {GOAL_RSS_MIB:.0f} MiB; sizes run: "
            f"{', '.join(f'{r.records:,}' for r in sorted(runs, key=lambda r: r.records))})",
        )
    return verdicts


def machine_info() -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        if m:
            cpu = m.group(1).strip()
    mem = "unknown"
    with contextlib.suppress(OSError):
        m = re.search(r"^MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text(), re.M)
        if m:
            mem = f"{int(m.group(1)) / 2**20:.1f} GiB"
    versions = {}
    from importlib import metadata

    for dist in ("target-kinesis", "singer-sdk", "boto3", "botocore", "orjson", "fastjsonschema", "msgspec"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def goals_section(verdicts: dict) -> str:
    if not verdicts:
        return "(no goal could be evaluated)"
    rows = ["| goal | result | value |", "|---|---|---|"]
    for name, (ok, text) in verdicts.items():
        rows.append(f"| {name} | {'PASS' if ok else '**FAIL**'} | {text} |")
    return "\n".join(rows)


# --------------------------------------------------------------------------------------
# capacity scenarios (--capacity): a fresh capacity endpoint per run
# --------------------------------------------------------------------------------------

CAPACITY_STREAM = "bench"
SHARD_RECORDS_PER_S = 1_000  # what a Kinesis shard takes a second (AWS quotas; the capacity endpoint's)
SHARD_BYTES_PER_S = 2**20
THROTTLE_CODES = {"ProvisionedThroughputExceededException": "throughput", "ServiceUnavailableException": "slow down"}
CAPACITY_TIMEOUT_FACTOR = 4.0  # a run is killed after timeout-base + 4 x its ideal seconds
HOT_SHARD_GOAL = 0.6  # hot key: the cold shards' last accept at most this share of the hot shard's
#: The capacity scenarios run on lean orders (generate.py --lean): ~456-byte events on the wire, the
#: size the goals of issues 12 and 13 are stated for (the full orders make ~680-byte events).
CAPACITY_LEAN_INPUT = True
#: What the target's Segment envelope (type, event, userId, messageId, timestamp, sentAt, context)
#: adds to a RECORD line's size, about (the line's own Singer wrapper taken off): for timeouts only.
EVENT_OVER_LINE_BYTES = 300


@dataclass(frozen=True)
class Scenario:
    """One stream at the capacity endpoint and what is written to it (record counts at scale 1)."""

    name: str
    what: str
    service: str  # "kinesis" or "firehose"
    records: int  # per pipeline
    shards: int = 1
    other_share: float = 0.0  # --other-producer: another producer takes this share of each shard
    firehose_bytes_per_s: int = 0
    hot_share: float = 0.0  # that share of the events has one userId (one partition key)
    pipelines: int = 1  # target processes writing at once, each its own input
    min_efficiency: float | None = None  # the goal (None: reported, not judged)
    max_refused: float | None = None
    #: "kpl" / "lines": the target with that `aggregation` runs beside the target without it, and
    #: every stored record is read back (events lost, duplicated, misplaced; billed units)
    aggregation: str = ""
    min_events_per_s: float | None = None  # goal of the aggregating target: events / wall s
    max_units_per_event: float | None = None  # goal of the aggregating target: billed units / event

    def scaled(self, scale: float) -> int:
        return max(1, round(self.records * scale))

    def endpoint_argv(self) -> list[str]:
        # the aggregation scenarios read every stored record back: the capacity endpoint with a
        # /__records route (Firehose has no read API)
        server = CAPACITY_READBACK if self.aggregation else CAPACITY_ENDPOINT
        argv = [PY, str(server), "--port", "0"]
        if self.service == "firehose":
            argv += ["--firehose", f"{CAPACITY_STREAM}:{self.firehose_bytes_per_s}"]
        else:
            argv += ["--kinesis", f"{CAPACITY_STREAM}:{self.shards}"]
        if self.other_share:
            argv += ["--other-producer", f"{CAPACITY_STREAM}:{self.other_share}"]
        return argv


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("kinesis-1-shard", "1 shard", "kinesis", 40_000, min_efficiency=0.95, max_refused=0.05),
        Scenario("kinesis-2-shards", "2 shards", "kinesis", 40_000, shards=2, min_efficiency=0.95, max_refused=0.05),
        Scenario(
            "kinesis-shared",
            "1 shard, another producer takes 75% of it",
            "kinesis",
            10_000,
            other_share=0.75,
            min_efficiency=0.85,
            max_refused=0.10,
        ),
        Scenario(
            "kinesis-hot-key", "4 shards, 30% of the events on one userId", "kinesis", 40_000, shards=4, hot_share=0.3
        ),
        Scenario(
            "firehose-1mib",
            "a Firehose stream of 1 MiB/s",
            "firehose",
            40_000,
            firehose_bytes_per_s=2**20,
            min_efficiency=0.90,
            max_refused=0.05,
        ),
        Scenario(
            "two-pipelines",
            "two target processes at once into one 2-shard stream",
            "kinesis",
            20_000,
            shards=2,
            pipelines=2,
            min_efficiency=0.95,
            max_refused=0.05,
        ),
        Scenario(
            "kinesis-kpl",
            "1 shard, aggregation kpl beside none",
            "kinesis",
            40_000,
            max_refused=0.05,
            aggregation="kpl",
            min_events_per_s=2_000,
        ),
        Scenario(
            "firehose-lines",
            "a Firehose stream of 1 MiB/s, aggregation lines beside none",
            "firehose",
            20_000,
            firehose_bytes_per_s=2**20,
            aggregation="lines",
            max_refused=0.05,
            max_units_per_event=0.12,
        ),
    )
}


def parse_scenarios(text: str) -> list[str]:
    """``all`` or a comma list of scenario names (ValueError naming the unknown ones)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names or names == ["all"]:
        return list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario(s) {', '.join(unknown)}; known: all, {', '.join(SCENARIOS)}")
    return list(dict.fromkeys(names))


def _user_ids(path: Path) -> list[str]:
    """The user_id of every RECORD of an input: the target's default partition key (userId)."""
    ids = []
    with open(path, "rb") as fh:
        for line in fh:
            if line.startswith(b'{"type":"RECORD"'):
                ids.append(str(json.loads(line)["record"].get("user_id", "")))
    return ids


_SHARD_COUNTS: dict[tuple[str, int], list[int]] = {}


def expected_shard_records(path: Path, shards: int) -> list[int]:
    """Records of an input per shard of a stream of ``shards`` even shards: where Kinesis puts a
    record is the MD5 of its partition key (here the userId) against the shards' hash ranges."""
    key = (str(path), shards)
    if key not in _SHARD_COUNTS:
        step = 2**128 // shards
        counts = [0] * shards
        for user_id in _user_ids(path):
            digest = hashlib.md5(user_id.encode("utf-8"), usedforsecurity=False).digest()
            counts[min(int.from_bytes(digest, "big") // step, shards - 1)] += 1
        _SHARD_COUNTS[key] = counts
    return _SHARD_COUNTS[key]


@dataclass
class CapacityRun:
    """One run of one contender in one scenario (all its pipelines), and what the endpoint saw."""

    scenario: str
    key: str
    label: str
    sent: int
    status: str = "ok"
    detail: str = ""
    wall: float = 0.0  # first spawn to last exit
    cpu: float = 0.0  # user + sys of every pipeline
    rss_mib: float = 0.0  # the largest pipeline's peak
    ideal: float = 0.0  # seconds at the stream's capacity
    span: float | None = None  # the endpoint's first to last accept
    first_accept: float | None = None  # seconds from the first spawn to the first accept
    offered: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    failed_calls: dict[str, int] = field(default_factory=dict)
    landed: int = 0
    stored_bytes: int = 0  # what the endpoint stored: Kinesis data and partition keys, Firehose data
    endpoint_cpu: float = 0.0
    exits: list[int | None] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # last error line of each pipeline that failed
    #: shard id -> records, expected (from the input), bytes, last accept (s after the first accept)
    shards: dict[str, dict] = field(default_factory=dict)
    efficiencies: list[float] = field(default_factory=list)  # accepts-based, of every repeat (merged)
    runs: int = 1
    # aggregation scenarios: ``landed`` is then the events read back out of the stored records
    aggregation: str = ""  # the target's `aggregation` in this run ("" for none)
    aws_landed: int | None = None  # AWS records the endpoint stored
    summary: dict | None = None  # the target's summary line(s): events, aws_records, billed (None: absent)
    readback: dict | None = None  # Readback as a dict (None: not read back)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def events_ok(self) -> int:
        """Events that reached the stream, each once: sent less those lost."""
        lost = (self.readback or {}).get("lost")
        return self.sent - lost if lost is not None else min(self.landed, self.sent)

    @property
    def events_per_s(self) -> float | None:
        """Events that reached the stream / wall s (spawn to exit)."""
        return self.events_ok / self.wall if self.wall else None

    @property
    def events_per_s_accepts(self) -> float | None:
        """Events that reached the stream / the endpoint's first to last accept."""
        return self.events_ok / self.span if self.span else None

    @property
    def ceiling_events_per_s(self) -> float | None:
        """Events a second the stream's capacity allows for what was sent (records / ideal s)."""
        return self.sent / self.ideal if self.ideal else None

    @property
    def bytes_per_record(self) -> float | None:
        """Mean stored size of an AWS record (an event, without aggregation): Kinesis data and
        partition key, Firehose data (the event JSON and its newline)."""
        records = self.aws_landed if self.aws_landed is not None else self.landed
        return self.stored_bytes / records if records else None

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    @property
    def refused_share(self) -> float | None:
        return self.refused_total / self.offered if self.offered else None

    @property
    def efficiency_accepts(self) -> float | None:
        """ideal / accepts s; None unless every record landed (else it measures nothing)."""
        return self.ideal / self.span if self.span and self.ideal and self.landed == self.sent else None

    @property
    def efficiency_wall(self) -> float | None:
        """ideal / wall s; None unless every record landed."""
        return self.ideal / self.wall if self.wall and self.ideal and self.landed == self.sent else None

    def hot_and_cold(self) -> tuple[tuple[str, float], float] | None:
        """(hot shard, its last accept) and the cold shards' latest last accept, in s after the
        first accept; the hot shard is the one with the most records. None without them."""
        timed = {sid: s for sid, s in self.shards.items() if s.get("last") is not None}
        if len(timed) < 2:
            return None
        hot = max(timed, key=lambda sid: timed[sid]["records"])
        return (hot, timed[hot]["last"]), max(s["last"] for sid, s in timed.items() if sid != hot)


def _last_error_line(path: Path) -> str:
    """The last line of a stderr log that reads as an error (else its last line)."""
    try:
        text = path.read_bytes()[-65536:].decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"error|exception|traceback|failed|fatal|critical", line, re.I)]
    return (errors or lines or [""])[-1]


def _kinesis_ideal(
    scenario: Scenario, inputs: list[Path], stats: dict, sent: int, events_landed: int | None = None
) -> tuple[float, dict[str, dict]]:
    """Seconds the busiest shard needs at its rate (records, or bytes if more binding), and the
    per-shard figures. Records per shard come from the input (where the userIds hash to), bytes
    from what the endpoint stored (scaled up to what was sent when records are missing).

    ``events_landed``: the events read back when the target packed them (``aggregation``); then
    a shard's records are the AWS records it stored (scaled up likewise), not the input's events."""
    share_left = 1.0 - scenario.other_share
    expected = [sum(col) for col in zip(*(expected_shard_records(p, scenario.shards) for p in inputs), strict=True)]
    landed = stats.get("accepted", 0) if events_landed is None else events_landed
    scale = sent / landed if landed else 1.0
    shard_stats = stats.get("shards", {})
    firsts = [s["first_accept"] for s in shard_stats.values() if s.get("first_accept") is not None]
    t0 = min(firsts) if firsts else None
    ideal = 0.0
    shards: dict[str, dict] = {}
    for index, (sid, s) in enumerate(sorted(shard_stats.items())):
        want = expected[index] if index < len(expected) else s.get("accepted", 0)
        aws_records = want if events_landed is None else s.get("accepted", 0) * scale
        by_records = aws_records / (SHARD_RECORDS_PER_S * share_left)
        by_bytes = s.get("bytes", 0) * scale / (SHARD_BYTES_PER_S * share_left)
        ideal = max(ideal, by_records, by_bytes)
        last = s.get("last_accept")
        shards[sid] = {
            "records": s.get("accepted", 0),
            "expected": want,
            "bytes": s.get("bytes", 0),
            "ideal": max(by_records, by_bytes),
            "last": None if last is None or t0 is None else last - t0,
        }
    return ideal, shards


def _firehose_ideal(stats: dict, sent: int, events_landed: int | None = None) -> float:
    """Seconds the stream needs at its bytes (or records) a second for what was sent: bytes as the
    endpoint counts them (each record's data: the event JSON and its newline), scaled up to what
    was sent when records are missing. ``events_landed``: the events read back when the target
    packed them (``aggregation: lines``), the AWS records being fewer."""
    capacity = stats.get("capacity", {})
    records, landed_bytes = stats.get("accepted", 0), stats.get("accepted_bytes", 0)
    landed = records if events_landed is None else events_landed
    if not landed:
        return 0.0
    scale = sent / landed
    by_bytes = landed_bytes * scale / capacity.get("bytes_per_second", SHARD_BYTES_PER_S)
    return max(by_bytes, records * scale / capacity.get("records_per_second", float("inf")))


def _nominal_ideal(scenario: Scenario, inputs: list[Path], records: int) -> float:
    """The ideal before the run (for its timeout): Firehose bytes guessed from the input's size."""
    if scenario.service == "firehose":
        line_bytes = sum(input_meta(p)["avg_record_line_bytes"] for p in inputs) / len(inputs)
        return records * (line_bytes + EVENT_OVER_LINE_BYTES) / scenario.firehose_bytes_per_s
    per_shard = [sum(c) for c in zip(*(expected_shard_records(p, scenario.shards) for p in inputs), strict=True)]
    return max(per_shard) / (SHARD_RECORDS_PER_S * (1.0 - scenario.other_share))


def _run_pipelines(argvs: list[list[str]], inputs: list[Path], stem: str, timeout: float) -> tuple[float, list]:
    """Every pipeline at once (each one a child on its own input); the wall from the first spawn to
    the last exit, and each one's ChildResult (or the OSError that kept it from starting)."""
    results: list = [None] * len(argvs)
    env = child_env()

    def one(i: int) -> None:
        try:
            results[i] = run_child(argvs[i], inputs[i], f"{stem}-p{i}", timeout, env)
        except OSError as exc:
            results[i] = exc

    t0 = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(argvs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - t0, results


# -- aggregation scenarios: reading back what was stored ----------------------------------

KPL_MAGIC = b"\xf3\x89\x9a\xc2"  # a KPL aggregated record's first bytes
#: AWS's billing units (each record rounded up): Kinesis PUT payload units of 25 KB (of data plus
#: partition key, as the target counts a record's size), Firehose ingestion in 5 KB units.
BILLING_UNIT_BYTES = {"kinesis": 25 * 1024, "firehose": 5 * 1024}

_SUMMARY_LINE = re.compile(
    r"summary (?:kinesis|firehose):\S+: records_sent=(\d+)(?: aws_records=(\d+))?(?: billed_units=(\d+))?"
)


def summary_figures(paths: list[Path]) -> dict | None:
    """events, aws_records and billed from the target's summary lines (``summary kinesis:NAME:
    records_sent=N aws_records=N billed_units=N ...``), summed over ``paths`` (its stderr logs);
    a figure the target does not print (an older commit) is None; None without any summary line."""
    found = False
    totals: dict[str, int | None] = {"events": 0, "aws_records": 0, "billed": 0}
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for match in _SUMMARY_LINE.finditer(text):
            found = True
            for name, value in zip(totals, match.groups(), strict=True):
                totals[name] = None if value is None or totals[name] is None else totals[name] + int(value)
    return totals if found else None


_SUPPORT: dict[str, object] = {}


def support_module(name: str):
    """tests/support/NAME.py, loaded from its file (tests/ is no installed package; the capacity
    endpoint is run from its file the same way)."""
    if name not in _SUPPORT:
        import importlib.util

        path = ROOT / "tests" / "support" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"bench_support_{name}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
        _SUPPORT[name] = module
    return _SUPPORT[name]


_ORDER_IDS: dict[str, list[str]] = {}


def order_ids(path: Path) -> list[str]:
    """The order_id of every RECORD of an input: what identifies an event when it is read back."""
    if str(path) not in _ORDER_IDS:
        ids = []
        with open(path, "rb") as fh:
            for line in fh:
                if line.startswith(b'{"type":"RECORD"'):
                    ids.append(str(json.loads(line)["record"]["order_id"]))
        _ORDER_IDS[str(path)] = ids
    return _ORDER_IDS[str(path)]


@dataclass
class Readback:
    """Every record a stream stored, read back and unpacked into events, against the input."""

    aws_records: int = 0  # records the stream holds
    aggregated: int = 0  # of them, KPL aggregates (kpl) or records of more than one event (lines)
    events: int = 0  # events unpacked from them (user records, lines), duplicates included
    lost: int = 0  # events of the input not read back
    duplicated: int = 0  # events read back more than once (the extra copies)
    unknown: int = 0  # events read back that do not parse or are not in the input
    misplaced: int | None = None  # Kinesis: user records on a shard whose hash range lacks their key
    billed: int = 0  # billing units of the stored records (sizes rounded up per record)
    stored_bytes: int = 0  # data (plus partition keys, Kinesis) of the stored records
    event_bytes: int = 0  # the events' own JSON (unpacked, without partition key or newline)
    seconds: float = 0.0  # how long reading back took
    error: str = ""


def _tally(back: Readback, events: list[bytes], inputs: list[Path]) -> None:
    """Lost, duplicated and unknown events: each event's properties.order_id against the input's."""
    expected = Counter(oid for path in inputs for oid in order_ids(path))
    seen: Counter[str] = Counter()
    for data in events:
        try:
            seen[str(json.loads(data)["properties"]["order_id"])] += 1
        except (ValueError, KeyError, TypeError):
            back.unknown += 1
    back.events = len(events)
    back.event_bytes = sum(len(data.rstrip(b"\n")) for data in events)
    back.lost = sum(n - seen.get(oid, 0) for oid, n in expected.items() if seen.get(oid, 0) < n)
    back.duplicated = sum(n - expected[oid] for oid, n in seen.items() if oid in expected and n > expected[oid])
    back.unknown += sum(n for oid, n in seen.items() if oid not in expected)


def _kinesis_client(url: str):
    """A boto3 Kinesis client on the capacity endpoint (dummy keys; no proxy for 127.0.0.1)."""
    import boto3
    from botocore.config import Config

    for key in ("NO_PROXY", "no_proxy"):
        if "127.0.0.1" not in os.environ.get(key, ""):
            os.environ[key] = ",".join(filter(None, (os.environ.get(key), "127.0.0.1,localhost")))
    return boto3.client(
        "kinesis",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(retries={"max_attempts": 2}, read_timeout=60),
    )


def read_kinesis(client, stream: str) -> list[tuple[str, str, bytes]]:
    """(shard id, partition key, data) of every record of every shard, with GetRecords from
    TRIM_HORIZON, as a consumer reads them."""
    stored: list[tuple[str, str, bytes]] = []
    for shard_id in support_module("kpl_readback").shard_ranges(client, stream):
        iterator = client.get_shard_iterator(StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ]
        while iterator:
            answer = client.get_records(ShardIterator=iterator, Limit=10_000)
            records = answer["Records"]
            stored.extend((shard_id, r["PartitionKey"], r["Data"]) for r in records)
            if not records:  # an open shard read to its end
                break
            iterator = answer.get("NextShardIterator")
    return stored


def read_back(scenario: Scenario, endpoint: Endpoint, inputs: list[Path]) -> Readback:
    """Every record the endpoint stored, unpacked into events as consumers do: Kinesis with
    GetRecords and AWS's deaggregation module (tests/support/kpl_readback.py: aws_kinesis_agg),
    each user record's hash key checked against its shard's range (ListShards); Firehose from
    the endpoint's /__records, each record split on newlines."""
    back = Readback()
    t0 = time.perf_counter()
    unit = BILLING_UNIT_BYTES[scenario.service]
    try:
        if scenario.service == "kinesis":
            readback = support_module("kpl_readback")
            client = _kinesis_client(endpoint.url)
            stored = read_kinesis(client, CAPACITY_STREAM)
            sizes = [len(data) + len(key.encode("utf-8")) for _, key, data in stored]
            back.aggregated = sum(1 for _, _, data in stored if data.startswith(KPL_MAGIC))
            users = readback.deaggregate(stored)
            back.misplaced = len(readback.misplaced(users, readback.shard_ranges(client, CAPACITY_STREAM)))
            events = [user.data for user in users]
        else:
            import base64

            with _NO_PROXY.open(
                f"{endpoint.url}/__records?stream={urllib.parse.quote(CAPACITY_STREAM)}", timeout=120
            ) as resp:
                blobs = [base64.b64decode(r["data"]) for r in json.loads(resp.read())["records"]]
            sizes = [len(blob) for blob in blobs]
            events = []
            for blob in blobs:
                lines = [line for line in blob.split(b"\n") if line]
                back.aggregated += len(lines) > 1
                events.extend(lines)
        back.aws_records = len(sizes)
        back.stored_bytes = sum(sizes)
        back.billed = sum(-(-size // unit) for size in sizes)
        _tally(back, events, inputs)
    except Exception as exc:  # reported in the run's status
        back.error = f"{type(exc).__name__}: {exc}"
        log(f"!!! reading back {scenario.name}: {back.error}")
    back.seconds = time.perf_counter() - t0
    return back


def measure_capacity(
    scenario: Scenario, contender: Contender, inputs: list[Path], records: int, rep: int
) -> CapacityRun:
    """One run: a fresh capacity endpoint, the contender's pipelines against it, its counters."""
    sent = records * len(inputs)
    run = CapacityRun(scenario.name, contender.key, contender.label, sent)
    run.aggregation = contender.config.get("aggregation", "")
    if contender.argv is None:
        run.status, run.detail = "SKIPPED", contender.missing
        return run
    stem = f"capacity-{scenario.name}-{contender.key}-r{rep}"
    endpoint = Endpoint(scenario.endpoint_argv(), "capacity endpoint", f"{stem}.endpoint")
    endpoint.start(quiet=True)
    readback: Readback | None = None
    try:
        cfg = write_config(
            OUT / "capacity" / f"{stem}.json", endpoint.url, scenario.service, CAPACITY_STREAM, contender.config
        )
        argvs = [[*contender.argv, "--config", str(cfg)] for _ in inputs]
        timeout = TIMEOUT_BASE + CAPACITY_TIMEOUT_FACTOR * _nominal_ideal(scenario, inputs, sent)
        ep_cpu0 = endpoint.cpu_seconds()
        spawned = time.monotonic()
        run.wall, children = _run_pipelines(argvs, inputs, stem, timeout)
        run.endpoint_cpu = endpoint.cpu_seconds() - ep_cpu0
        if not endpoint.alive():
            run.status, run.detail = "FAILED", f"the capacity endpoint died (see {endpoint.log_path})"
            return run
        stats = endpoint.stats(CAPACITY_STREAM)
        if scenario.aggregation:
            readback = read_back(scenario, endpoint, inputs)
    finally:
        endpoint.stop()
    if scenario.aggregation:
        run.summary = summary_figures([LOGS / f"{stem}-p{i}.stderr" for i in range(len(inputs))])
        run.readback = readback.__dict__ if readback is not None else None
    _fill_capacity(run, scenario, inputs, stats, spawned)
    _judge_capacity(run, children, stem, timeout)
    if readback is not None and readback.error and run.ok:
        run.status, run.detail = "FAILED", f"reading the stored records back failed: {readback.error}"
    return run


def _fill_capacity(run: CapacityRun, scenario: Scenario, inputs: list[Path], stats: dict, spawned: float) -> None:
    """The endpoint's counters into ``run``; the ideal seconds for what was sent."""
    run.offered = stats.get("offered", 0)
    run.refused = dict(stats.get("refused", {}))
    run.failed_calls = dict(stats.get("failed_calls", {}))
    run.landed = run.aws_landed = stats.get("accepted", 0)
    run.stored_bytes = stats.get("accepted_bytes", 0)
    events = None
    if run.readback is not None and not run.readback.get("error"):
        run.landed = events = run.readback["events"]  # events read back: AWS records may carry many
    first, last = stats.get("first_accept"), stats.get("last_accept")
    if first is not None and last is not None:  # the endpoint's time.monotonic(): the same clock as ours
        run.span = last - first
        run.first_accept = first - spawned
    packed = events if run.aggregation else None
    if scenario.service == "firehose":
        run.ideal = _firehose_ideal(stats, run.sent, packed)
    else:
        run.ideal, run.shards = _kinesis_ideal(scenario, inputs, stats, run.sent, packed)


def _judge_capacity(run: CapacityRun, children: list, stem: str, timeout: float) -> None:
    """Exit codes, CPU and memory of the pipelines; the run's status (worst first)."""
    for i, child in enumerate(children):
        log_path = LOGS / f"{stem}-p{i}.stderr"
        if isinstance(child, OSError):
            run.exits.append(None)
            run.errors.append(f"cannot start: {child}")
            continue
        run.exits.append(child.rc)
        run.cpu += child.rusage.ru_utime + child.rusage.ru_stime
        run.rss_mib = max(run.rss_mib, child.rss_mib)
        if child.timed_out:
            run.status, run.detail = "TIMEOUT", f"killed after {timeout:.0f}s"
        elif child.rc != 0 and run.status != "TIMEOUT":
            run.status, run.detail = "FAILED", f"exit code {child.rc}"
        if child.timed_out or child.rc != 0:
            run.errors.append(_last_error_line(log_path))
            log(f"!!! {run.label} in {run.scenario}: {run.status} {run.detail}; stderr tail ({log_path}):")
            log(_tail(log_path))
    if any(isinstance(c, OSError) for c in children):
        run.status, run.detail = "FAILED", "a pipeline could not start"
    elif run.ok and run.landed != run.sent:
        run.status, run.detail = "MISMATCH", f"endpoint stored {run.landed:,} of {run.sent:,} records"
        print(f"\n*** MISMATCH *** {run.label} in {run.scenario}: {run.detail}\n", file=sys.stderr, flush=True)


def merge_capacity(runs: list[CapacityRun]) -> CapacityRun:
    """The repeats as one: the median run by efficiency over accepts (its figures, all of them),
    the status of the first run that went wrong, and every run's efficiency."""
    good = [r for r in runs if r.ok and r.efficiency_accepts is not None]
    bad = [r for r in runs if not r.ok]
    if good:
        ordered = sorted(good, key=lambda r: r.efficiency_accepts or 0.0)
        chosen = ordered[(len(ordered) - 1) // 2]
    else:
        chosen = runs[0]
    merged = CapacityRun(**{**chosen.__dict__})
    if bad:
        merged.status, merged.detail = bad[0].status, bad[0].detail
        merged.detail += f" ({len(bad)} of {len(runs)} runs)" if len(runs) > 1 else ""
        merged.errors = bad[0].errors
        merged.exits = bad[0].exits
    merged.efficiencies = [r.efficiency_accepts for r in good if r.efficiency_accepts is not None]
    merged.runs = len(runs)
    return merged


def capacity_contenders(target_cmd: str | None, ref: RefTree | None) -> list[Contender]:
    """The target (its argv without --config) and, with --ref, its twin at REV."""
    tk, missing = target_command(target_cmd)
    out = [Contender("tk", "target-kinesis", tk, None, missing)]
    if ref is not None:
        out.append(Contender(ref_key("tk", ref), f"target-kinesis @{ref.short}", [PY, "-c", BOOT, str(ref.path)], None))
    return out


def scenario_inputs(scenario: Scenario, scale: float, seed: int) -> tuple[list[Path], int]:
    """One input per pipeline (seeds seed, seed+1, ...: no two pipelines send the same records)."""
    records = scenario.scaled(scale)
    lean = CAPACITY_LEAN_INPUT
    return [ensure_input(records, seed + i, scenario.hot_share, lean) for i in range(scenario.pipelines)], records


def scenario_contenders(scenario: Scenario, contenders: list[Contender]) -> list[Contender]:
    """An aggregation scenario's contenders: the target with ``aggregation`` first, then the
    others as they are (the target without it, and the --ref twin, also without it: a commit from
    before aggregation would not know the setting)."""
    if not scenario.aggregation:
        return contenders
    tk = contenders[0]
    packed = Contender(
        f"tk-{scenario.aggregation}",
        f"target-kinesis, aggregation {scenario.aggregation}",
        tk.argv,
        None,
        tk.missing,
        config={"aggregation": scenario.aggregation},
    )
    plain = Contender(tk.key, "target-kinesis, no aggregation", tk.argv, None, tk.missing)
    return [packed, plain, *contenders[1:]]


def run_capacity(names: list[str], scale: float, repeat: int, contenders: list[Contender], seed: int) -> dict:
    """Every scenario: its contenders alternating run by run, ``repeat`` times. Returns
    {scenario: {contender key: merged run}}."""
    out: dict[str, dict[str, CapacityRun]] = {}
    all_contenders = contenders
    for name in names:
        scenario = SCENARIOS[name]
        contenders = scenario_contenders(scenario, all_contenders)
        inputs, records = scenario_inputs(scenario, scale, seed)
        reps: dict[str, list[CapacityRun]] = {c.key: [] for c in contenders}
        for rep in range(repeat):
            for c in contenders:
                if c.argv is None and reps[c.key]:
                    continue
                if c.argv is not None:
                    log(f"capacity {name} {rep + 1}/{repeat}: {c.label}, {records * len(inputs):,} records")
                r = measure_capacity(scenario, c, inputs, records, rep)
                if r.status != "SKIPPED":
                    log(
                        f"  wall {r.wall:.2f}s  ideal {r.ideal:.2f}s  efficiency {_fmt(r.efficiency_accepts, '.3f')} "
                        f"(wall {_fmt(r.efficiency_wall, '.3f')})  offered {r.offered:,}  refused {r.refused_total:,}  "
                        f"landed {r.landed:,}/{r.sent:,}  {_fmt(r.bytes_per_record, ',.0f')} bytes/AWS record  "
                        f"{r.status}"
                    )
                    if r.readback is not None:
                        b = r.readback
                        log(
                            f"  read back in {b['seconds']:.1f}s: {b['aws_records']:,} AWS records "
                            f"({b['aggregated']:,} packed), {b['events']:,} events, lost {b['lost']:,}, "
                            f"duplicated {b['duplicated']:,}, unknown {b['unknown']:,}, misplaced "
                            f"{_fmt_int(b['misplaced'])}, billed units {b['billed']:,} (summary: "
                            f"{_fmt_int((r.summary or {}).get('billed'))})" + (f"  {b['error']}" if b["error"] else "")
                        )
                reps[c.key].append(r)
        out[name] = {key: merge_capacity(runs) for key, runs in reps.items()}
    return out


def _refused_text(run: CapacityRun) -> str:
    parts = [f"{THROTTLE_CODES.get(code, code)} {n:,}" for code, n in sorted(run.refused.items())]
    calls = sum(run.failed_calls.values())
    if calls:
        parts.append(f"({calls:,} calls refused whole)")
    return "; ".join(parts) or "0"


def _share_ratio(current: float | None, ref: float | None) -> str:
    """current / ref of two shares, where 0 is a real value ("0.00x" when current is 0)."""
    if current is None or ref is None or ref <= 0:
        return "-"
    return f"{current / ref:.2f}x"


def _exit_text(run: CapacityRun) -> str:
    codes = ", ".join("-" if rc is None else str(rc) for rc in run.exits) or "-"
    errors = "; ".join(_shorten(e.replace("|", "\\|"), 140) for e in run.errors if e)
    return f"{codes}: {errors}" if errors else codes


def capacity_table(results: dict[str, dict[str, CapacityRun]]) -> str:
    """One row per scenario and contender; after a --ref twin, the ratios current / ref."""
    rows: list[list[str]] = []
    for name, runs in results.items():
        for key, r in runs.items():
            if r.status == "SKIPPED":
                rows.append([name, r.label, *["-"] * 15, _status_text(r)])
                continue
            eff = r.efficiency_accepts
            spread = f" ({min(r.efficiencies):.2f}-{max(r.efficiencies):.2f})" if len(r.efficiencies) > 1 else ""
            landed = f"{r.landed:,} / {r.sent:,}" + ("" if r.landed == r.sent else " **MISMATCH**")
            rows.append(
                [
                    name,
                    r.label,
                    f"{r.wall:.2f}",
                    f"{r.ideal:.2f}",
                    _fmt(r.span, ".2f"),
                    _fmt(eff, ".3f") + spread,
                    _fmt(r.efficiency_wall, ".3f"),
                    _fmt(r.first_accept, ".2f"),
                    f"{r.offered:,}",
                    _refused_text(r),
                    "-" if r.refused_share is None else f"{r.refused_share * 100:.1f}%",
                    landed,
                    _fmt(r.bytes_per_record, ",.0f"),
                    f"{r.cpu:.2f}",
                    f"{r.endpoint_cpu:.2f}",
                    f"{r.rss_mib:.1f}",
                    _exit_text(r),
                    _status_text(r),
                ]
            )
            current = runs.get(base_key(key))
            if is_ref(key) and current is not None and current.status != "SKIPPED" and r.status != "SKIPPED":
                rows.append(
                    [
                        name,
                        "**current / ref**",
                        _ratio(current.wall, r.wall),
                        "",
                        "",
                        _ratio(current.efficiency_accepts, eff),
                        _ratio(current.efficiency_wall, r.efficiency_wall),
                        "",
                        _ratio(current.offered, r.offered),
                        "",
                        _share_ratio(current.refused_share, r.refused_share),
                        "",
                        "",
                        _ratio(current.cpu, r.cpu),
                        _ratio(current.endpoint_cpu, r.endpoint_cpu),
                        "",
                        "",
                        "",
                    ]
                )
    header = [
        "scenario",
        "contender",
        "wall s",
        "ideal s",
        "accepts s",
        "efficiency (accepts)",
        "efficiency (wall)",
        "first accept s",
        "offered",
        "refused",
        "refused/offered",
        "landed / sent",
        "bytes / AWS record",
        "CPU s",
        "endpoint CPU s",
        "peak MiB",
        "exit",
        "status",
    ]
    return _md_table(header, rows, "llrrrrrrrlrrrrrrll")


def shards_table(results: dict[str, dict[str, CapacityRun]], name: str) -> str:
    """Per shard of one scenario: records, ideal seconds and last accept, per contender."""
    rows: list[list[str]] = []
    for r in results.get(name, {}).values():
        hot = r.hot_and_cold()
        hot_id = hot[0][0] if hot else None
        for sid, s in r.shards.items():
            rows.append(
                [
                    r.label,
                    sid + (" (hot)" if sid == hot_id else ""),
                    f"{s['records']:,}",
                    f"{s['expected']:,}",
                    f"{s['ideal']:.2f}",
                    _fmt(s["last"], ".2f"),
                ]
            )
    if not rows:
        return "(no shard figures)"
    header = ["contender", "shard", "records", "records sent to it", "ideal s", "last accept s (after the first)"]
    return _md_table(header, rows, "llrrrr")


def capacity_verdicts(results: dict[str, dict[str, CapacityRun]], scale: float) -> dict:
    """The goals of the current target in each scenario that has one (the --ref twin is not judged)."""
    verdicts: dict = {}
    at = "" if scale == 1 else f", at --capacity-scale {scale:g}"
    for name, runs in results.items():
        scenario, r = SCENARIOS[name], runs.get("tk")
        if scenario.aggregation:
            verdicts.update(aggregation_verdicts(scenario, runs.get(f"tk-{scenario.aggregation}"), at))
            continue
        if r is None or r.status == "SKIPPED":
            continue
        goal = f"capacity {name} ({scenario.what}{at})"
        if not r.ok:
            if scenario.min_efficiency is not None or name == "kinesis-hot-key":
                verdicts[goal] = (False, _status_text(r))
            continue
        if scenario.min_efficiency is not None and scenario.max_refused is not None:
            eff, share = r.efficiency_accepts or 0.0, r.refused_share or 0.0
            verdicts[goal] = (
                eff >= scenario.min_efficiency and share <= scenario.max_refused,
                f"efficiency {eff:.3f} over the accepts ({_fmt(r.efficiency_wall, '.3f')} over the wall), "
                f"refused {share * 100:.1f}% of offered "
                f"(goal >= {scenario.min_efficiency:.2f}, <= {scenario.max_refused * 100:.0f}%)",
            )
        elif name == "kinesis-hot-key":
            hot = r.hot_and_cold()
            if hot is None:
                verdicts[goal] = (False, "no per-shard accept times")
                continue
            (hot_id, hot_last), cold_last = hot
            verdicts[goal] = (
                cold_last <= HOT_SHARD_GOAL * hot_last,
                f"cold shards' last accept {cold_last:.2f}s, hot shard {hot_id}'s {hot_last:.2f}s after the first "
                f"accept ({cold_last / hot_last if hot_last > 0 else 0:.2f} of it; goal <= {HOT_SHARD_GOAL:.2f})",
            )
    return verdicts


def _units_per_event(run: CapacityRun) -> tuple[float | None, float | None]:
    """Billed units per event sent: from the target's summary line, and from the stored records."""
    summary = (run.summary or {}).get("billed")
    stored = (run.readback or {}).get("billed") if not (run.readback or {}).get("error") else None

    def per(units: int | None) -> float | None:
        return None if units is None or not run.sent else units / run.sent

    return per(summary), per(stored)


def aggregation_verdicts(scenario: Scenario, r: CapacityRun | None, at: str) -> dict:
    """The goals of the aggregating target in an aggregation scenario, one line each."""
    verdicts: dict = {}
    if r is None or r.status == "SKIPPED":
        return verdicts
    head = f"capacity {scenario.name}, aggregation {scenario.aggregation}{at}"
    back = r.readback if r.readback is not None and not r.readback.get("error") else None
    why = "" if r.ok else f"; run {_status_text(r)}"
    if back is None:
        verdicts[f"{head}"] = (False, _status_text(r) if not r.ok else "no record read back")
        return verdicts
    if scenario.min_events_per_s is not None:
        eps, ceiling = r.events_per_s or 0.0, r.ceiling_events_per_s
        bytes_per_event = back["stored_bytes"] / back["events"] if back["events"] else 0.0
        verdicts[f"{head}: events/s"] = (
            r.ok and eps >= scenario.min_events_per_s,
            f"{eps:,.0f} events/s over the wall ({_fmt(r.events_per_s_accepts, ',.0f')} over the accepts); the "
            f"stream's capacity allows {_fmt(ceiling, ',.0f')} events/s of these ({bytes_per_event:,.0f} bytes an "
            f"event stored, data and key) (goal >= {scenario.min_events_per_s:,.0f}){why}",
        )
    if scenario.max_refused is not None:
        share = r.refused_share or 0.0
        verdicts[f"{head}: refused"] = (
            share <= scenario.max_refused,
            f"{share * 100:.1f}% of {r.offered:,} AWS records offered (goal <= {scenario.max_refused * 100:.0f}%)",
        )
    if scenario.max_units_per_event is not None:
        by_summary, by_stored = _units_per_event(r)
        judged = [v for v in (by_summary, by_stored) if v is not None]
        verdicts[f"{head}: billed units per event"] = (
            bool(judged) and max(judged) <= scenario.max_units_per_event,
            f"{_fmt(by_summary, '.3f')} from the summary's billed_units, {_fmt(by_stored, '.3f')} from the stored "
            f"records' sizes ({BILLING_UNIT_BYTES[scenario.service] // 1024} KB units) "
            f"(goal <= {scenario.max_units_per_event:.2f}, both)",
        )
    verdicts[f"{head}: events lost"] = (
        back["lost"] == 0,
        f"{back['lost']:,} lost of {r.sent:,} ({back['duplicated']:,} duplicated, {back['unknown']:,} unknown; "
        f"{back['events']:,} events read back from {back['aws_records']:,} records) (goal 0 lost)",
    )
    if back.get("misplaced") is not None:
        verdicts[f"{head}: events misplaced"] = (
            back["misplaced"] == 0,
            f"{back['misplaced']:,} user records on a shard whose hash range lacks their key (goal 0)",
        )
    return verdicts


def aggregation_table(results: dict[str, dict[str, CapacityRun]]) -> str:
    """The aggregation scenarios: per contender what was sent, packed, billed and read back; after
    the contender without aggregation, the ratios packed / not packed."""
    rows: list[list[str]] = []
    for name, runs in results.items():
        scenario = SCENARIOS[name]
        if not scenario.aggregation:
            continue
        for key, r in runs.items():
            if r.status == "SKIPPED":
                rows.append([name, r.label, *["-"] * 17, _status_text(r)])
                continue
            back = r.readback if r.readback is not None and not r.readback.get("error") else None
            aws = r.aws_landed
            summary = r.summary or {}
            by_summary, by_stored = _units_per_event(r)
            rows.append(
                [
                    name,
                    r.label,
                    f"{r.wall:.2f}",
                    _fmt(r.events_per_s, ",.0f"),
                    _fmt(r.events_per_s_accepts, ",.0f"),
                    _fmt(r.ceiling_events_per_s, ",.0f"),
                    _fmt(r.efficiency_accepts, ".3f"),
                    _fmt_int(aws),
                    _fmt(back["events"] / back["aws_records"] if back and back["aws_records"] else None, ",.1f"),
                    _fmt(back["stored_bytes"] / back["events"] if back and back["events"] else None, ",.0f"),
                    "-" if r.refused_share is None else f"{r.refused_share * 100:.1f}% of {r.offered:,}",
                    _fmt_int(summary.get("billed")),
                    _fmt_int(back["billed"] if back else None),
                    f"{_fmt(by_summary, '.3f')} / {_fmt(by_stored, '.3f')}",
                    _fmt_int(back["events"] if back else None),
                    _fmt_int(back["lost"] if back else None),
                    _fmt_int(back["duplicated"] if back else None),
                    _fmt_int(back.get("misplaced") if back else None),
                    _fmt_int(back["unknown"] if back else None),
                    _status_text(r),
                ]
            )
            packed = runs.get(f"tk-{scenario.aggregation}")
            if key == "tk" and packed is not None and packed.status != "SKIPPED" and r.status != "SKIPPED":
                p_units, r_units = _units_per_event(packed), _units_per_event(r)
                rows.append(
                    [
                        name,
                        f"**{scenario.aggregation} / none**",
                        _ratio(packed.wall, r.wall),
                        _ratio(packed.events_per_s, r.events_per_s),
                        _ratio(packed.events_per_s_accepts, r.events_per_s_accepts),
                        _ratio(packed.ceiling_events_per_s, r.ceiling_events_per_s),
                        "",
                        _ratio(packed.aws_landed, r.aws_landed),
                        "",
                        "",
                        _share_ratio(packed.refused_share, r.refused_share),
                        _ratio((packed.summary or {}).get("billed"), (r.summary or {}).get("billed")),
                        _ratio((packed.readback or {}).get("billed"), (r.readback or {}).get("billed")),
                        f"{_ratio(p_units[0], r_units[0])} / {_ratio(p_units[1], r_units[1])}",
                        *[""] * 6,
                    ]
                )
    header = [
        "scenario",
        "contender",
        "wall s",
        "events/s (wall)",
        "events/s (accepts)",
        "capacity events/s",
        "efficiency (accepts)",
        "AWS records",
        "events / record",
        "bytes / event",
        "refused / offered",
        "billed units (summary)",
        "billed units (stored)",
        "units / event (summary / stored)",
        "events read back",
        "lost",
        "duplicated",
        "misplaced",
        "unknown",
        "status",
    ]
    return _md_table(header, rows, "llrrrrrrrrrrrrrrrrrl")


def event_bytes_text(name: str, runs: dict[str, CapacityRun]) -> str | None:
    """The mean size of an event on the wire in one scenario, from the current target without
    aggregation (key ``tk``), one AWS record an event: what the endpoint stored / records stored."""
    r = runs.get("tk")
    if r is None or r.status == "SKIPPED" or r.bytes_per_record is None:
        return None
    scenario = SCENARIOS[name]
    what = "data and partition key" if scenario.service == "kinesis" else "data: the event JSON and its newline"
    back = r.readback if r.readback is not None and not r.readback.get("error") else None
    json_bytes = f", the event JSON {back['event_bytes'] / back['events']:,.1f}" if back and back["events"] else ""
    return f"`{name}`: event bytes (mean, on the wire): {r.bytes_per_record:,.1f} ({what}{json_bytes})"


def capacity_section(results: dict[str, dict[str, CapacityRun]], scale: float, repeat: int) -> str:
    out = [capacity_table(results), ""]
    sizes = [text for name, runs in results.items() if (text := event_bytes_text(name, runs))]
    if sizes:
        out += [
            "Event size, from the target without aggregation (one AWS record an event; "
            f"{'lean' if CAPACITY_LEAN_INPUT else 'full'} orders, generate.py"
            f"{' --lean' if CAPACITY_LEAN_INPUT else ''}):",
            "",
            *[f"- {text}" for text in sizes],
            "",
        ]
    out.append(
        "*ideal s*: what the stream's capacity allows for what was sent: Kinesis, the busiest shard's "
        "records / 1,000 a second (or its bytes / 1 MiB a second, if more), times 1 / the share left by the "
        "other producer; Firehose, the bytes the endpoint counts (event JSON and newline) / the stream's bytes "
        "a second. *accepts s*: the endpoint's first to last accepted record. *efficiency (accepts)* = ideal / "
        "accepts s; *efficiency (wall)* = ideal / wall s (spawn to exit of the last process: start-up included). "
        "*first accept s*: from the spawn. *offered*: records the endpoint judged (refused ones again each time "
        "they are retried); *refused/offered*: refused records / offered. *landed / sent*: records the endpoint "
        "stored / records in the input(s). *bytes / AWS record*: what the endpoint stored (Kinesis: data and "
        "partition keys; Firehose: data) / AWS records stored. *CPU s*: user + sys of the target process(es). "
        + (
            f"Figures of the median run of {repeat} by efficiency (accepts); the range of that efficiency in brackets. "
            if repeat > 1
            else ""
        )
        + "*current / ref*: ratio of the column (efficiency: above 1 is better; refused/offered and CPU: below 1)."
        + (f" Record counts scaled by {scale:g}." if scale != 1 else "")
    )
    if any(SCENARIOS[name].aggregation for name in results):
        out += [
            "",
            "**Aggregation**",
            "",
            aggregation_table(results),
            "",
            "Every record the stream stored is read back after the run: Kinesis with GetRecords and AWS's "
            "deaggregation module (`aws_kinesis_agg`, tests/support/kpl_readback.py), Firehose from the endpoint "
            "(`/__records`) split on newlines; each event is found by its `properties.order_id` in the input. "
            "*events/s* = events that reached the stream (sent - lost) / wall s (spawn to exit) or / accepts s. "
            "*capacity events/s* = events / ideal s: what the stream's limits allow for these records (Kinesis: "
            "1,000 AWS records and 1 MiB of data and keys a second a shard; Firehose: its bytes a second). "
            "*AWS records*: records the endpoint stored; *bytes / event*: their data (and partition keys, "
            "Kinesis) / events. *refused / offered*: AWS records. *billed units*: Kinesis 25 KB PUT payload "
            "units, Firehose 5 KB units, each record rounded up: from the target's summary line (`billed_units=`) "
            "and computed from the stored records' sizes; *units / event* = units / events sent. *lost*: events of "
            "the input not read back; *duplicated*: extra copies; *misplaced*: user records read from a shard whose "
            "hash-key range does not hold their partition key's MD5 (the KCL drops them); *unknown*: events that "
            "do not parse or are not in the input. In the Capacity table *landed / sent* counts events read back "
            "for these scenarios. *X / none*: ratio of the column, with / without aggregation.",
        ]
    if "kinesis-hot-key" in results:
        out += [
            "",
            "**kinesis-hot-key, per shard**",
            "",
            shards_table(results, "kinesis-hot-key"),
            "",
            "*records sent to it*: records of the input whose userId hashes to the shard. *last accept s*: "
            "seconds from the stream's first accept to the shard's last. The cold shards finish well before the "
            "hot one when the hot shard's backlog does not hold them back.",
        ]
    return "\n".join(out)


# --------------------------------------------------------------------------------------
# profiling
# --------------------------------------------------------------------------------------


def _spy_summary(raw: Path, top: int = 25) -> str:
    """Top functions by self and inclusive samples from py-spy's collapsed stacks.

    Recorded with --subprocesses: target-kinesis's mapping processes are forks of it (their
    stacks run `_worker_main`) and are reported apart from the main process.
    """
    groups: dict[str, tuple[Counter[str], Counter[str]]] = {}
    per_process: Counter[str] = Counter()
    mapping_processes: set[str] = set()
    stacks: list[tuple[str, list[str], int]] = []
    with open(raw, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = stack.split(";")
            process = "process ?"
            while frames and frames[0].startswith("process "):  # parent;child;...: the last is ours
                process = frames[0].split(":", 1)[0]
                frames = frames[1:]
            if frames and frames[0].startswith("thread "):
                frames = frames[1:]
            if not frames:
                continue
            names = [re.sub(r":\d+\)$", ")", f) for f in frames]
            if any(name.startswith(("_worker_main", "worker_main")) for name in names):
                mapping_processes.add(process)
            stacks.append((process, names, n))
            per_process[process] += n
    total = sum(per_process.values())
    if not total:
        return "(no samples)"
    for process, names, n in stacks:
        group = "mapping processes" if process in mapping_processes else "main process"
        self_c, incl = groups.setdefault(group, (Counter(), Counter()))
        self_c[names[-1]] += n
        for name in set(names):
            incl[name] += n
    lines = [
        f"{total:,} py-spy samples (--gil --subprocesses: in each process, whichever thread held its "
        "GIL, i.e. where Python time goes).",
        "",
        "| process | samples | share |",
        "|---|---:|---:|",
    ]
    for process, n in per_process.most_common():
        role = "mapping" if process in mapping_processes else "main"
        lines.append(f"| {process} ({role}) | {n:,} | {n / total * 100:.1f}% |")
    for group in ("main process", "mapping processes"):
        if group not in groups:
            continue
        self_c, incl = groups[group]
        group_total = sum(self_c.values())
        lines += ["", f"### {group}: {group_total:,} samples", "", "| self % | function |", "|---:|---|"]
        lines += [f"| {c / group_total * 100:.1f} | `{name}` |" for name, c in self_c.most_common(top)]
        lines += ["", "| inclusive % | function |", "|---:|---|"]
        lines += [f"| {c / group_total * 100:.1f} | `{name}` |" for name, c in incl.most_common(top)]
    return "\n".join(lines)


def _pstats_summary(path: Path, top: int = 25) -> str:
    st = pstats.Stats(str(path))
    entries = st.stats  # type: ignore[attr-defined]
    total = getattr(st, "total_tt", 0) or sum(v[2] for v in entries.values()) or 1.0

    def name(k: tuple) -> str:
        file, line, func = k
        short = re.sub(r"^.*(site-packages|lib/python3\.\d+)/", "", file)
        short = short.replace(str(ROOT) + "/", "")
        return f"{func} ({short}:{line})"

    by_self = sorted(entries.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    by_cum = sorted(entries.items(), key=lambda kv: kv[1][3], reverse=True)[:top]
    lines = [
        f"{total:.2f}s sampled on the main thread (pyinstrument; worker threads not included).",
        "",
        "| self s | self % | function |",
        "|---:|---:|---|",
    ]
    lines += [f"| {v[2]:.2f} | {v[2] / total * 100:.1f} | `{name(k)}` |" for k, v in by_self]
    lines += ["", "| cumulative s | function |", "|---:|---|"]
    lines += [f"| {v[3]:.2f} | `{name(k)}` |" for k, v in by_cum]
    return "\n".join(lines)


def profile(args: argparse.Namespace) -> int:
    input_path = ensure_input(args.records, args.seed)
    endpoint = Endpoint(null_endpoint_argv(args.null_shards))
    endpoint.start()
    try:
        contenders = build_contenders(endpoint, args.target_cmd)
        contender = contenders[args.profile_contender]
        if contender.argv is None:
            log(f"SKIPPED profile of {contender.label}: {contender.missing}")
            return 2
        profiler = args.profiler
        if profiler == "auto":
            has_spy = (BIN / "py-spy").exists() or shutil.which("py-spy")
            profiler = "py-spy" if has_spy else "pyinstrument"
        stem = f"profile-{contender.key}-{args.records}"
        argv = list(contender.argv)
        # run python scripts / console scripts through the profiler
        script_argv = argv[1:] if argv[0] == PY else argv
        if profiler == "py-spy":
            spy = str(BIN / "py-spy") if (BIN / "py-spy").exists() else "py-spy"
            raw = OUT / f"{stem}.collapsed.txt"
            cmd = [
                spy,
                "record",
                "--rate",
                "250",
                "--format",
                "raw",
                "--nolineno",
                "--gil",
                "--subprocesses",
                "--output",
                str(raw),
                "--",
                *argv,
            ]
        elif profiler == "pyinstrument":
            pyi = str(BIN / "pyinstrument") if (BIN / "pyinstrument").exists() else "pyinstrument"
            session = OUT / f"{stem}.pyisession"
            cmd = [pyi, "-r", "pyisession", "-o", str(session), *script_argv]
        else:
            raise SystemExit(f"unknown profiler {profiler}")
        log(f"profiling {contender.label} with {profiler} on {args.records:,} records")
        timeout = timeout_for(args.records, args.min_rate, factor=3.0)
        child = run_child(cmd, input_path, stem, timeout, child_env())
        rc, wall, timed_out = child.rc, child.wall, child.timed_out
        counts = endpoint.counts()
        if timed_out or rc != 0:
            log(f"profile run failed (rc={rc}, timeout={timed_out}):\n{_tail(LOGS / (stem + '.stderr'))}")
            return 1
        header = [
            f"## Profile: {contender.label}, {args.records:,} records ({profiler})",
            "",
            f"- date: {machine_info()['date']}; wall under profiler {wall:.2f}s "
            f"({args.records / wall:,.0f} records/s, profiler overhead included)",
            f"- endpoint received: kinesis {counts.get('kinesis_records', 0):,}, "
            f"firehose {counts.get('firehose_records', 0):,}",
        ]
        if profiler == "py-spy":
            header.append(f"- collapsed stacks: `{raw.relative_to(ROOT)}` (open in speedscope.app, or flamegraph.pl)")
            body = _spy_summary(raw)
        else:
            text = OUT / f"{stem}.txt"
            pst = OUT / f"{stem}.pstats"
            html = OUT / f"{stem}.html"
            for renderer, dest, extra in (
                (
                    "text",
                    text,
                    ["--no-color", "--show", "*/target_kinesis/*", "-p", "processor_options.filter_threshold=0.01"],
                ),
                ("pstats", pst, []),
                ("html", html, []),
            ):
                subprocess.run(
                    [pyi, "--load", str(session), "-r", renderer, "-o", str(dest), *extra],
                    check=True,
                    timeout=300,
                    stdin=subprocess.DEVNULL,
                )
            header.append(f"- call tree: `{text.relative_to(ROOT)}`, `{html.relative_to(ROOT)}`")
            tree = "\n".join(text.read_text().splitlines()[:60])
            body = (
                _pstats_summary(pst)
                + "\n\nCall tree (library frames hidden, target_kinesis frames shown):\n\n```\n"
                + tree
                + "\n```"
            )
        report = "\n".join(header) + "\n\n" + body + "\n"
        (OUT / "PROFILE.md").write_text(report)
        print(report)
        if args.write_results:
            (BENCH / "PROFILE.md").write_text("# target-kinesis profile\n\n" + report)
            log("wrote bench/PROFILE.md")
        else:
            log(f"wrote {OUT.relative_to(ROOT) / 'PROFILE.md'} (--write-results: bench/PROFILE.md)")
        return 0
    finally:
        endpoint.stop()


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def _parse_sizes(text: str) -> list[int]:
    if not text.strip():
        return []
    return sorted({int(float(s)) for s in text.replace("_", "").split(",") if s.strip()})


STREAM_TIMEOUT_S = 0.1  # --streams: timeout added per stream, on top of timeout_for(records)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="target-kinesis benchmark", formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--records",
        type=int,
        default=None,
        help="records for the side-by-side comparison (default 100000;\nwith --streams it runs only when given)",
    )
    parser.add_argument(
        "--sizes", default="10000,100000,1000000", help="input sizes for the linearity/memory check ('' to skip)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per contender and size; the median wall time is reported"
    )
    parser.add_argument(
        "--contenders",
        default="tk-kinesis,tk-firehose,baseline,null-target",
        help="comma list of: tk-kinesis, tk-kinesis-kpl (aggregation kpl), tk-kinesis-serial (no mapping\n"
        "processes), tk-firehose, baseline, baseline-firehose, null-target",
    )
    parser.add_argument(
        "--linearity-contenders", default="tk-kinesis", help="contenders run at every --sizes (default tk-kinesis)"
    )
    parser.add_argument("--no-startup", action="store_true", help="skip the 0-record startup runs (no 'net' figures)")
    parser.add_argument("--target-cmd", help="command for target-kinesis (default: target-kinesis next to this python)")
    parser.add_argument(
        "--ref",
        metavar="REV",
        help="also run tk-kinesis / tk-firehose / tk-kinesis-serial as they are at git revision REV\n"
        "(tree extracted to bench/out/ref-SHA/), alternating with the others; report side by side",
    )
    parser.add_argument(
        "--streams",
        type=int,
        default=0,
        metavar="N",
        help="also measure the target contenders on N streams, each with its own schema\n"
        "(SCHEMA then its records, stream after stream): the cost of opening a stream",
    )
    parser.add_argument(
        "--streams-records", type=int, default=1, metavar="K", help="records per stream with --streams (default 1)"
    )
    parser.add_argument(
        "--capacity",
        nargs="?",
        const="all",
        metavar="SCENARIO,...",
        help="also run the capacity scenarios (default: all) against tests/support/capacity_endpoint.py,\n"
        "a fresh one per run: the target (and its --ref twin) writing to streams that refuse\n"
        "beyond AWS's limits; scenarios:\n" + ", ".join(SCENARIOS),
    )
    parser.add_argument(
        "--capacity-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="multiply the record counts of the capacity scenarios by F (e.g. 0.25 for a quick check)",
    )
    parser.add_argument(
        "--null-shards",
        type=int,
        default=NULL_SHARDS,
        metavar="N",
        help=f"open shards of the null endpoint's streams (default {NULL_SHARDS}): the target paces each\n"
        "shard at 1,000 records/s, so N x 1,000 records/s must stay above what it can send",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--min-rate",
        type=float,
        default=1000.0,
        help="timeout per run = TIMEOUT_BASE + records / MIN_RATE (default 1000/s)",
    )
    parser.add_argument(
        "--timeout-base", type=float, default=60.0, help="fixed part of every run's timeout (default 60s)"
    )
    parser.add_argument(
        "--write-results", action="store_true", help="write bench/RESULTS.md (or bench/PROFILE.md with --profile)"
    )
    parser.add_argument("--profile", action="store_true", help="profile one contender instead of benchmarking")
    parser.add_argument("--profile-contender", default="tk-kinesis")
    parser.add_argument("--profiler", default="auto", choices=["auto", "py-spy", "pyinstrument"])
    return parser


@dataclass
class Plan:
    """Which contenders run in which part of the benchmark (--ref twins included)."""

    main: list[str]  # side by side at --records ([] when not run)
    linearity: list[str]  # at every --sizes
    streams: list[str]  # on the --streams input
    sizes: list[int]
    ref: RefTree | None
    capacity: list[str] = field(default_factory=list)  # --capacity scenarios

    @property
    def every(self) -> list[str]:
        return list(dict.fromkeys(self.main + self.linearity + self.streams))


def _plan(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Plan:
    known = {
        "tk-kinesis",
        "tk-kinesis-kpl",
        "tk-kinesis-serial",
        "tk-firehose",
        "baseline",
        "baseline-firehose",
        "null-target",
    }
    contender_keys = [c.strip() for c in args.contenders.split(",") if c.strip()]
    lin_keys = [c.strip() for c in args.linearity_contenders.split(",") if c.strip()]
    for key in [*contender_keys, *lin_keys, args.profile_contender]:
        if key not in known:
            parser.error(f"unknown contender {key!r}; known: {', '.join(sorted(known))}")
    try:
        capacity = parse_scenarios(args.capacity) if args.capacity is not None else []
    except ValueError as exc:
        parser.error(f"--capacity: {exc}")
    if args.capacity_scale <= 0 or args.null_shards < 1:
        parser.error("--capacity-scale must be > 0 and --null-shards >= 1")
    run_main = args.records is not None or not (args.streams or capacity)
    if args.records is None:
        args.records = 100_000
    if args.records < 1 or args.repeat < 1:
        parser.error("--records and --repeat must be >= 1")
    if args.streams < 0 or args.streams_records < 0:
        parser.error("--streams and --streams-records must be >= 0")
    stream_keys = [key for key in contender_keys if key in REF_BASES] if args.streams else []
    if args.streams and not stream_keys:
        parser.error(f"--streams runs the target contenders: put {' or '.join(REF_BASES)} in --contenders")
    if args.profile and (args.ref or args.streams or capacity):
        parser.error("--ref, --streams and --capacity do not apply to --profile")
    try:
        sizes = _parse_sizes(args.sizes)
    except ValueError:
        parser.error(f"bad --sizes {args.sizes!r}")
    OUT.mkdir(parents=True, exist_ok=True)
    ref = extract_ref(args.ref) if args.ref and not args.profile else None
    return Plan(
        with_refs(contender_keys, ref) if run_main else [],
        with_refs(lin_keys, ref) if sizes else [],
        with_refs(stream_keys, ref),
        sizes,
        ref,
        capacity,
    )


@dataclass
class Measured:
    startup: dict[str, float] = field(default_factory=dict)
    startup_cpu: dict[str, float] = field(default_factory=dict)
    main: dict[str, Run] = field(default_factory=dict)
    by_size: dict[str, list[Run]] = field(default_factory=dict)
    streams: dict[str, Run] = field(default_factory=dict)
    all_runs: list[Run] = field(default_factory=list)  # main and linearity (not --streams)
    labels: dict[str, str] = field(default_factory=dict)
    capacity: dict[str, dict[str, CapacityRun]] = field(default_factory=dict)  # scenario -> contender -> run


def _run_linearity(bench: Bench, plan: Plan, main_runs: dict[str, Run], args: argparse.Namespace) -> dict:
    """Every --linearity-contenders at every size; contenders alternate run by run."""
    by_size: dict[str, list[Run]] = {}
    runnable = []
    for key in plan.linearity:
        c = bench.contenders[key]
        by_size[key] = []
        if c.argv is None:
            by_size[key].append(Run(key, c.label, 0, "SKIPPED", detail=c.missing))
        else:
            runnable.append(key)
    for size in plan.sizes:
        todo = [key for key in runnable if not (size == args.records and key in main_runs)]
        runs = run_alternating(bench, todo, ensure_input(size, args.seed), size, "linearity") if todo else {}
        for key in runnable:
            by_size[key].append(runs.get(key) or main_runs[key])
    return by_size


def _measure_all(args: argparse.Namespace, plan: Plan) -> Measured:
    m = Measured()
    if plan.every:
        _measure_null(args, plan, m)
    if plan.capacity:
        contenders = capacity_contenders(args.target_cmd, plan.ref)
        for c in contenders:
            if c.argv is None:
                log(f"SKIPPING {c.label} in the capacity scenarios: {c.missing}")
        m.capacity = run_capacity(plan.capacity, args.capacity_scale, args.repeat, contenders, args.seed)
    return m


def _measure_null(args: argparse.Namespace, plan: Plan, m: Measured) -> None:
    """The parts run against the null endpoint: start-up, --records, --sizes, --streams."""
    endpoint = Endpoint(null_endpoint_argv(args.null_shards))
    endpoint.start()
    try:
        contenders = build_contenders(endpoint, args.target_cmd, plan.ref)
        bench = Bench(contenders, endpoint, child_env(), args.repeat, args.min_rate)
        m.labels = {k: c.label for k, c in contenders.items()}
        for key in plan.every:
            if contenders[key].argv is None:
                log(f"SKIPPING {contenders[key].label}: {contenders[key].missing}")
        # startup cost: the same contenders on a 0-record input (SCHEMA + STATE only)
        if not args.no_startup:
            m.startup, m.startup_cpu = measure_startup(bench, plan.every, args.seed)
        if plan.main:
            m.main = run_alternating(bench, plan.main, ensure_input(args.records, args.seed), args.records, "run")
            m.all_runs.extend(m.main.values())
        m.by_size = _run_linearity(bench, plan, m.main, args)
        seen = {id(r) for r in m.all_runs}  # a size equal to --records reuses the main run
        m.all_runs.extend(r for runs in m.by_size.values() for r in runs if id(r) not in seen and r.status != "SKIPPED")
        if plan.streams:
            m.streams = run_alternating(
                bench,
                plan.streams,
                ensure_streams_input(args.streams, args.streams_records, args.seed),
                args.streams * args.streams_records,
                f"streams ({args.streams:,})",
                tag=f"-streams{args.streams}",
                extra_timeout=args.streams * STREAM_TIMEOUT_S,
            )
    finally:
        endpoint.stop()


def _report(args: argparse.Namespace, plan: Plan, m: Measured) -> tuple[str, dict]:
    """The markdown report and the goals' verdicts."""
    verdicts: dict = {}
    what = [f"{args.records:,} records"] if plan.main else []
    what += [f"{args.streams:,} streams"] if plan.streams else []
    what += ["capacity scenarios"] if plan.capacity else []
    out = [f"## Results ({', '.join(what) or 'linearity'}, repeat {args.repeat})", ""]
    if plan.ref:
        ref = plan.ref
        out += [
            f"Ref: `{ref.rev}` = {ref.short} ({_shorten(ref.subject)}), extracted to `{ref.path.relative_to(ROOT)}/`, "
            f"run through its own console script entry `{ref.entry}` with this interpreter's packages. "
            f"Contenders marked @{ref.short} are it; they alternate run by run with the current ones.",
            "",
        ]
    if plan.main:
        meta = input_meta(ensure_input(args.records, args.seed))
        ratios, verdicts = ratios_section(m.main, m.startup)
        out += [
            f"Input: {meta['bytes'] / 2**20:.1f} MiB, "
            f"{meta['avg_record_line_bytes']:.0f} bytes per RECORD line, "
            f"stream `orders`, seed {args.seed}. Endpoint: bench/null_endpoint.py "
            f"(separate process; no limits: a {args.null_shards}-shard stream, whose ListShards the target paces "
            f"by). Each contender runs alone, one after the other.",
            "",
            results_table(list(m.main.values()), m.startup),
            "",
            "*records/s* = records / wall time of the child process, start to exit. "
            "*net records/s* = records / (wall - startup), startup measured on a 0-record "
            "input. CPU comes from `wait4` on the child (its mapping processes included: it waits "
            "for them). *peak RSS MiB* is the child's peak RSS, or, when larger, the peak of the "
            "PSS summed over its whole process tree (target-kinesis forks mapping processes; PSS "
            "counts the pages they share once), sampled 4 times a second. *other CPU s*: CPU used during "
            "the run by processes other than the child and the endpoint (noise; should be ~0).",
            "",
        ]
    if plan.every:
        out += ["### Startup", "", startup_table(m.startup, m.startup_cpu, m.labels) if m.startup else "(skipped)", ""]
    if plan.main:
        out += ["### Ratios", "", ratios, ""]
    if plan.ref and (plan.main or plan.sizes):
        pairs = [(key, ref_key(key, plan.ref)) for key in REF_BASES]
        out += [
            f"### Current vs `{plan.ref.rev}` ({plan.ref.short})",
            "",
            ref_section(m.all_runs, pairs, m.startup),
            "",
            "Medians of the --repeat runs (peak MiB: median of the runs' peaks). *ratio* = current / ref: "
            "above 1 for records/s, below 1 for CPU µs/rec and peak MiB, means the current code is better. "
            "*net of startup*: records/s ratio with each one's start-up taken off.",
            "",
        ]
    verdicts.update(memory_verdicts(m.all_runs))
    if plan.sizes:
        linearity, lin_verdicts = linearity_section(m.by_size, m.startup, m.startup_cpu)
        verdicts.update(lin_verdicts)
        out += ["### Linearity and memory across sizes", "", linearity, ""]
    if plan.streams:
        meta = input_meta(ensure_streams_input(args.streams, args.streams_records, args.seed))
        out += [
            f"### Many streams: {args.streams:,} streams, {args.streams_records:,} "
            f"record{'s' if args.streams_records != 1 else ''} each",
            "",
            f"Input: {meta['bytes'] / 2**20:.1f} MiB; {args.streams:,} streams (`table_00000`...), each with its "
            "own schema of 6 to 10 properties (integer key, string, date-time, nullable string, number, boolean, "
            "then some of: integer, nullable number, enum, array, object), a SCHEMA then its records, stream after "
            "stream, and a final STATE bookmarking every stream.",
            "",
            streams_section(m.streams, args.streams, m.startup, m.startup_cpu),
            "",
            "*ms/stream (net)* = (wall or CPU of the run - the same contender's 0-record start-up) / streams: what "
            "one more stream costs, its SCHEMA (checks, validator, sink) and its records. *peak MiB*: median of "
            "the runs' peaks (RSS, or PSS of the process tree when larger). The endpoint must receive "
            "streams x records, else MISMATCH."
            + (" *current / ref*: ratios of the columns above (below 1: current is cheaper)." if plan.ref else ""),
            "",
        ]
    if plan.capacity:
        out += [
            f"### Capacity: {len(plan.capacity)} scenario{'s' if len(plan.capacity) != 1 else ''}"
            f"{'' if args.capacity_scale == 1 else f', record counts x {args.capacity_scale:g}'}",
            "",
            "Each run against a fresh tests/support/capacity_endpoint.py (separate process): per-shard token buckets "
            "of 1,000 records and 1 MiB a second, ProvisionedThroughputExceededException per refused record; "
            'Firehose: the stream\'s bytes a second, ServiceUnavailableException "Slow down.". Scenarios: '
            + "; ".join(
                f"`{name}` {SCENARIOS[name].scaled(args.capacity_scale) * SCENARIOS[name].pipelines:,} records, "
                f"{SCENARIOS[name].what}"
                for name in plan.capacity
            )
            + "."
            + (
                " Input: lean orders (generate.py --lean: each order's header and first item), ~456-byte events "
                "on the wire, the size the goals are stated for."
                if CAPACITY_LEAN_INPUT
                else ""
            ),
            "",
            capacity_section(m.capacity, args.capacity_scale, args.repeat),
            "",
        ]
        verdicts.update(capacity_verdicts(m.capacity, args.capacity_scale))
    if plan.main or plan.sizes or plan.capacity:  # the goals are about --records, --sizes and --capacity
        out += ["### Goals", "", goals_section(verdicts)]
    return "\n".join(out), verdicts


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    global TIMEOUT_BASE
    TIMEOUT_BASE = args.timeout_base
    plan = _plan(args, parser)
    compile_bytecode(ROOT / "target_kinesis")
    if args.profile:
        return profile(args)

    started = time.time()
    m = _measure_all(args, plan)
    info = machine_info()
    report, verdicts = _report(args, plan, m)
    every_run = [*m.all_runs, *m.streams.values()]
    capacity_runs = [r for runs in m.capacity.values() for r in runs.values()]
    mismatches = [r for r in every_run if r.status == "MISMATCH"]

    cmdline = "python bench/run.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    print(report)
    if mismatches:
        print("\n" + "!" * 72)
        for r in mismatches:
            print(f"MISMATCH: {r.label} at {r.records:,} records: {r.detail}")
        print("!" * 72)
    for r in capacity_runs:
        if r.status == "MISMATCH":
            print(f"\nMISMATCH: {r.label} in capacity scenario {r.scenario}: {r.detail}")

    def _raw(runs: list[Run]) -> list[dict]:
        return [{**dict(r.__dict__.items()), "rps": r.rps, "cpu": r.cpu} for r in runs]

    raw = {
        "machine": info,
        "args": vars(args),
        "ref": None if plan.ref is None else {**plan.ref.__dict__, "path": str(plan.ref.path)},
        "startup": m.startup,
        "startup_cpu": m.startup_cpu,
        "runs": _raw(m.all_runs),
        "streams": {
            "streams": args.streams,
            "records_per_stream": args.streams_records,
            "runs": _raw(list(m.streams.values())),
        },
        "capacity": {
            "scale": args.capacity_scale,
            "runs": [
                {**r.__dict__, "efficiency_accepts": r.efficiency_accepts, "efficiency_wall": r.efficiency_wall}
                for r in capacity_runs
            ],
        },
        "verdicts": {k: {"pass": ok, "value": text} for k, (ok, text) in verdicts.items()},
    }
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    (OUT / f"results-{stamp}.json").write_text(json.dumps(raw, indent=2, default=str))
    if args.write_results:
        machine = (
            f"- date: {info['date']}\n"
            f"- machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory']} RAM, "
            f"{info['platform']}\n"
            f"- python {info['python']}; "
            + ", ".join(f"{k} {v}" for k, v in info["versions"].items())
            + f"\n- command: `{cmdline}`\n"
        )
        (BENCH / "RESULTS.md").write_text("# target-kinesis benchmark results\n\n" + machine + "\n" + report + "\n")
        log("wrote bench/RESULTS.md")
    log(f"raw results: {(OUT / f'results-{stamp}.json').relative_to(ROOT)}")
    failed = [r for r in [*every_run, *capacity_runs] if r.status in ("FAILED", "TIMEOUT", "MISMATCH")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
