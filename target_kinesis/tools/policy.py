"""`target-kinesis-policy`: the least-privilege IAM documents for one target config.

Kept one module above the ~450-line mark on purpose: it does one job (the documents for one
config, and the command that prints them), and 70 of its lines are this docstring,
which says what is granted and why next to the code that grants it.

    target-kinesis-policy --config config.json [--account-id ID] [--trusted-principal ARN]
                          [--describe] [--kms-key-arn [STREAM=]KEY ...]
                          [--permissions-only | --trust-only] [--redrive]

prints ``{"permissions_policy": {...}, "trust_policy": {...}}`` (or only one document, ready
for ``aws iam create-policy --policy-document file://-`` / ``aws iam create-role
--assume-role-policy-document``). Notes for the operator go to stderr.

What is granted, and why (exactly the calls ``aws/kinesis.py``, ``aws/firehose.py`` and ``run/start.py`` make):

* Kinesis destination: ``kinesis:PutRecords`` (the only write call, ``KinesisService.put``),
  ``kinesis:ListShards`` (the shard map the target paces itself by, read at start-up and after a
  reshard), and ``kinesis:DescribeStreamSummary`` when ``preflight_check`` is on (the default), on
  ``arn:{partition}:kinesis:{region}:{account}:stream/{name}``. ``kinesis:PutRecord`` (the
  single-record API) is *not* granted: the target never calls it, and PutRecords is
  authorised by its own action.
* Firehose destination: ``firehose:PutRecordBatch`` and (preflight)
  ``firehose:DescribeDeliveryStream`` on ``arn:{partition}:firehose:{region}:{account}:
  deliverystream/{name}``.
* KMS, for a Kinesis stream encrypted with a customer managed key (found with
  ``--describe``, which calls DescribeStreamSummary / DescribeDeliveryStream with the
  config's credentials and endpoint, or given with ``--kms-key-arn``):
  ``kms:GenerateDataKey`` on the key, limited with the condition
  ``kms:EncryptionContext:aws:kinesis:arn`` to the streams that use it (Kinesis passes the
  stream ARN as encryption context on every KMS call it makes for a producer).
* Dead letters in S3 (``dead_letter_path: s3://bucket/prefix/``): ``s3:PutObject`` on
  ``arn:{partition}:s3:::bucket/prefix*``, the only S3 call the target makes
  (``aws/s3.py``'s ``put_object``; no ListBucket, no read). Object ARNs carry no region or
  account. A file path for ``dead_letter_path`` adds nothing. ``--redrive``: for whoever runs
  ``target-kinesis-redrive`` on that prefix, also ``s3:GetObject`` and ``s3:DeleteObject`` on
  it and ``s3:ListBucket`` on the bucket, limited to the prefix with the ``s3:prefix``
  condition (the redrive lists, reads, and deletes a source once all of it is acknowledged).

Assumptions, from the AWS documentation (Kinesis Data Streams developer guide, "Permissions
to use user-generated KMS keys"; KMS developer guide, "Use aliases to control access to KMS
keys"; Firehose API reference, DeliveryStreamEncryptionConfigurationInput):

* Producers need ``kms:GenerateDataKey`` on a user-generated key; "the use of the default
  service key for encryption does not require application of custom IAM permissions". So a
  stream encrypted with the AWS managed key ``alias/aws/kinesis`` gets no KMS statement
  (a grant on ``arn:aws:kms:{region}:{account}:alias/aws/kinesis`` would be useless anyway:
  an alias ARN in ``Resource`` applies to the alias, never to the key behind it).
* A key known only by an alias (``alias/name`` or its ARN) is granted as
  ``key/*`` restricted by ``kms:ResourceAliases``, the documented way to name a key by
  alias in an IAM policy.
* Firehose server-side encryption needs nothing from the writer: Firehose uses the key
  through a grant it creates for itself, so encrypted delivery streams add no KMS statement.

The account in the stream ARNs is ``--account-id``; else, with ``--describe``, the account
the described streams' ARNs share; else the account of role_arn
(``arn:aws:iam::ACCOUNT:role/NAME``: the streams are taken to be in the role's account, and a
note on stderr says so); else the placeholder ``{account-id}``.

The trust policy lets ``--trusted-principal`` (default: the placeholder
``arn:aws:iam::{trusted-account-id}:root``, the account that runs the target) call
``sts:AssumeRole``, with ``"Condition": {"StringEquals": {"sts:ExternalId": ...}}`` when the
config sets external_id. A config with role_arn but no external_id gets a warning on stderr
(the documents are printed all the same): a role that another account may assume needs the
ExternalId condition against the confused-deputy problem, which is why Segment's delegated
set-up requires one. external_id is a secret setting: it appears in the trust document
(its purpose) and nowhere else, never in notes or errors. The principal that runs the
target also needs ``sts:AssumeRole`` on role_arn in its own policy; that is the caller's
side and not part of these documents.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from target_kinesis.aws.batch_api import StreamInfo
from target_kinesis.aws.clients import AwsClients
from target_kinesis.aws.errors import AwsCallFailed, AwsError, explain
from target_kinesis.aws.s3 import S3Location
from target_kinesis.aws.services import SERVICES, describe_stream
from target_kinesis.config.destinations import Destination
from target_kinesis.config.settings import Settings
from target_kinesis.errors import TargetKinesisError
from target_kinesis.tools.cli import CONFIG_HELP, ToolError, ToolParser, read_config, settings_of

PROG = "target-kinesis-policy"
POLICY_VERSION = "2012-10-17"
ACCOUNT_PLACEHOLDER = "{account-id}"
TRUSTED_PRINCIPAL_PLACEHOLDER = "arn:aws:iam::{trusted-account-id}:root"
AWS_MANAGED_KINESIS_KEY = "alias/aws/kinesis"
KINESIS_CONTEXT_KEY = "kms:EncryptionContext:aws:kinesis:arn"
_ACCOUNT_ID = re.compile(r"\d{12}")
_ARN = re.compile(r"arn:(?P<partition>[^:]+):(?P<service>[^:]+):(?P<region>[^:]*):(?P<account>[^:]*):(?P<resource>.+)")

#: The ARN resource part of each service's stream.
_RESOURCE_TYPES = {"kinesis": "stream", "firehose": "deliverystream"}
_STATEMENT_IDS = {"kinesis": "KinesisWrite", "firehose": "FirehoseWrite"}


# -- pure parts -------------------------------------------------------------------------


def partition_for(region: str) -> str:
    """`aws`, `aws-cn`, `aws-us-gov`... for a region; `aws` when botocore does not know it."""
    import boto3

    try:
        return boto3.Session().get_partition_for_region(region)
    except Exception:
        return "aws"


def stream_arn(destination: Destination, region: str, account: str, partition: str = "aws") -> str:
    resource_type = _RESOURCE_TYPES[destination.service]
    return f"arn:{partition}:{destination.service}:{region}:{account}:{resource_type}/{destination.stream}"


def destination_actions(service: str, preflight: bool) -> list[str]:
    """The IAM actions the target calls on one destination of `service`."""
    spec = SERVICES[service]
    actions = [f"{service}:{spec.api_name}", *(f"{service}:{name}" for name in spec.map_api_names)]
    if preflight:
        actions.append(f"{service}:{spec.describe_api_name}")
    return sorted(actions)


@dataclass(frozen=True)
class KmsGrant:
    """What to grant for one key: a key ARN, or `key/*` limited to an alias."""

    resource: str
    alias: str | None = None


def is_aws_managed_kinesis_key(key: str) -> bool:
    """alias/aws/kinesis, by name or alias ARN."""
    return key == AWS_MANAGED_KINESIS_KEY or key.endswith(f":{AWS_MANAGED_KINESIS_KEY}")


def kms_grant(key: str, region: str, account: str, partition: str = "aws") -> KmsGrant | None:
    """How to grant kms:GenerateDataKey on `key` (id, key ARN, alias or alias ARN).

    None for the AWS managed key alias/aws/kinesis, which needs no IAM permission.
    """
    match = _ARN.fullmatch(key)
    if match:
        resource = match["resource"]
        if not resource.startswith("alias/"):
            return KmsGrant(key)
        partition, region, account = match["partition"], match["region"], match["account"]
    else:
        resource = key if key.startswith("alias/") else f"key/{key}"
    if resource == AWS_MANAGED_KINESIS_KEY:
        return None
    if resource.startswith("alias/"):
        return KmsGrant(f"arn:{partition}:kms:{region}:{account}:key/*", alias=resource)
    return KmsGrant(f"arn:{partition}:kms:{region}:{account}:{resource}")


def _kms_statements(
    kms_keys: Mapping[Destination, str], region: str, account: str, partition: str
) -> list[dict[str, Any]]:
    """kms:GenerateDataKey for encrypted Kinesis streams: keys by ARN, then keys by alias."""
    keys: set[str] = set()
    key_streams: set[str] = set()
    aliases: set[str] = set()
    alias_resources: set[str] = set()
    alias_streams: set[str] = set()
    for destination, key in kms_keys.items():
        grant = kms_grant(key, region, account, partition) if destination.service == "kinesis" else None
        if grant is None:
            continue
        arn = stream_arn(destination, region, account, partition)
        if grant.alias is None:
            keys.add(grant.resource)
            key_streams.add(arn)
        else:
            aliases.add(grant.alias)
            alias_resources.add(grant.resource)
            alias_streams.add(arn)
    statements: list[dict[str, Any]] = []
    if keys:
        statements.append(
            {
                "Sid": "KinesisKmsEncrypt",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey"],
                "Resource": sorted(keys),
                "Condition": {"StringEquals": {KINESIS_CONTEXT_KEY: sorted(key_streams)}},
            }
        )
    if aliases:
        statements.append(
            {
                "Sid": "KinesisKmsEncryptByAlias",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey"],
                "Resource": sorted(alias_resources),
                "Condition": {
                    "StringEquals": {KINESIS_CONTEXT_KEY: sorted(alias_streams)},
                    "ForAnyValue:StringEquals": {"kms:ResourceAliases": sorted(aliases)},
                },
            }
        )
    return statements


def permissions_policy(
    settings: Settings,
    account_id: str | None = None,
    kms_keys: Mapping[Destination, str] | None = None,
    *,
    redrive: bool = False,
) -> dict[str, Any]:
    """The identity policy: the target's calls on its destinations, nothing more (`redrive`:
    and what target-kinesis-redrive needs to read and delete S3 dead letters)."""
    account = account_id or ACCOUNT_PLACEHOLDER
    region = settings.region
    partition = partition_for(region)
    statements: list[dict[str, Any]] = []
    for service in sorted({d.service for d in settings.destinations}):
        resources = sorted(
            {stream_arn(d, region, account, partition) for d in settings.destinations if d.service == service}
        )
        statements.append(
            {
                "Sid": _STATEMENT_IDS[service],
                "Effect": "Allow",
                "Action": destination_actions(service, settings.preflight_check),
                "Resource": resources,
            }
        )
    statements.extend(_kms_statements(kms_keys or {}, region, account, partition))
    dead_letters = settings.dead_letter_location
    if dead_letters is not None:
        statements.append(dead_letter_statement(dead_letters, partition))
        if redrive:
            statements.extend(redrive_statements(dead_letters, partition))
    return {"Version": POLICY_VERSION, "Statement": statements}


def redrive_statements(location: S3Location, partition: str = "aws") -> list[dict[str, Any]]:
    """Reading and deleting the dead letters under the prefix (aws/s3.py's list_keys,
    get_object, delete_object): ListBucket is granted on the bucket, so the condition keeps
    the listing to the prefix."""
    return [
        {
            "Sid": "DeadLetterRedrive",
            "Effect": "Allow",
            "Action": ["s3:DeleteObject", "s3:GetObject"],
            "Resource": [f"arn:{partition}:s3:::{location.bucket}/{location.prefix}*"],
        },
        {
            "Sid": "DeadLetterList",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [f"arn:{partition}:s3:::{location.bucket}"],
            "Condition": {"StringLike": {"s3:prefix": [f"{location.prefix}*"]}},
        },
    ]


def dead_letter_statement(location: S3Location, partition: str = "aws") -> dict[str, Any]:
    """``s3:PutObject`` under the dead-letter prefix: every object the target names is
    ``prefix<run start>-<run id>-<number>.jsonl``, so ``prefix*`` is all it needs."""
    return {
        "Sid": "DeadLetterWrite",
        "Effect": "Allow",
        "Action": ["s3:PutObject"],
        "Resource": [f"arn:{partition}:s3:::{location.bucket}/{location.prefix}*"],
    }


def trust_policy(settings: Settings, trusted_principal: str | None = None) -> dict[str, Any]:
    """The role's trust policy: AssumeRole for the principal, with the config's ExternalId."""
    statement: dict[str, Any] = {
        "Sid": "TargetKinesisAssumeRole",
        "Effect": "Allow",
        "Principal": {"AWS": trusted_principal or TRUSTED_PRINCIPAL_PLACEHOLDER},
        "Action": "sts:AssumeRole",
    }
    if settings.external_id:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": settings.external_id}}
    return {"Version": POLICY_VERSION, "Statement": [statement]}


def build_policies(
    settings: Settings,
    account_id: str | None = None,
    kms_keys: Mapping[Destination, str] | None = None,
    trusted_principal: str | None = None,
    *,
    redrive: bool = False,
) -> dict[str, Any]:
    """Both documents: ``{"permissions_policy": ..., "trust_policy": ...}``.

    `kms_keys` maps a destination to the KMS key (id, ARN, alias or alias ARN) its stream is
    encrypted with; `account_id` None leaves the ``{account-id}`` placeholder in the ARNs.
    """
    return {
        "permissions_policy": permissions_policy(settings, account_id, kms_keys, redrive=redrive),
        "trust_policy": trust_policy(settings, trusted_principal),
    }


def policy_actions(policy: Mapping[str, Any]) -> set[str]:
    """Every action a policy document allows (for tests and checks)."""
    actions: set[str] = set()
    for statement in policy.get("Statement", []):
        action = statement.get("Action", [])
        actions.update([action] if isinstance(action, str) else action)
    return actions


def assign_kms_keys(settings: Settings, specs: Sequence[str]) -> dict[Destination, str]:
    """``--kms-key-arn`` values: ``KEY`` for every Kinesis destination, ``STREAM=KEY`` for one."""
    kinesis = [d for d in settings.destinations if d.service == "kinesis"]
    if specs and not kinesis:
        raise ToolError(
            "--kms-key-arn: the config has no kinesis destination (Firehose writers need no KMS permission)"
        )
    keys: dict[Destination, str] = {}
    for spec in specs:
        stream, separator, key = spec.rpartition("=")
        if not separator:
            keys.update(dict.fromkeys(kinesis, key))
            continue
        chosen = [d for d in kinesis if d.stream == stream]
        if not chosen or not key:
            raise ToolError(f"--kms-key-arn {stream}=...: the config has no kinesis destination '{stream}'")
        keys.update(dict.fromkeys(chosen, key))
    return keys


# -- describing the streams (--describe) ------------------------------------------------


def _describe_failure(destination: Destination, region: str, error: AwsError) -> ToolError:
    service = SERVICES[destination.service]
    line = explain(
        error,
        where=f"{destination.service} stream '{destination.stream}' in region {region}",
        verb="describe",
        needed=f"{destination.service}:{service.describe_api_name} is needed",
        alternative="use --kms-key-arn",
    )
    return ToolError(f"--describe: {line}")


def describe_destinations(settings: Settings) -> dict[Destination, StreamInfo]:
    """Describe every destination with the config's credentials and endpoint, as the
    target's preflight check does."""
    clients = AwsClients(settings.aws_access())
    found: dict[Destination, StreamInfo] = {}
    for destination in settings.destinations:
        client = clients.client(destination.service)
        try:
            found[destination] = describe_stream(client, destination.service, destination.stream)
        except AwsCallFailed as exc:
            raise _describe_failure(destination, settings.region, exc.error) from None
    return found


