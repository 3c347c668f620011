"""Ingestion endpoints: ``/track``, ``/engage``, ``/groups`` and ``/import``.

Flow of one request: cap and read the body, decode it (``wire``), put cookieless ids in
place of the ``"$cookieless"`` sentinel (``http.cookieless``), validate each record
(``validate``), hand the good ones to the writer and wait for the commit (``store``),
then answer as Mixpanel does:

* ``/track``, ``/engage`` and ``/groups``: ``1`` / ``0``, or with ``verbose=1``
  ``{"status": 1|0, "error": ...}`` plus ``failed_records`` (``index``, ``reason``)
  when records were rejected. 400 when the body is malformed *or no record is
  valid* (so an SDK can tell a dropped batch), 413 when too large.
* ``/import`` (secret as HTTP Basic user name): ``{"code": 200,
  "num_records_imported": N, "status": "OK"}``; 400 with ``failed_records`` (the
  valid records are still stored); 401 without the secret. With ``verbose=1``
  (mixpanel-python always sends it) ``status`` is ``1``/``0`` and ``error`` is set,
  because that client accepts nothing else.

A client fault is never a 5xx: SDKs retry 5xx forever. 503 (with ``Retry-After``)
means the writer is overloaded or the database is unavailable (disk
failed, PostgreSQL unreachable); nothing of that request was acknowledged.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlencode

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from empmix_collector.domain import validate
from empmix_collector.domain.engage import validate_profile
from empmix_collector.domain.groups import validate_group
from empmix_collector.domain.records import EventRecord, GroupRecord, ProfileRecord, Rejection, WriteBatch
from empmix_collector.domain.validate import Context
from empmix_collector.domain.wire import (
    MAX_BODY_BYTES,
    MAX_IMPORT_BODY_BYTES,
    BodyTooLarge,
    MalformedBody,
    WireError,
    decode_body,
    dumps_json,
    failed_record,
    is_true,
    summarize,
)
from empmix_collector.http.cookieless import CookielessIds
from empmix_collector.http.errors import wire_status
from empmix_collector.http.inputs import read_body, secret_matches
from empmix_collector.settings import Settings
from empmix_collector.store.base import Store, StoreError

__all__ = ["Ingest"]

log = logging.getLogger("empmix_collector.ingest")
T = TypeVar("T")

OFF_LOOP_BYTES = 16 * 1024
"""Bodies longer than this (or compressed) are decoded off the event loop; see :data:`OFF_LOOP_RECORDS`."""
OFF_LOOP_RECORDS = 64
"""Batches of more records than this are validated off the event loop, on one of
:data:`PARSE_THREADS` threads: decoding and validating 2,000 records takes 40-130 ms of Python,
which on the loop delayed every other request (a side one-event ``/track`` waited for it). The
GIL still serialises the work, but it is handed back every switch interval (1 ms, set by the CLI)."""
PARSE_THREADS = 2

_STATUS_TEXT = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    503: "Service Unavailable",
}


_FORM = "application/x-www-form-urlencoded"


def _query_body(query: Mapping[str, str], cap: int) -> bytes:
    """The form body a ``GET ...?data=...`` stands for."""
    data = query.get("data")
    if not data:
        raise MalformedBody("a GET needs ?data= with the records (JSON or base64 of it)")
    if len(data) > cap:
        raise BodyTooLarge(f"data larger than {cap} bytes")
    return urlencode({"data": data}).encode("ascii")


def _json(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Response:
    return Response(dumps_json(body), status_code=status, media_type="application/json", headers=headers)


def _validate_into(
    batch: WriteBatch,
    check: Callable[[Any, int, Context, str | None], Any],
    ctx: Context,
    records: Sequence[Any],
    texts: Sequence[str] | None,
) -> list[Rejection]:
    """Validate ``records`` into ``batch``; returns the rejections (pure: safe on any thread)."""
    failures: list[Rejection] = []
    for index, raw in enumerate(records):
        outcome = check(raw, index, ctx, texts[index] if texts is not None else None)
        if type(outcome) is Rejection:
            failures.append(outcome)
        elif type(outcome) is ProfileRecord:
            batch.profiles.append(outcome)
        elif type(outcome) is GroupRecord:
            batch.groups.append(outcome)
        else:
            assert type(outcome) is EventRecord
            batch.events.append(outcome)
    return failures


class Ingest:
    """The three ingestion endpoints, bound to one settings object and one store."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.max_age_ms = int(settings.track_max_age_days * 86_400_000)
        self.cookieless = CookielessIds(settings, store)
        self._identity_keys: dict[int, bytes] | None = None
        self._parsers: ThreadPoolExecutor | None = None

    async def _off_loop(self, heavy: bool, work: Callable[[], T]) -> T:
        """``work()`` on a parse thread when ``heavy``, else here on the loop."""
        if not heavy:
            return work()
        if self._parsers is None:
            self._parsers = ThreadPoolExecutor(PARSE_THREADS, thread_name_prefix="empmix-parse")
        return await asyncio.get_running_loop().run_in_executor(self._parsers, work)

    def identity_keys(self) -> dict[int, bytes]:
        """Project id -> identity secret (``--identity-secret``), once the store knows the ids."""
        if self._identity_keys is None:
            projects = self.store.projects
            if not projects:
                return {}
            self._identity_keys = {
                projects[token]: secret.encode("utf-8") for token, secret in self.settings.identity_secrets
            }
        return self._identity_keys

    async def track(self, request: Request) -> Response:
        """``POST /track``: events from untrusted clients (token in each record)."""
        return await self._handle(request, "track")

    async def engage(self, request: Request) -> Response:
        """``POST /engage``: profile operations."""
        return await self._handle(request, "engage")

    async def groups(self, request: Request) -> Response:
        """``POST /groups``: group profile operations (same body forms and replies as ``/engage``)."""
        return await self._handle(request, "groups")

    async def import_(self, request: Request) -> Response:
        """``POST /import``: server-side and historical events, ``$merge``; needs the secret."""
        if not secret_matches(request.headers.get("authorization"), self.settings.secret):
            why = (
                "/import is disabled: the collector was started without --secret"
                if self.settings.secret is None
                else "/import needs the project secret as the HTTP Basic user name"
            )
            verbose = is_true(request.query_params.get("verbose"))
            return self._import_reply(401, why, 0, [], verbose, {"WWW-Authenticate": 'Basic realm="empmix-collector"'})
        return await self._handle(request, "import")

    async def _handle(self, request: Request, endpoint: str) -> Response:
        now_ms = int(time.time() * 1000)
        cap = MAX_IMPORT_BODY_BYTES if endpoint == "import" else MAX_BODY_BYTES
        query = request.query_params
        try:
            content_type: str | None
            if request.method == "GET":  # Mixpanel's GET transport: ?data=<JSON or base64>
                body, content_type, encoding = _query_body(query, cap), _FORM, None
            else:
                body = await read_body(request, cap)
                content_type, encoding = request.headers.get("content-type"), request.headers.get("content-encoding")
            heavy = len(body) > OFF_LOOP_BYTES or bool(encoding)
            decode = functools.partial(decode_body, body, content_type, encoding, query=query, max_bytes=cap)
            payload = await self._off_loop(heavy, decode)
        except WireError as exc:
            return self._error(endpoint, wire_status(exc), exc.message, is_true(query.get("verbose")))
        except ClientDisconnect:
            return Response(status_code=400)
        verbose = payload.verbose
        projects = self.store.projects
        default_project = None
        if endpoint == "import":
            token = payload.params.get("token")
            default_project = projects.get(token) if token else projects.get(self.settings.default_token)
        try:
            links = await self.cookieless.apply(request, endpoint, payload, projects, default_project)
        except StoreError as exc:
            return self._unavailable(endpoint, exc, verbose)
        ctx = Context(
            projects,
            now_ms,
            endpoint,
            default_project,
            self.max_age_ms,
            cookieless_links=links or None,
            identity_keys=self.identity_keys(),
        )
        check = (
            validate_profile
            if endpoint == "engage"
            else validate_group
            if endpoint == "groups"
            else validate.validate_event
        )
        batch = WriteBatch(received_ms=now_ms, endpoint=endpoint, origin=request.headers.get("origin"))
        heavy = len(payload.records) > OFF_LOOP_RECORDS
        validated = functools.partial(_validate_into, batch, check, ctx, payload.records, payload.texts)
        failures = await self._off_loop(heavy, validated)
        stored = 0
        if len(batch):
            try:
                result = await self.store.write(batch)
            except StoreError as exc:
                return self._unavailable(endpoint, exc, verbose)
            stored = len(batch) - len(result.failed)
            if result.failed:
                failures.extend(result.failed)
                failures.sort(key=lambda rejection: rejection.index)
        entries = [failed_record(f.index, f.reason, f.field, f.insert_id) for f in failures]
        error = summarize(entries, len(payload.records))
        if endpoint == "import":
            status = 400 if failures else 200
            return self._import_reply(status, error, stored, entries, verbose)
        status = 200 if stored else 400
        if not verbose:
            return Response(b"1" if stored else b"0", status_code=status, media_type="text/plain")
        reply: dict[str, Any] = {"status": 1 if stored else 0, "error": error}
        if entries:
            reply["failed_records"] = entries
        return _json(status, reply)

    def close(self) -> None:
        """Let the parse threads go (on shutdown)."""
        parsers, self._parsers = self._parsers, None
        if parsers is not None:
            parsers.shutdown(wait=False, cancel_futures=True)

    def _unavailable(self, endpoint: str, exc: StoreError, verbose: bool) -> Response:
        log.warning("turning a batch away: %s", exc)
        return self._error(endpoint, 503, f"collector unavailable: {exc}", verbose, {"Retry-After": "1"})

    def _error(
        self, endpoint: str, status: int, message: str, verbose: bool, headers: Mapping[str, str] | None = None
    ) -> Response:
        if endpoint == "import":
            return self._import_reply(status, message, 0, [], verbose, headers)
        if verbose:
            return _json(status, {"status": 0, "error": message}, headers)
        return Response(b"0", status_code=status, media_type="text/plain", headers=headers)

    @staticmethod
    def _import_reply(
        status: int,
        error: str | None,
        imported: int,
        failed: list[dict[str, Any]],
        verbose: bool,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        body: dict[str, Any] = {"code": status}
        if status == 200:
            body.update(num_records_imported=imported, status="OK")
        else:
            body.update(error=error, status=_STATUS_TEXT.get(status, "Error"), num_records_imported=imported)
            if failed:
                body["failed_records"] = failed
        if verbose:  # mixpanel-python requires {"status": 1} and reads "error"
            body["status"] = 1 if status == 200 else 0
            body["error"] = error if status != 200 else None
        return _json(status, body, headers)
