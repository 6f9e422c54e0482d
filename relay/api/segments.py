"""/v1/segments: the catalogue, streamed exports, and membership sync to Customer.io."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from relay import timeutil
from relay.api.responses import json_response
from relay.api.routing import APP_PARAM, Param, Route, caller
from relay.api.state import SETTINGS, STORE
from relay.errors import FieldError, NotFound, ValidationFailed
from relay.models.common import Problem
from relay.models.segments import SegmentInfo, SyncResult
from relay.segments.definitions import MAX_DAYS, SEGMENTS, Segment
from relay.segments.formats import FORMATS, encode_rows, header
from relay.segments.query import SegmentQuery, build_query

RESERVED_QUERY = frozenset({"format", "as_of", "app"})


@dataclass(frozen=True, slots=True)
class SegmentRequest:
    segment: Segment
    values: dict[str, int]
    as_of: float
    format: str


def find_segment(name: str) -> Segment:
    segment = SEGMENTS.get(name)
    if segment is None:
        known = ", ".join(SEGMENTS)
        raise NotFound(f"no segment {name!r}; known segments: {known}")
    return segment


def parse_segment_request(name: str, query: dict[str, str], now: float) -> SegmentRequest:
    """Validate a segment name and its query parameters; 404/422 name what is wrong."""
    segment = find_segment(name)
    errors: list[FieldError] = []
    for key in query:
        if key not in segment.params and key not in RESERVED_QUERY:
            known = ", ".join(sorted(segment.params)) or "none"
            errors.append(FieldError(key, f"unknown parameter (this segment takes: {known})"))
    fmt = query.get("format", "csv")
    if fmt not in FORMATS:
        errors.append(FieldError("format", "must be csv or jsonl"))
    values = dict(segment.params)
    for key in segment.params:
        if key in query:
            raw = query[key]
            if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
                errors.append(FieldError(key, f"must be a whole number from 1 to {MAX_DAYS}"))
            else:
                values[key] = int(raw)
    if "lapsed_days" in values and values["lapsed_days"] <= values["days"]:
        errors.append(FieldError("lapsed_days", "must be greater than days"))
    as_of = now
    if "as_of" in query:
        try:
            raw_as_of = query["as_of"]
            as_of = timeutil.parse_timestamp(_number_or_text(raw_as_of))
        except ValueError as exc:
            errors.append(FieldError("as_of", str(exc)))
    if errors:
        raise ValidationFailed(f"{errors[0].path}: {errors[0].message}", errors)
    return SegmentRequest(segment, values, as_of, fmt)


def _number_or_text(value: str) -> str | float:
    try:
        return float(value)
    except ValueError:
        return value


def segment_query(request: web.Request, parsed: SegmentRequest, **kw: object) -> SegmentQuery:
    settings = request.app[SETTINGS]
    return build_query(
        parsed.segment,
        parsed.values,
        parsed.as_of,
        caller(request).app_id,
        settings.attribution.conversion_events,
        **kw,  # type: ignore[arg-type]
    )


async def list_segments(request: web.Request) -> web.Response:
    """The built-in segments with their parameters and defaults."""
    return json_response(
        [SegmentInfo(s.name, s.description, dict(s.params)) for s in SEGMENTS.values()]
    )


async def export_segment(request: web.Request) -> web.StreamResponse:
    """Stream the segment's profiles as CSV (header row first) or JSON Lines."""
    parsed = parse_segment_request(request.match_info["name"], dict(request.query), timeutil.now())
    return await stream_export(request, parsed, segment_query(request, parsed))


async def stream_export(
    request: web.Request,
    parsed: SegmentRequest,
    query: SegmentQuery,
    headers: Mapping[str, str] | None = None,
) -> web.StreamResponse:
    """The export as an attachment, a chunk of rows at a time (also the dashboard's)."""
    response = web.StreamResponse(
        headers={
            "Content-Type": FORMATS[parsed.format],
            "Content-Disposition": f'attachment; filename="{parsed.segment.name}.{parsed.format}"',
            **(headers or {}),
        }
    )
    await response.prepare(request)
    if parsed.format == "csv":
        await response.write(header("csv"))
    async for rows in request.app[STORE].segment_rows(query):
        await response.write(encode_rows(parsed.format, rows))
    await response.write_eof()
    return response


async def sync_segment(request: web.Request) -> web.Response:
    """Write the segment's membership to Customer.io (through the outbox)."""
    settings = request.app[SETTINGS]
    parsed = parse_segment_request(request.match_info["name"], dict(request.query), timeutil.now())
    if not settings.customerio.has_track_credentials:
        raise ValidationFailed.at(
            "customerio", "sync needs [customerio] site_id and api_key in relay's config"
        )
    query = segment_query(request, parsed, columns=("customer_id",))
    added, removed = await request.app[STORE].sync_segment(
        caller(request).app_id,
        parsed.segment.name,
        query,
        settings.segments.customerio_ids.get(parsed.segment.name),
    )
    return json_response(SyncResult(added, removed))


NAME_PARAM = Param("name", "path", "Segment name (GET /v1/segments lists them).")
SEGMENT_PARAMS = (
    Param("as_of", "query", "RFC 3339 or unix seconds; default now.", required=False),
    Param("days", "query", "Window in days.", {"type": "integer", "minimum": 1}, False),
    Param(
        "min_deliveries", "query", "Minimum deliveries.", {"type": "integer", "minimum": 1}, False
    ),
    Param(
        "lapsed_days", "query", "Longer window in days.", {"type": "integer", "minimum": 1}, False
    ),
)

ROUTES = [
    Route(
        "GET",
        "/v1/segments",
        list_segments,
        "List segments",
        role="admin",
        responses={200: list[SegmentInfo]},
        params=(APP_PARAM,),
    ),
    Route(
        "GET",
        "/v1/segments/{name}/export",
        export_segment,
        "Export a segment",
        role="admin",
        responses={200: bytes, 404: Problem, 422: Problem},
        params=(
            NAME_PARAM,
            Param(
                "format",
                "query",
                "csv (default) or jsonl.",
                {"type": "string", "enum": ["csv", "jsonl"]},
                False,
            ),
            *SEGMENT_PARAMS,
            APP_PARAM,
        ),
        content_types=tuple(media.split(";")[0] for media in FORMATS.values()),
    ),
    Route(
        "POST",
        "/v1/segments/{name}/sync",
        sync_segment,
        "Sync a segment to Customer.io",
        role="admin",
        responses={200: SyncResult, 404: Problem, 422: Problem},
        params=(NAME_PARAM, *SEGMENT_PARAMS, APP_PARAM),
    ),
]