def account_from_arns(arns: Sequence[str | None]) -> str | None:
    """The account id all the described ARNs share, or None."""
    accounts = {m["account"] for arn in arns if arn and (m := _ARN.fullmatch(arn))}
    return accounts.pop() if len(accounts) == 1 else None


def account_from_role_arn(role_arn: str | None) -> str | None:
    """The account of an IAM role ARN (``arn:aws:iam::ACCOUNT:role/NAME``), or None."""
    match = _ARN.fullmatch(role_arn or "")
    if not match or match["service"] != "iam" or not match["resource"].startswith("role/"):
        return None
    return match["account"] if _ACCOUNT_ID.fullmatch(match["account"]) else None


# -- command line -----------------------------------------------------------------------


def _account_id(value: str) -> str:
    if not _ACCOUNT_ID.fullmatch(value):
        raise argparse.ArgumentTypeError("must be 12 digits")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = ToolParser(
        prog=PROG,
        description="Print the least-privilege IAM permissions policy and role trust policy for a target-kinesis config.",
    )
    parser.add_argument("--config", required=True, help=CONFIG_HELP)
    parser.add_argument(
        "--account-id",
        type=_account_id,
        help="AWS account of the streams (default: from --describe, else role_arn's account, else a placeholder)",
    )
    parser.add_argument("--trusted-principal", help="who may assume the role (default: a placeholder account root)")
    parser.add_argument(
        "--describe", action="store_true", help="describe the streams (config credentials) to find KMS keys and account"
    )
    parser.add_argument(
        "--kms-key-arn",
        action="append",
        default=[],
        metavar="[STREAM=]KEY",
        help="KMS key of the Kinesis streams (or of one stream); repeatable",
    )
    parser.add_argument(
        "--redrive",
        action="store_true",
        help="also grant reading and deleting the S3 dead letters (for target-kinesis-redrive)",
    )
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--permissions-only", action="store_true", help="print only the permissions policy")
    only.add_argument("--trust-only", action="store_true", help="print only the trust policy")
    return parser.parse_args(argv)


