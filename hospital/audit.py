"""The audit trail: one append-only row per API request that touches patients, doctors, mappings or accounts.

The row is written by the view itself, with a single INSERT:
- for writes, inside the request's transaction, so a change and its audit row commit together or not at all;
- for a page of a list, in the very statement that reads the page (PageAudit): the row is committed before the
  rows reach Python, at no extra round trip;
- for other reads, after the response is built; if the row cannot be written, the client gets an error instead
  of the data. No record leaves the API without its audit row.
"""

import ipaddress
import logging

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.http import Http404
from rest_framework import status
from rest_framework.mixins import ListModelMixin
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response

from hospital.db_router import ReplicaReadsMixin
from hospital.exceptions import is_database_unavailable
from hospital.metrics import AUDIT_WRITE_FAILURES
from hospital.models import MAX_ID, AuditAction, AuditResource
from hospital.throttles import ThrottleBeforePermissionsMixin

# One plain INSERT, without the ORM's model instance and signals: it runs on every request.
AUDIT_INSERT = """INSERT INTO "hospital_auditevent"
    (at, actor, action, resource_type, resource_ids, patient_ids, outcome, client_ip, request_id, client_request_id)
VALUES (now(), %s, %s, %s, %s::bigint[], %s::bigint[], %s, %s::inet, %s, %s)
"""
# A read's row is its own transaction, committed without waiting for the disk (synchronous_commit off for that
# transaction only): the wait was the largest single cost of a read (BENCHMARKS.md). PostgreSQL still writes
# it in order; only a crash of the database server itself can lose the last few hundred milliseconds of them.
# A write's row commits with the write, durably. AUDIT_SYNCHRONOUS_READS=true makes reads wait too.
AUDIT_INSERT_ASYNC = """WITH no_wait AS (SELECT set_config('synchronous_commit', 'off', true))
INSERT INTO "hospital_auditevent"
    (at, actor, action, resource_type, resource_ids, patient_ids, outcome, client_ip, request_id, client_request_id)
SELECT now(), %s, %s, %s, %s::bigint[], %s::bigint[], %s, %s::inet, %s, %s FROM no_wait
"""

# A read and its audit row in one statement. The read's own SQL (as Django compiled it) runs in a materialized
# CTE, its columns named by position and numbered in the order they come; the row is inserted from it (ids in the
# read's order); the read is returned as Django expects it: the same columns, in the same order. The aggregate runs
# over `no_wait LEFT JOIN page`, so the row is written even when the read found nothing (a 404).
READ_WITH_AUDIT = """WITH page AS MATERIALIZED (
    SELECT q.*, row_number() OVER () AS "_row" FROM ({read}) AS q({names})
), no_wait AS (SELECT set_config('synchronous_commit', %s, true) AS ignored), audit AS (
    INSERT INTO "hospital_auditevent"
        (at, actor, action, resource_type, resource_ids, patient_ids, outcome, client_ip, request_id, client_request_id)
    SELECT now(), %s, %s, %s, {resource_ids}, {patient_ids}, {outcome}, %s::inet, %s, %s
    FROM no_wait LEFT JOIN page ON true
)
SELECT {names} FROM page ORDER BY "_row"
"""
COLUMN_IDS = (
    """coalesce(array_agg(page.{column} ORDER BY page."_row") FILTER (WHERE page."_row" IS NOT NULL), '{{}}')"""
)
FOUND_OR_404 = """CASE WHEN count(page."_row") > 0 THEN 200 ELSE 404 END"""

logger = logging.getLogger(__name__)

ACTION_BY_METHOD = {
    "GET": AuditAction.READ,
    "HEAD": AuditAction.READ,
    "POST": AuditAction.CREATE,
    "PUT": AuditAction.UPDATE,
    "PATCH": AuditAction.UPDATE,
    "DELETE": AuditAction.DELETE,
}


def valid_ip(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """The client's address: REMOTE_ADDR, or the address NUM_PROXIES trusted proxies put in X-Forwarded-For.

    A forwarded value that is not a bare IP address (`unknown`, `host:port`) falls back to REMOTE_ADDR.
    """
    remote_addr = valid_ip(request.META.get("REMOTE_ADDR"))
    num_proxies = settings.REST_FRAMEWORK["NUM_PROXIES"]
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if num_proxies and forwarded:
        addresses = [address.strip() for address in forwarded.split(",")]
        return valid_ip(addresses[-min(num_proxies, len(addresses))]) or remote_addr
    return remote_addr


def record_audit_event(
    request,
    *,
    actor: int | None,
    action: AuditAction,
    resource: AuditResource,
    resource_ids: list[int],
    patient_ids: list[int],
    outcome: int,
) -> None:
    """Write one audit row for `request`: the API's views and the admin both record through here.

    Inside a transaction the row commits with it (durably); outside, it is its own asynchronous commit.
    """
    durable = connection.in_atomic_block or settings.AUDIT_SYNCHRONOUS_READS
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                AUDIT_INSERT if durable else AUDIT_INSERT_ASYNC,
                [
                    actor,
                    action,
                    resource,
                    list(resource_ids),
                    list(patient_ids),
                    outcome,
                    client_ip(request),
                    getattr(request, "request_id", ""),
                    getattr(request, "client_request_id", ""),
                ],
            )
    except Exception:
        AUDIT_WRITE_FAILURES.inc()
        raise


