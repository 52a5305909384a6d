"""The Meltano try-out: `meltano run tap-jsonl target-kinesis` with this repo's meltano.yml,
against a local Kinesis endpoint, nothing in a real AWS account.

1. finds Meltano 4.4.1 in `.cache/meltano-venv` (built there on first use, about a minute;
   Meltano is kept out of the project's venv, see tests/support/meltano.py);
2. copies meltano.yml, plugins/ (the loader definition) and sample_data/ into a scratch project (`$TMPDIR/target-kinesis-meltano-demo-*`)
   whose loader installs this checkout, and runs `meltano install` there (uv, cached in `.cache/uv`);
3. starts moto's server on 127.0.0.1 (a free port; MELTANO_DEMO_PORT to choose one) and creates
   the Kinesis stream `demo-events`, the one meltano.yml's `dev` environment names;
4. runs `meltano run tap-jsonl target-kinesis` with the endpoint and dummy credentials given as
   TARGET_KINESIS_* env vars, as meltano.yml's comment shows, and prints the target's summary;
5. prints the state Meltano stored (`meltano state get`) and what landed (`target-kinesis-tail`);
6. stops the endpoint and removes the scratch project, also after a failure, Ctrl-C or SIGTERM.

`max_concurrent_requests` is 1: moto's server loses acknowledged records when one stream is
written over several connections at once (kinesalite does not).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
from local_aws import DemoError, banner, free_port, moto_server, run_main

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.support.meltano import ensure_meltano, meltano_env  # noqa: E402

BIN = Path(sys.executable).parent
STREAM = "demo-events"  # meltano.yml, environment dev
STATE_ID = "dev:tap-jsonl-to-target-kinesis"
REGION = "us-east-1"
DUMMY_KEY = "demo"  # moto checks no credentials, botocore still wants some
TIMEOUT_S = 900


def make_project(workdir: Path) -> Path:
    """meltano.yml and sample_data/ in a scratch folder; the loader installs this checkout."""
    project = workdir / "project"
    project.mkdir()
    text, count = re.subn(r"(?m)^(\s*pip_url:\s*)-e \.\s*$", rf"\g<1>-e {ROOT}", (ROOT / "meltano.yml").read_text())
    if count != 1:
        raise DemoError("meltano.yml: expected exactly one `pip_url: -e .` (the target-kinesis loader)")
    (project / "meltano.yml").write_text(text)
    shutil.copytree(ROOT / "sample_data", project / "sample_data")
    shutil.copytree(ROOT / "plugins", project / "plugins")  # the loader's definition (lock file)
    return project


def meltano(executable: Path, project: Path, *args: str, env: dict[str, str], log: Path) -> str:
    """Run meltano in `project` with its output in `log`; return the output, or fail with its tail."""
    with log.open("w") as out:
        done = subprocess.run(
            [str(executable), *args],
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=TIMEOUT_S,
            check=False,
        )
    output = log.read_text(errors="replace")
    if done.returncode != 0:
        tail = "\n".join(output.splitlines()[-40:])
        raise DemoError(f"`meltano {' '.join(args)}` exited {done.returncode}:\n{tail}")
    return output


def create_stream(url: str) -> None:
    kinesis = boto3.Session(region_name=REGION, aws_access_key_id=DUMMY_KEY, aws_secret_access_key=DUMMY_KEY).client(
        "kinesis", endpoint_url=url
    )
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=STREAM, WaiterConfig={"Delay": 0.2})
    print(f"created kinesis stream {STREAM} (1 shard)")


def run_demo(workdir: Path) -> int:
    banner("Meltano 4.4.1 from .cache/meltano-venv (built on first use)")
    executable = ensure_meltano()
    print(executable)

    banner("meltano install   (in a scratch copy of this project; plugin venvs built with uv)")
    project = make_project(workdir)
    # Meltano's and uv's own temporary files (uv keeps lock files there) go into the scratch folder too.
    (workdir / "tmp").mkdir()
    own_tmp = {"TMPDIR": str(workdir / "tmp")}
    meltano(executable, project, "install", env=meltano_env(own_tmp), log=workdir / "install.log")
    print("installed extractor tap-jsonl and loader target-kinesis (-e this checkout)")

    port = int(os.environ.get("MELTANO_DEMO_PORT") or free_port())
    banner(f"starting a local Kinesis endpoint (moto) on http://127.0.0.1:{port}")
    with moto_server(port, workdir / "endpoint.log") as url:
        create_stream(url)
        settings = {
            "TARGET_KINESIS_ENDPOINT_URL": url,
            "TARGET_KINESIS_AWS_ACCESS_KEY_ID": DUMMY_KEY,
            "TARGET_KINESIS_AWS_SECRET_ACCESS_KEY": DUMMY_KEY,
            "TARGET_KINESIS_MAX_CONCURRENT_REQUESTS": "1",  # moto: one connection per stream
        }
        env = meltano_env({**settings, **own_tmp}, keep_proxies=False)  # the run talks to 127.0.0.1 only

        banner("meltano run tap-jsonl target-kinesis")
        for name, value in settings.items():
            print(f"  {name}={value}")
        output = meltano(executable, project, "run", "tap-jsonl", "target-kinesis", env=env, log=workdir / "run.log")
        for line in output.splitlines():
            found = re.search(r"\b((?:summary|capacity) \S+: .*?)(?:\s+cmd_type=|$)", line)
            if found and "target-kinesis" in line:
                print("  log:", found.group(1))

        banner(f"meltano state get {STATE_ID}")
        state = subprocess.run(
            [str(executable), "state", "get", STATE_ID],
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        if state.returncode != 0:
            raise DemoError(f"`meltano state get` exited {state.returncode}:\n{state.stderr[-3000:]}")
        print(state.stdout.strip())

        banner(f"target-kinesis-tail --stream {STREAM}   (what landed)")
        tail_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "AWS_ACCESS_KEY_ID": DUMMY_KEY,
            "AWS_SECRET_ACCESS_KEY": DUMMY_KEY,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        tail = subprocess.run(
            [str(BIN / "target-kinesis-tail"), "--endpoint-url", url, "--region", REGION, "--stream", STREAM],
            env=tail_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        if tail.returncode != 0:
            raise DemoError(f"target-kinesis-tail exited {tail.returncode}: {tail.stderr.strip()}")
        events = tail.stdout.splitlines()
        print("\n".join(events))
        print(f"-- {len(events)} events read back from kinesis stream {STREAM}")
    return 0


def main() -> int:
    return run_main(
        "meltano demo",
        "target-kinesis-meltano-demo-",
        run_demo,
        cleaned="the endpoint is stopped and the scratch project removed",
    )


if __name__ == "__main__":
    sys.exit(main())