def load_settings(path: str) -> Settings:
    return settings_of(read_config(path))


def _note(message: str) -> None:
    print(f"{PROG}: note: {message}", file=sys.stderr)


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def _encryption_notes(described: Mapping[Destination, StreamInfo]) -> None:
    for destination, info in sorted(described.items()):
        if not info.encrypted:
            continue
        if destination.service == "firehose":
            _note(f"firehose stream '{destination.stream}' is encrypted; Firehose uses its own grant on the key,")
            _note("  so the writer needs no KMS permission for it")
        elif info.kms_key and is_aws_managed_kinesis_key(info.kms_key):
            _note(f"kinesis stream '{destination.stream}' uses the AWS managed key {AWS_MANAGED_KINESIS_KEY}:")
            _note("  no KMS permission is needed for it")


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings(args.config)
    account_id: str | None = args.account_id
    kms_keys: dict[Destination, str] = {}
    if args.describe:
        described = describe_destinations(settings)
        _encryption_notes(described)
        kms_keys = {d: info.kms_key for d, info in described.items() if info.encrypted and info.kms_key}
        account_id = account_id or account_from_arns([info.arn for info in described.values()])
    if account_id is None:
        account_id = account_from_role_arn(settings.role_arn)
        if account_id is not None and not args.trust_only:
            _note(
                f"account {account_id} is role_arn's: the streams are taken to be in the role's account "
                "(pass --account-id if they are not)"
            )
    kms_keys.update(assign_kms_keys(settings, args.kms_key_arn))
    if args.redrive and settings.dead_letter_location is None:
        raise ToolError(
            "--redrive needs a dead_letter_path of s3://bucket/prefix/ in the config (a file needs no grant)"
        )
    documents = build_policies(settings, account_id, kms_keys, args.trusted_principal, redrive=args.redrive)
    printed_trust = not args.permissions_only
    if account_id is None and not args.trust_only:
        _note(f"{ACCOUNT_PLACEHOLDER} is a placeholder: pass --account-id (or --describe) to fill it in")
    if printed_trust and not args.trusted_principal:
        _note("the trusted principal is a placeholder: pass --trusted-principal (e.g. arn:aws:iam::ACCOUNT:root)")
    if printed_trust and not settings.role_arn:
        _note("the config sets no role_arn: attach the permissions policy to the identity that runs the target")
    if settings.role_arn and not settings.external_id:
        _warn(
            "the config sets role_arn but no external_id, so the trust policy has no sts:ExternalId condition: "
            "a role another account may assume needs one (and external_id in the config) to avoid the "
            "confused-deputy problem, as Segment's set-up requires"
        )
    if args.permissions_only:
        return documents["permissions_policy"]
    if args.trust_only:
        return documents["trust_policy"]
    return documents


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `target-kinesis-policy`; returns the exit code."""
    args = parse_args(argv)
    try:
        document = run(args)
    except (ToolError, TargetKinesisError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
