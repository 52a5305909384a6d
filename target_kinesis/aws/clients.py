"""AWS sessions, credentials and clients: the one place that talks to botocore about identity.

Assumed-role credentials are botocore `RefreshableCredentials`, refreshed ahead of expiry
(scaled to the session duration, so even a short session never reaches a call expired),
and refreshed on demand when AWS still answers ExpiredToken. botocore's own retries are
switched off: every retry is decided by `delivery/retry.py`, counted, and bounded by max_retries.

Sessions are botocore's own, not boto3's: a boto3 session adds resources and S3 transfer
methods the target never calls, and importing boto3 imports s3transfer (60 ms of a 0.6 s
start-up). The tools that want boto3 (tools/local.py, tools/policy.py) import it themselves.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import botocore
import botocore.session
import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError, DataNotFoundError, NoCredentialsError, ProfileNotFound
from botocore.hooks import first_non_none_response
from botocore.loaders import JSONFileLoader, Loader

from target_kinesis import __version__
from target_kinesis.aws.errors import RoleRefused, error_code
from target_kinesis.errors import ConfigError
from target_kinesis.log_safety import guard_logs, mask_secrets


@dataclass(frozen=True)
class AwsAccess:
    """Where and as whom to call AWS: the credential and connection settings, nothing else."""

    region: str
    endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    aws_profile: str | None = None
    role_arn: str | None = None
    external_id: str | None = field(default=None, repr=False)
    role_session_name: str = "target-kinesis"
    role_session_duration_seconds: int = 3600
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    def secrets(self) -> list[str | None]:
        return [self.aws_secret_access_key, self.aws_session_token, self.external_id]


def profile_region(profile: str | None) -> tuple[str | None, str]:
    """The region the shared AWS config file gives a profile, and the profile's name: `profile`,
    else AWS_PROFILE's, else `default` (as the AWS CLI reads them; AWS_CONFIG_FILE says where
    the file is). (None, name) when the profile sets no region; ConfigError when a profile
    named by the setting or AWS_PROFILE does not exist."""
    session = botocore.session.Session(profile=profile)
    name = session.profile or "default"
    try:
        region = session.get_scoped_config().get("region")
    except ProfileNotFound:
        origin = "setting 'aws_profile'" if profile else "the AWS_PROFILE environment variable"
        raise ConfigError(f"{origin}: profile '{name}' not found in the AWS config files") from None
    return (str(region) if region else None), name


#: The code of an answer that is not AWS's (not its JSON), by HTTP status: a gateway's HTML
#: page. 429 is a gateway's "slow down"; any other status keeps its number as the code.
NOT_AWS_CODES = {200: "NotAnAwsAnswer", 429: "TooManyRequests"}


class _OneLineRefreshWarning(logging.Filter):
    """botocore logs a failed renewal of role credentials with its whole traceback (chained
    exceptions). In the mandatory period the failure is raised on, and the run's error line
    names the role and STS's refusal: the warning is dropped. In the advisory period botocore
    carries on with the credentials it has: one line with the reason."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            if "mandatory" in record.getMessage():
                return False
            reason = (str(record.exc_info[1]).splitlines() or [""])[0]
            record.msg, record.args = f"{record.getMessage()} ({reason})", ()
            record.exc_info, record.exc_text = None, None
        return True


def _one_line_refresh_warnings() -> None:
    credentials_logger = logging.getLogger("botocore.credentials")
    if not any(isinstance(f, _OneLineRefreshWarning) for f in credentials_logger.filters):
        credentials_logger.addFilter(_OneLineRefreshWarning())


class _AssumedRoleCredentials(RefreshableCredentials):
    """RefreshableCredentials that can also be refreshed on demand (after ExpiredToken)."""

    def force_refresh(self) -> None:
        with self._refresh_lock:
            self._protected_refresh(is_mandatory=True)


#: The services a run's clients call (`AwsClients.client`).
RUN_SERVICES = ("firehose", "kinesis", "s3", "sts")


class _FastJsonFileLoader(JSONFileLoader):
    """botocore's model files parsed into dicts rather than OrderedDicts: the stdlib's C
    parser builds dicts itself, but calls back into Python for each OrderedDict. endpoints.json
    (1.2 MB, read by every session) takes 7 ms instead of 16 ms, the Kinesis model and rules
    2 ms instead of 3.5 ms. The same files (`.json`, then `.json.gz`), the same parser and
    the same data in the same order (dicts keep it); a kind of file botocore may add later is
    botocore's own to load. (orjson is faster still, but reads integers beyond 64 bits as
    floats.)"""

    def load_file(self, file_path: str) -> Any:
        for extension, opener in ((".json", open), (".json.gz", gzip.open)):
            full_path = file_path + extension
            if os.path.isfile(full_path):
                with opener(full_path, "rb") as data:
                    loaded = json.loads(data.read().decode("utf-8"))
                if loaded is not None:
                    return loaded
        return super().load_file(file_path)