class ReadAudit:
    """Rewrites the next statement, a read, into READ_WITH_AUDIT: the rows and their audit row at once.

    The audit row's resource ids and patient ids are either columns of the read (model attnames: `record_field`,
    `patient_field`) or given (`record_ids`, `patient_ids`); its outcome is given (a page of a list: 200) or, for
    a single record, 200 if the read found it and 404 if not. Used around exactly one query (the paginator's page,
    a detail view's get_object): the first statement it sees is the one rewritten.
    """

    def __init__(
        self,
        view,
        queryset,
        *,
        record_field: str | None = None,
        patient_field: str | None = None,
        record_ids: list[int] | None = None,
        patient_ids: list[int] | None = None,
        outcome: int | None = None,
    ):
        self.view = view
        self.written = False
        self.db = queryset.db
        self.record_field, self.patient_field = record_field, patient_field
        self.record_ids, self.patient_ids = record_ids, patient_ids
        compiler = queryset.query.get_compiler(using=queryset.db)
        compiler.setup_query()
        # The read model's own columns (its table), by attname: joined tables' columns have other aliases.
        table = queryset.model._meta.db_table
        own = {
            column.target.attname: number
            for number, (column, _sql, _alias) in enumerate(compiler.select)
            if getattr(column, "alias", None) == table and hasattr(column, "target")
        }
        self.columns = len(compiler.select)
        self.ids = [self.from_read(own, record_field, record_ids), self.from_read(own, patient_field, patient_ids)]
        self.outcome = outcome

    def run(self, read):
        """`read()`, with its audit row: on the primary in the same statement; on the replica (hospital.db_router),
        which cannot write, the read there and then the row on the primary, committed before the response leaves."""
        if self.db == DEFAULT_DB_ALIAS:
            with connection.execute_wrapper(self):
                return read()
        try:
            result = read()
        except Http404:
            self.write_on_primary([])
            raise
        self.write_on_primary(result if isinstance(result, list) else [result])
        return result

    def write_on_primary(self, rows: list) -> None:
        def ids(field, given):
            return [getattr(row, field) for row in rows] if field is not None else list(given or [])

        view, request = self.view, self.view.request
        record_audit_event(
            request,
            actor=request.user.pk,
            action=view.get_audit_action(),
            resource=view.audit_resource,
            resource_ids=ids(self.record_field, self.record_ids),
            patient_ids=ids(self.patient_field, self.patient_ids),
            outcome=self.outcome if self.outcome is not None else (200 if rows else 404),
        )
        view.audit_written = True

    @staticmethod
    def from_read(own: dict, field: str | None, given: list[int] | None):
        """SQL for an array of ids, and its parameter: a column of the read, or given ids (default none)."""
        if field is not None:
            return COLUMN_IDS.format(column=f'"c{own[field]}"'), ()
        return "%s::bigint[]", (list(given or []),)

    def __call__(self, execute, sql, params, many, context):
        if self.written:
            return execute(sql, params, many, context)
        self.written = True
        (resource_sql, resource_params), (patient_sql, patient_params) = self.ids
        outcome_sql, outcome_params = (FOUND_OR_404, ()) if self.outcome is None else ("%s", (self.outcome,))
        names = ", ".join(f'"c{n}"' for n in range(self.columns))
        statement = READ_WITH_AUDIT.format(
            read=sql, names=names, resource_ids=resource_sql, patient_ids=patient_sql, outcome=outcome_sql
        )
        view, request = self.view, self.view.request
        durable = connection.in_atomic_block or settings.AUDIT_SYNCHRONOUS_READS
        audit_params = (
            "on" if durable else "off",
            request.user.pk,
            view.get_audit_action(),
            view.audit_resource,
            *resource_params,
            *patient_params,
            *outcome_params,
            client_ip(request),
            getattr(request, "request_id", ""),
            getattr(request, "client_request_id", ""),
        )
        try:
            result = execute(statement, (*params, *audit_params), many, context)
        except Exception:
            AUDIT_WRITE_FAILURES.inc()  # the read and its row are one statement: neither happened
            raise
        view.audit_written = True
        return result


