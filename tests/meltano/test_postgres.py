"""A real database in the pipeline: PostgreSQL -> meltanolabs tap-postgres -> target-kinesis -> Kinesis.

A module fixture starts a PostgreSQL of the machine's own binaries on 127.0.0.1
(tests/support/postgres.py) and builds a Meltano project with exactly the commands of the
README's walkthrough "From PostgreSQL to Kinesis with Meltano": `meltano init`, the
extractor tap-postgres (variant meltanolabs, from PyPI, in its own plugin venv) and the loader
target-kinesis (this checkout, `pip_url: -e <repo>`) added from definition files, `meltano
config set`, `meltano select`, one `meltano install`. The test then runs
`meltano run tap-postgres target-kinesis` twice against moto's Kinesis, with incremental
replication on `updated_at`, and judges each run by every record the stream holds and the
state Meltano stored:

* `users` -> identify events whose `traits.email` is the hex SHA-256 of the trimmed,
  lower-cased address (`hash_fields`), the clear address nowhere in the stream;
* `orders` -> track "Order Completed", `total` (numeric(12,2)) exact, `items` (jsonb) as
  JSON arrays;
* after 10 updates and 5 inserts the second run sends those 15 rows, plus one row per
  table that tap-postgres reads again because its bookmark is inclusive (see the second
  half of the test).

Time, warm (Meltano built, uv's cache filled), on a shared 2-CPU machine: 70-100 s for the
module. Building the project is about half of it (19 meltano commands at 1-2.5 s each, Meltano's
start-up, and one `meltano install` of ~11 s); each `meltano run` takes 10-15 s; PostgreSQL's
initdb and start take about a second.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.meltano.test_meltano import _meltano
from tests.support.meltano import ensure_meltano, meltano_env
from tests.support.postgres import LocalPostgres
from tests.support.readback import KinesisRecord, create_kinesis_stream, read_kinesis, unique_name
from tests.support.servers import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, LocalServer, boto_client

REPO_ROOT = Path(__file__).resolve().parents[2]
TAP_DEFINITION = Path(__file__).resolve().parent / "plugins" / "tap-postgres.yml"
# The loader definition users add with --from-ref (issue 21); until it exists, the loader
# block of the repo's meltano.yml (the same settings) is written to a file and added the same way.
LOADER_DEFINITION = REPO_ROOT / "plugin" / "target-kinesis.yml"
STATE_ID = "dev:tap-postgres-to-target-kinesis"
DATABASE = "shop"
READER = "shop_reader"

USERS_STREAM = "public-users"  # tap-postgres names streams <schema>-<table>
ORDERS_STREAM = "public-orders"
EVENTS = {
    USERS_STREAM: {"type": "identify", "user_id_field": "id"},
    ORDERS_STREAM: {"type": "track", "event": "Order Completed", "user_id_field": "user_id"},
}

# tap-postgres 0.10.0 declares every json/jsonb column `{"type": ["object", "null"]}`, also one
# holding arrays, and the target validates records against the schema. Meltano's `schema`
# extra replaces the column's schema with what it holds (Meltano replaces, it does not merge).
ITEMS_SCHEMA = {"type": ["array", "null"], "items": {"type": "object"}}

# Incremental replication on updated_at, per stream: Meltano's `metadata` extra (one command
# for both streams; `_metadata.<stream>.<key>` sets one key at a time, a meltano run of ~2 s each).
INCREMENTAL = {"replication-method": "INCREMENTAL", "replication-key": "updated_at"}

SCHEMA_SQL = """
CREATE TABLE users (
    id integer PRIMARY KEY,
    email text NOT NULL,
    name text NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE TABLE orders (
    id integer PRIMARY KEY,
    user_id integer NOT NULL REFERENCES users (id),
    total numeric(12, 2) NOT NULL,
    items jsonb NOT NULL,
    updated_at timestamptz NOT NULL
);
"""

T0 = dt.datetime(2024, 5, 1, 9, 0, 0, tzinfo=dt.timezone.utc)


def _at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


# Emails with the case and spaces people type: hash_fields trims and lower-cases first.
USERS: dict[int, dict[str, Any]] = {
    1: {"email": "  Ada.Lovelace@Example.COM ", "name": "Ada Lovelace", "updated_at": _at(1)},
    2: {"email": "grace.hopper@example.com", "name": "Grace Hopper", "updated_at": _at(2)},
    3: {"email": "Alan.Turing@Example.org", "name": "Alan Turing", "updated_at": _at(3)},
    4: {"email": "\tkatherine.johnson@example.net\n", "name": "Katherine Johnson", "updated_at": _at(4)},
    5: {"email": "EDSGER@EXAMPLE.NL", "name": "Edsger Dijkstra", "updated_at": _at(5)},
    6: {"email": "barbara.liskov@example.com", "name": "Barbara Liskov", "updated_at": _at(6)},
    7: {"email": "donald.knuth@example.com", "name": "Donald Knuth", "updated_at": _at(7)},
    8: {"email": "Frances.Allen@Example.com", "name": "Frances Allen", "updated_at": _at(8)},  # bookmark row
}


def _item(sku: str, qty: int, price: str) -> dict[str, Any]:
    return {"sku": sku, "qty": qty, "price": Decimal(price)}


# Totals a double cannot hold exactly (19.99, 0.10, 1234567890.12) and item lists of every size.
ORDERS: dict[int, dict[str, Any]] = {
    101: {"user_id": 1, "total": "19.99", "items": [_item("SKU-1", 1, "19.99")], "updated_at": _at(11)},
    102: {"user_id": 2, "total": "0.10", "items": [_item("SKU-2", 2, "0.05")], "updated_at": _at(12)},
    103: {"user_id": 3, "total": "1234567890.12", "items": [_item("SKU-3", 1, "1234567890.12")], "updated_at": _at(13)},
    104: {"user_id": 1, "total": "100.00", "items": [], "updated_at": _at(14)},
    105: {
        "user_id": 4,
        "total": "45.30",
        "items": [_item("SKU-4", 3, "10.10"), _item("SKU-5", 1, "15.00")],
        "updated_at": _at(15),
    },
    106: {"user_id": 5, "total": "0.01", "items": [_item("SKU-6", 1, "0.01")], "updated_at": _at(16)},
    107: {"user_id": 6, "total": "9999999999.99", "items": [_item("SKU-7", 1, "9999999999.99")], "updated_at": _at(17)},
    108: {"user_id": 7, "total": "33.33", "items": [_item("SKU-8", 3, "11.11")], "updated_at": _at(18)},  # bookmark row
}

# Between the runs: 10 updates (users 1-5, orders 101-105) and 5 inserts (users 9-10, orders
# 109-111), all with updated_at later than every bookmark. Users 8 and order 108 keep theirs.
USER_UPDATES = {
    1: {"email": "ADA@analytical-engine.example ", "name": "Ada King", "updated_at": _at(60)},
    2: {"email": "grace@navy.example", "name": "Grace Hopper", "updated_at": _at(61)},
    3: {"email": "Alan.Turing@Example.org", "name": "A. M. Turing", "updated_at": _at(62)},
    4: {"email": "kj@nasa.example", "name": "Katherine Johnson", "updated_at": _at(63)},
    5: {"email": " ewd@utexas.example", "name": "E. W. Dijkstra", "updated_at": _at(64)},
}
USER_INSERTS = {
    9: {"email": "Margaret.Hamilton@Example.com", "name": "Margaret Hamilton", "updated_at": _at(65)},
    10: {"email": "john.backus@example.com", "name": "John Backus", "updated_at": _at(66)},
}
ORDER_UPDATES = {
    101: {"user_id": 1, "total": "39.98", "items": [_item("SKU-1", 2, "19.99")], "updated_at": _at(70)},
    102: {"user_id": 2, "total": "0.00", "items": [], "updated_at": _at(71)},
    103: {"user_id": 3, "total": "1234567890.13", "items": [_item("SKU-3", 1, "1234567890.13")], "updated_at": _at(72)},
    104: {"user_id": 1, "total": "100.01", "items": [_item("SKU-9", 1, "100.01")], "updated_at": _at(73)},
    105: {"user_id": 4, "total": "45.30", "items": [_item("SKU-4", 3, "10.10")], "updated_at": _at(74)},
}
ORDER_INSERTS = {
    109: {"user_id": 9, "total": "19.99", "items": [_item("SKU-1", 1, "19.99")], "updated_at": _at(75)},
    110: {"user_id": 10, "total": "0.30", "items": [_item("SKU-2", 3, "0.10")], "updated_at": _at(76)},
    111: {"user_id": 9, "total": "7.77", "items": [_item("SKU-7", 7, "1.11")], "updated_at": _at(77)},
}


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _items_sql(items: list[dict[str, Any]]) -> str:
    # Prices as JSON numbers with the digits given (json.dumps of a Decimal would quote them).
    parts = [f'{{"sku":{json.dumps(i["sku"])},"qty":{i["qty"]},"price":{i["price"]}}}' for i in items]
    return _sql_text("[" + ",".join(parts) + "]") + "::jsonb"


def _upsert_users(rows: dict[int, dict[str, Any]]) -> str:
    values = ",\n".join(
        f"({uid}, {_sql_text(r['email'])}, {_sql_text(r['name'])}, '{r['updated_at'].isoformat()}')"
        for uid, r in rows.items()
    )
    return (
        f"INSERT INTO users (id, email, name, updated_at) VALUES\n{values}\nON CONFLICT (id) DO UPDATE SET"
        " email = EXCLUDED.email, name = EXCLUDED.name, updated_at = EXCLUDED.updated_at;\n"
    )


def _upsert_orders(rows: dict[int, dict[str, Any]]) -> str:
    values = ",\n".join(
        f"({oid}, {r['user_id']}, {r['total']}, {_items_sql(r['items'])}, '{r['updated_at'].isoformat()}')"
        for oid, r in rows.items()
    )
    return (
        f"INSERT INTO orders (id, user_id, total, items, updated_at) VALUES\n{values}\nON CONFLICT (id) DO UPDATE SET"
        " user_id = EXCLUDED.user_id, total = EXCLUDED.total, items = EXCLUDED.items,"
        " updated_at = EXCLUDED.updated_at;\n"
    )


# -- the Meltano project --------------------------------------------------------------


PROJECT_NAME = "shop-to-kinesis"


def walkthrough_commands(values: Mapping[str, str]) -> list[list[str]]:
    """The meltano commands that build the project, in order: exactly the README's walkthrough
    ("From PostgreSQL to Kinesis with Meltano"; test_readme_walkthrough_is_what_the_test_runs)."""
    v = values
    tap = ["config", "set", "tap-postgres"]
    target = ["config", "set", "target-kinesis"]
    return [
        ["init", PROJECT_NAME, "--no-usage-stats"],
        ["add", "--plugin-type", "extractor", "--from-ref", v["tap_definition"], "tap-postgres", "--no-install"],
        ["add", "--plugin-type", "loader", "--from-ref", v["loader_definition"], "target-kinesis", "--no-install"],
        [*tap, "host", v["host"]],
        [*tap, "port", v["port"]],
        [*tap, "user", v["user"]],
        [*tap, "database", v["database"]],
        [*tap, "filter_schemas", '["public"]'],
        [*tap, "json_as_object", "true"],
        [*tap, "_schema", json.dumps({ORDERS_STREAM: {"items": ITEMS_SCHEMA}})],
        ["select", "tap-postgres", USERS_STREAM, "*"],
        ["select", "tap-postgres", ORDERS_STREAM, "*"],
        [*tap, "_metadata", json.dumps(dict.fromkeys((USERS_STREAM, ORDERS_STREAM), INCREMENTAL))],
        [*target, "stream_name", v["stream_name"]],
        [*target, "region", v["region"]],
        [*target, "endpoint_url", v["endpoint_url"]],  # a local endpoint (moto) only
        [*target, "max_concurrent_requests", "1"],  # moto's server: one writer per stream
        [*target, "events", json.dumps(EVENTS)],
        [*target, "hash_fields", '["traits.email"]'],
        ["install"],
    ]


# What the README's walkthrough writes where the test has values of its own.
README_VALUES = {
    "tap_definition": "$REPO/tests/meltano/plugins/tap-postgres.yml",
    "loader_definition": "$REPO/plugin/target-kinesis.yml",
    "host": "127.0.0.1",
    "port": "5432",
    "user": "shop_reader",
    "database": "shop",
    "stream_name": "shop-events",
    "region": "eu-west-1",
    "endpoint_url": "http://127.0.0.1:4567",
}
README_SECTION = "## From PostgreSQL to Kinesis with Meltano"


def _readme_meltano_commands() -> list[list[str]]:
    """Every `meltano ...` line of the README walkthrough's code blocks, split like a shell."""
    text = (REPO_ROOT / "README.md").read_text()
    assert README_SECTION in text, f"README.md has no section {README_SECTION!r}"
    section = text.split(README_SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    lines = [line for block in blocks for line in block.splitlines()]
    return [shlex.split(line, comments=True)[1:] for line in lines if line.startswith("meltano ")]


def test_readme_walkthrough_is_what_the_test_runs() -> None:
    commands = _readme_meltano_commands()
    build = walkthrough_commands(README_VALUES)
    assert commands[: len(build)] == build
    assert commands[len(build) :] == [
        ["run", "tap-postgres", "target-kinesis"],
        ["state", "get", STATE_ID],
    ]


@dataclass
class Pipeline:
    meltano: Path
    project: Path
    env: dict[str, str]  # for `meltano run` / `state get`: 127.0.0.1 only
    kinesis: Any
    stream: str
    postgres: LocalPostgres
    commands: list[list[str]]  # every meltano command run to build the project, in order


def _loader_definition(root: Path) -> Path:
    """The loader definition file for --from-ref, installing this checkout (`-e <repo>`)."""
    if LOADER_DEFINITION.exists():
        definition = yaml.safe_load(LOADER_DEFINITION.read_text())
    else:
        project = yaml.safe_load((REPO_ROOT / "meltano.yml").read_text())
        (definition,) = [p for p in project["plugins"]["loaders"] if p["name"] == "target-kinesis"]
        definition.pop("config", None)  # the tap-jsonl example's mapping
    definition["pip_url"] = f"-e {REPO_ROOT}"
    path = root / "target-kinesis.yml"
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def pipeline(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: LocalPostgres, moto_server: LocalServer
) -> Pipeline:
    pg = postgres_server
    pg.psql(f"CREATE DATABASE {DATABASE};", single_transaction=False)
    reader_password = secrets.token_hex(12)
    # The tap reads as a role that may only SELECT the two tables, as the README sets it up.
    grants = f"CREATE ROLE {READER} LOGIN PASSWORD '{reader_password}';\nGRANT SELECT ON users, orders TO {READER};\n"
    pg.psql(SCHEMA_SQL + grants + _upsert_users(USERS) + _upsert_orders(ORDERS), database=DATABASE)

    kinesis = boto_client("kinesis", moto_server.url)
    stream = unique_name("pg-events")
    create_kinesis_stream(kinesis, stream, shards=2)

    meltano = ensure_meltano()
    root = tmp_path_factory.mktemp("pg-meltano")
    loader_file = _loader_definition(root)
    commands = walkthrough_commands(
        {
            "tap_definition": str(TAP_DEFINITION),
            "loader_definition": str(loader_file),
            "host": pg.host,
            "port": str(pg.port),
            "user": READER,
            "database": DATABASE,
            "stream_name": stream,
            "region": REGION,
            "endpoint_url": moto_server.url,
        }
    )
    project = root / PROJECT_NAME
    for args in commands:
        _meltano(meltano, root if args[0] == "init" else project, *args, env=meltano_env())
    # Secrets only from the environment, never in meltano.yml.
    env = meltano_env(
        {
            "TAP_POSTGRES_PASSWORD": reader_password,
            "TARGET_KINESIS_AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "TARGET_KINESIS_AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        },
        keep_proxies=False,  # the runs talk to 127.0.0.1 only
    )
    return Pipeline(meltano, project, env, kinesis, stream, pg, commands)


def _stored_state(p: Pipeline) -> dict[str, Any]:
    out = _meltano(p.meltano, p.project, "state", "get", STATE_ID, env=p.env)
    return json.loads(out.strip().splitlines()[-1])


# -- what must land -------------------------------------------------------------------


def _sha256(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _iso(moment: dt.datetime) -> str:
    """updated_at as tap-postgres writes a timestamptz (and the event's timestamp keeps it)."""
    return moment.isoformat(timespec="microseconds")


def _check_identify(record: KinesisRecord, uid: int, row: dict[str, Any]) -> dict[str, Any]:
    event = json.loads(record.data)
    assert set(event) == {"type", "userId", "messageId", "timestamp", "sentAt", "context", "traits"}, event
    assert event["type"] == "identify"
    assert event["userId"] == str(uid)
    assert event["timestamp"] == _iso(row["updated_at"])
    assert event["traits"] == {
        "id": uid,
        "email": _sha256(row["email"]),
        "name": row["name"],
        "updated_at": _iso(row["updated_at"]),
    }
    assert re.fullmatch(r"[0-9a-f]{64}", event["traits"]["email"])
    assert event["context"]["library"]["name"] == "target-kinesis"
    assert record.partition_key == str(uid)
    return event


def _check_order(record: KinesisRecord, oid: int, row: dict[str, Any]) -> dict[str, Any]:
    event = json.loads(record.data, parse_float=Decimal)
    assert set(event) == {"type", "event", "userId", "messageId", "timestamp", "sentAt", "context", "properties"}
    assert event["type"] == "track"
    assert event["event"] == "Order Completed"
    assert event["userId"] == str(row["user_id"])
    assert event["timestamp"] == _iso(row["updated_at"])
    properties = event["properties"]
    assert set(properties) == {"id", "user_id", "total", "items", "updated_at"}
    assert properties["id"] == oid
    assert properties["user_id"] == row["user_id"]
    # Exact: the JSON text holds the column's digits, read as a decimal (no float on the way).
    assert properties["total"] == Decimal(row["total"])
    assert isinstance(properties["items"], list)
    assert properties["items"] == row["items"]  # prices compared as Decimals too
    assert properties["updated_at"] == _iso(row["updated_at"])
    assert record.partition_key == str(row["user_id"])
    return event


def _identify(records: list[KinesisRecord]) -> tuple[dict[int, KinesisRecord], dict[int, KinesisRecord]]:
    """Records by user id and by order id; each id at most once."""
    users: dict[int, KinesisRecord] = {}
    orders: dict[int, KinesisRecord] = {}
    for record in records:
        event = json.loads(record.data)
        target, key = (
            (users, event["traits"]["id"]) if event["type"] == "identify" else (orders, event["properties"]["id"])
        )
        assert key not in target, f"id {key} sent twice in one run"
        target[key] = record
    return users, orders


def _check_no_clear_email(records: list[KinesisRecord], emails: list[str]) -> None:
    for record in records:
        text = record.data.decode().lower()
        for email in emails:
            assert email.strip().lower() not in text, record.data


def _bookmarks(state: dict[str, Any]) -> dict[str, Any]:
    return {
        name: (value["replication_key"], value["replication_key_value"])
        for name, value in state["singer_state"]["bookmarks"].items()
    }


@pytest.mark.e2e
@pytest.mark.slow
def test_postgres_to_kinesis_incremental(pipeline: Pipeline) -> None:
    p = pipeline
    all_emails = [r["email"] for r in (*USERS.values(), *USER_UPDATES.values(), *USER_INSERTS.values())]

    # -- first run: every row of both tables, once
    log = _meltano(p.meltano, p.project, "--log-level=debug", "run", "tap-postgres", "target-kinesis", env=p.env)
    assert f"Running job with name '{STATE_ID}'" in log
    assert "No state was found" in log
    first = read_kinesis(p.kinesis, p.stream)
    users, orders = _identify(first)
    assert sorted(users) == sorted(USERS)
    assert sorted(orders) == sorted(ORDERS)
    first_events = {}
    first_data = {("u", uid): r.data for uid, r in users.items()} | {("o", oid): r.data for oid, r in orders.items()}
    for uid, record in users.items():
        first_events[("u", uid)] = _check_identify(record, uid, USERS[uid])
    for oid, record in orders.items():
        first_events[("o", oid)] = _check_order(record, oid, ORDERS[oid])
    assert b'"total":19.99,' in orders[101].data  # the digits as stored, not 19.990000000000002
    assert b'"total":1234567890.12,' in orders[103].data
    _check_no_clear_email(first, all_emails)
    assert _bookmarks(_stored_state(p)) == {
        USERS_STREAM: ("updated_at", _iso(USERS[8]["updated_at"])),
        ORDERS_STREAM: ("updated_at", _iso(ORDERS[108]["updated_at"])),
    }

    # -- 10 updates and 5 inserts, then the second run
    p.postgres.psql(
        _upsert_users({**USER_UPDATES, **USER_INSERTS}) + _upsert_orders({**ORDER_UPDATES, **ORDER_INSERTS}),
        database=DATABASE,
    )
    log = _meltano(p.meltano, p.project, "--log-level=debug", "run", "tap-postgres", "target-kinesis", env=p.env)
    invocation = next(line for line in log.splitlines() if "Invoking:" in line and "tap-postgres'" in line)
    assert "'--state'" in invocation, invocation
    seen = {(r.shard_id, r.sequence_number) for r in first}
    second = [r for r in read_kinesis(p.kinesis, p.stream) if (r.shard_id, r.sequence_number) not in seen]

    # What tap-postgres 0.10.0 reads on an incremental run: `WHERE updated_at >= <bookmark>`
    # (the SDK's inclusive bookmark: a row written later in the same microsecond as the
    # bookmark row is not lost). So besides the 15 changed rows, the row that set each
    # stream's bookmark (user 8, order 108: unchanged) is read and sent again: 17 events.
    # They are identical to the first run's apart from sentAt; the default messageId
    # (content) is the same for the same row content, so consumers can drop them.
    users, orders = _identify(second)
    assert sorted(users) == sorted([*USER_UPDATES, *USER_INSERTS, 8])
    assert sorted(orders) == sorted([*ORDER_UPDATES, *ORDER_INSERTS, 108])
    assert len(second) == 15 + 2
    now_users = {**USERS, **USER_UPDATES, **USER_INSERTS}
    now_orders = {**ORDERS, **ORDER_UPDATES, **ORDER_INSERTS}
    for uid, record in users.items():
        event = _check_identify(record, uid, now_users[uid])
        if uid in USER_UPDATES:
            assert event["messageId"] != first_events[("u", uid)]["messageId"]  # new content, new id
    for oid, record in orders.items():
        event = _check_order(record, oid, now_orders[oid])
        if oid in ORDER_UPDATES:
            assert event["messageId"] != first_events[("o", oid)]["messageId"]
    for key, record in ((("u", 8), users[8]), (("o", 108), orders[108])):
        again, before = json.loads(record.data), json.loads(first_data[key])
        assert {k: v for k, v in again.items() if k != "sentAt"} == {k: v for k, v in before.items() if k != "sentAt"}
    assert b'"total":19.99,' in orders[109].data
    _check_no_clear_email(second, all_emails)
    assert _bookmarks(_stored_state(p)) == {
        USERS_STREAM: ("updated_at", _iso(USER_INSERTS[10]["updated_at"])),
        ORDERS_STREAM: ("updated_at", _iso(ORDER_INSERTS[111]["updated_at"])),
    }


@pytest.mark.e2e
@pytest.mark.slow
def test_tap_definition_matches_the_installed_tap(pipeline: Pipeline) -> None:
    """tests/meltano/plugins/tap-postgres.yml says what the pinned tap declares: every
    capability (Meltano passes --state and --catalog only to a tap that has them) and, for each
    setting it lists, the tap's own description and whether it is secret."""
    executable = pipeline.project / ".meltano" / "extractors" / "tap-postgres" / "venv" / "bin" / "tap-postgres"
    done = subprocess.run(
        [str(executable), "--about", "--format=json"], capture_output=True, text=True, timeout=120, check=True
    )
    about = json.loads(done.stdout)
    definition = yaml.safe_load(TAP_DEFINITION.read_text())
    assert definition["pip_url"] == f"meltanolabs-tap-postgres=={about['version']}"
    assert sorted(definition["capabilities"]) == sorted(about["capabilities"])
    properties = about["settings"]["properties"]
    for setting in definition["settings"]:
        declared = properties[setting["name"]]
        assert setting["description"] == declared["description"], setting["name"]
        assert bool(setting.get("sensitive")) == bool(declared.get("secret")), setting["name"]
        if "value" in setting:
            assert setting["value"] == declared["default"], setting["name"]