class _RunLoader(Loader):
    """botocore's data loader, looking only for the services a run calls.

    Before it loads a model, botocore's Loader lists every service its data holds, to check
    the one asked for is among them: a listdir of each of some 450 folders, 11 ms per model
    type, and a client loads two (service-2, endpoint-rule-set-1). Here the list holds the
    services of `RUN_SERVICES` the data has, each found with botocore's own version lookup
    (whose answer the model load reuses). Models, versions, extras and search paths are
    botocore's; its files are parsed by `_FastJsonFileLoader`."""

    FILE_LOADER_CLASS = _FastJsonFileLoader

    def list_available_services(self, type_name: str) -> list[str]:
        found = []
        for service in RUN_SERVICES:
            try:
                self.list_api_versions(service, type_name)
            except DataNotFoundError:
                continue
            found.append(service)
        return found


def _run_loader(search_path_string: str | None) -> _RunLoader:
    """`botocore.loaders.create_loader`, with the run's loader class: the same search paths."""
    if search_path_string is None:
        return _RunLoader()
    paths = [os.path.expanduser(os.path.expandvars(p)) for p in search_path_string.split(os.pathsep)]
    return _RunLoader(extra_search_paths=paths)


class AwsClients:
    """Shared, thread-safe botocore clients for one run (a client per service)."""

    def __init__(self, access: AwsAccess, *, max_pool_connections: int = 10) -> None:
        self.access = access
        guard_logs(access.secrets())
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._credentials: _AssumedRoleCredentials | None = None
        self.config = Config(
            region_name=access.region,
            connect_timeout=access.connect_timeout,
            read_timeout=access.read_timeout,
            retries={"total_max_attempts": 1, "mode": "standard"},
            max_pool_connections=max_pool_connections,
            tcp_keepalive=True,
            user_agent_extra=f"target-kinesis/{__version__}",
        )
        self._loaders: dict[str | None, _RunLoader] = {}
        self.session = self._build_session()
        self._user_agent = f"target-kinesis/{__version__} botocore/{botocore.__version__}"

    # -- sessions ------------------------------------------------------------------

    def _base_session(self) -> botocore.session.Session:
        s = self.access
        try:
            if s.aws_access_key_id:
                session = botocore.session.Session()
                session.set_credentials(s.aws_access_key_id, s.aws_secret_access_key, s.aws_session_token)
            else:
                session = botocore.session.Session(profile=s.aws_profile)
            session.set_config_variable("region", s.region)
            self._use_run_loader(session)
        except ProfileNotFound as exc:
            raise ConfigError(
                f"setting 'aws_profile': profile '{s.aws_profile}' not found in the AWS config files"
            ) from exc
        return session

    def _use_run_loader(self, session: botocore.session.Session) -> None:
        """Give a session the run's data loader, one per search path: sessions of one run share
        the models they load. Reading the search path reads the session's profile now: a
        missing profile is ProfileNotFound here, not at the first call (boto3 sessions did
        the same when built)."""
        data_path = session.get_config_variable("data_path")
        loader = self._loaders.get(data_path)
        if loader is None:
            loader = self._loaders[data_path] = _run_loader(data_path)
        session.register_component("data_loader", loader)

    def _build_session(self) -> botocore.session.Session:
        base = self._base_session()
        if not self.access.role_arn:
            return base
        sts = base.create_client("sts", endpoint_url=self.access.endpoint_url, config=self.config)
        duration = self.access.role_session_duration_seconds

        fetched = 0

        def fetch() -> dict[str, Any]:
            nonlocal fetched
            params: dict[str, Any] = {
                "RoleArn": self.access.role_arn,
                "RoleSessionName": self.access.role_session_name,
                "DurationSeconds": duration,
            }
            if self.access.external_id:
                params["ExternalId"] = self.access.external_id
            try:
                answer = sts.assume_role(**params)["Credentials"]
            except (ClientError, BotoCoreError) as exc:
                error = error_code(exc)
                what = "renew the credentials of" if fetched else "assume"
                if error.code == "ValidationError" and "DurationSeconds" in error.message:
                    check = (
                        f"lower setting 'role_session_duration_seconds' ({duration}) to at most the role's maximum "
                        "session duration, or raise the role's MaxSessionDuration"
                    )
                else:
                    check = "check the role's trust policy, the ExternalId and sts:AssumeRole permission"
                raise RoleRefused(
                    f"could not {what} role {self.access.role_arn}: {error.code}: {error.message}; {check}"
                ) from None
            fetched += 1
            mask_secrets((answer["SecretAccessKey"], answer["SessionToken"]))
            return {
                "access_key": answer["AccessKeyId"],
                "secret_key": answer["SecretAccessKey"],
                "token": answer["SessionToken"],
                "expiry_time": answer["Expiration"].isoformat(),
            }

        # botocore refreshes 15/10 minutes before expiry, which assumes hour-long
        # sessions; scale those margins down for shorter ones.
        advisory = min(15 * 60, duration * 0.4)
        mandatory = min(10 * 60, duration * 0.2)
        self._credentials = _AssumedRoleCredentials.create_from_metadata(
            metadata=fetch(),
            refresh_using=fetch,
            method="assume-role",
            advisory_timeout=advisory,
            mandatory_timeout=mandatory,
        )
        core = botocore.session.Session()
        core._credentials = self._credentials  # the documented way: botocore has no public setter for it
        core.set_config_variable("region", self.access.region)
        self._use_run_loader(core)
        _one_line_refresh_warnings()
        return core

    # -- clients -------------------------------------------------------------------

    def client(self, service: str) -> Any:
        """The client for `kinesis`, `firehose`, `s3` or `sts`; created once, shared by threads."""
        with self._lock:
            found = self._clients.get(service)
            if found is None:
                found = self._clients[service] = self.session.create_client(
                    service, endpoint_url=self.access.endpoint_url, config=self.config
                )
            return found

    def json_call(self, service: str, target: str, body: bytes) -> dict[str, Any]:
        """POST one pre-serialized JSON request (the hot path: PutRecords / PutRecordBatch).

        botocore validates, serializes (stdlib json, base64 in Python) and parses every
        call; for 500 records that was a fifth of the target's CPU. Here the body is built
        by orjson, and the request is signed with SigV4 and sent over the client's own
        connection pool, endpoint, proxies and time-outs. Errors are raised as the same
        botocore exceptions a client call raises, so `retry.py` classifies them alike.
        """
        client = self.client(service)
        meta = client.meta
        request = AWSRequest(
            method="POST",
            url=meta.endpoint_url + "/",
            data=body,
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": target,
                "User-Agent": self._user_agent,
            },
        )
        credentials = self.session.get_credentials()
        if credentials is None:
            raise NoCredentialsError()
        SigV4Auth(credentials.get_frozen_credentials(), meta.service_model.signing_name, meta.region_name).add_auth(
            request
        )
        prepared = request.prepare()
        # As botocore's endpoint does: a `before-send` hook may answer instead of the
        # network (moto's in-process mock, botocore's Stubber-like tools).
        operation = target.rsplit(".", 1)[-1]
        hooked = first_non_none_response(
            meta.events.emit(f"before-send.{meta.service_model.service_id.hyphenize()}.{operation}", request=prepared)
        )
        # Otherwise the client's own HTTP session: same pool, proxies, TLS and time-outs.
        response = hooked if hooked is not None else client._endpoint.http_session.send(prepared)
        status, content = response.status_code, response.content
        try:
            answer = orjson.loads(content) if content else None
        except orjson.JSONDecodeError:
            answer = None
        if status == 200 and isinstance(answer, dict):
            return answer
        if isinstance(answer, dict):  # AWS's own error
            code = str(answer.get("__type") or answer.get("code") or status).rsplit("#", 1)[-1]
            message = str(answer.get("message") or answer.get("Message") or "")
        elif content or status == 200:  # a page from something in between, or nothing where AWS answers
            kind = str(response.headers.get("Content-Type") or "no content type").split(";", 1)[0].strip()
            code = NOT_AWS_CODES.get(status, str(status))
            message = (
                f"{meta.endpoint_url} answered HTTP {status} with {kind if content else 'an empty body'}, "
                "not as AWS does (a proxy or gateway in between?)"
            )
        else:
            code, message = str(status), ""
        raise ClientError(
            {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
        )

    def refresh_credentials(self) -> bool:
        """Refresh assumed-role credentials now; False when there is nothing we can refresh."""
        if self._credentials is None:
            return False
        self._credentials.force_refresh()
        return True