class AuditedView(ReplicaReadsMixin, ThrottleBeforePermissionsMixin):
    """Mixin for API views: records who did what to which records, and how it ended.

    Views set `audit_resource`, and `audit_action` when the HTTP method does not say it. The ids default to
    those in the response body (each row of a list), else the `pk` in the URL; views whose ids live elsewhere
    override `audit_ids()`. Views that authenticate the user themselves (login, refresh) set `audit_actor_id`.
    """

    audit_resource: AuditResource
    audit_action: AuditAction | None = None
    audit_actor_id: int | None = None
    # Reads whose audit row can be written by the read's own statement (ReadAudit): `audit_in_read` on; the
    # rows' patient ids are their `audit_patient_field` (None: no patients). Other views audit after the response.
    audit_in_read: bool = False
    audit_patient_field: str | None = None
    audit_written = False

    def reads_with_audit(self) -> bool:
        return self.audit_in_read and self.request.method in ("GET", "HEAD") and self.request.user.is_authenticated

    def page_audit(self, queryset) -> ReadAudit | None:
        """The paginator asks: a ReadAudit for this list's page, or None to audit after the response."""
        if not self.reads_with_audit():
            return None
        return ReadAudit(self, queryset, record_field="id", patient_field=self.audit_patient_field, outcome=200)

    def get_object(self):
        """A single record's read writes its audit row (200, or 404 if it is not found or not visible), unless
        If-None-Match may make it a 304: that outcome is only known once the record is read."""
        if not self.reads_with_audit() or "If-None-Match" in self.request.headers or "pk" not in self.kwargs:
            return super().get_object()
        url_ids = self.url_ids()
        queryset = self.filter_queryset(self.get_queryset())
        if self.audit_patient_field == "id":  # a patient: its id is the patient id, found or not
            audit = ReadAudit(self, queryset, record_ids=url_ids, patient_ids=url_ids)
        else:
            audit = ReadAudit(self, queryset, record_ids=url_ids, patient_field=self.audit_patient_field)
        return audit.run(super().get_object)

    def dispatch(self, request, *args, **kwargs):
        if request.method == "OPTIONS":
            return super().dispatch(request, *args, **kwargs)
        try:
            if request.method in SAFE_METHODS:
                response = super().dispatch(request, *args, **kwargs)
                self.write_audit_event(response)
                return response
            with transaction.atomic():
                response = super().dispatch(request, *args, **kwargs)
                self.write_audit_event(response)
            return response
        except Exception as error:
            self.write_failure_event(error)
            raise

    def write_failure_event(self, error: Exception) -> None:
        """An unhandled error (a 500) still leaves a row, committed on its own after the request's
        transaction was rolled back. Not while the database is unreachable: the row could not be written, and
        trying would delay the 503 by a connection timeout."""
        if is_database_unavailable(error):
            return
        failed = Response(status=status.HTTP_500_INTERNAL_SERVER_ERROR)
        # Only a user already authenticated: asking DRF for `request.user` now could raise again.
        user = getattr(self.request, "_user", None)
        if self.audit_actor_id is None and user is not None and user.is_authenticated:
            self.audit_actor_id = user.pk
        try:
            with transaction.atomic():
                self.write_audit_event(failed)
        except Exception as audit_error:
            logger.warning("the audit row of a failed request could not be written: %s", type(audit_error).__name__)

    def write_audit_event(self, response) -> None:
        if self.audit_written and response.status_code in (status.HTTP_200_OK, status.HTTP_404_NOT_FOUND):
            return  # by the read itself (ReadAudit)
        if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS and not self.request.user.is_authenticated:
            # A throttled anonymous request leaves no row, or the table would grow at the client's rate.
            return
        resource_ids, patient_ids = self.audit_ids(response)
        actor = self.audit_actor_id
        if actor is None and self.request.user.is_authenticated:
            actor = self.request.user.pk
        record_audit_event(
            self.request,
            actor=actor,
            action=self.get_audit_action(),
            resource=self.audit_resource,
            resource_ids=resource_ids,
            patient_ids=patient_ids,
            outcome=response.status_code,
        )

    def get_audit_action(self) -> AuditAction:
        if self.audit_action:
            return self.audit_action
        if self.request.method in ("GET", "HEAD") and isinstance(self, ListModelMixin):
            return AuditAction.LIST
        # Methods no view serves (TRACE, PROPFIND...) end in a 405, recorded as a read attempt.
        return ACTION_BY_METHOD.get(self.request.method, AuditAction.READ)

    def audit_ids(self, response) -> tuple[list[int], list[int]]:
        """(resource ids, patient ids) the request touched."""
        ids = self.response_ids(response)
        return ids, ids if self.audit_resource == AuditResource.PATIENT else []

    def response_ids(self, response) -> list[int]:
        """The ids in a successful response body, else the `pk` the URL names."""
        data = getattr(response, "data", None)
        if response.status_code < 300:
            if isinstance(data, list):
                return [row["id"] for row in data]
            if isinstance(data, dict) and isinstance(data.get("id"), int):
                return [data["id"]]
        return self.url_ids()

    def url_ids(self, name="pk") -> list[int]:
        """The id the URL names, if it can be a row's id at all (bigint)."""
        value = self.kwargs.get(name)
        return [value] if value is not None and 0 < value <= MAX_ID else []
