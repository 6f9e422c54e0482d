"""Readable validation errors for bodies checked against Customer.io's OpenAPI documents.

Why this exists: the documents express "one of these operations" as ``anyOf``/``oneOf`` lists
of up to a dozen variants, and for a bad operation jsonschema reports only "<the whole operation>
is not valid under any of the given schemas", which tells a forwarder author nothing. Each
variant pins a discriminating field (``type``, ``action`` -- the documents even declare
``discriminator: action`` -- or ``event`` for Pipelines semantic events), so we read them the way
Customer.io dispatches: skip variants whose discriminator does not match and report the errors of
the one that does, e.g. ``batch.0.device.platform: 'platform' is a required property``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, cast

from jsonschema.exceptions import ValidationError

DISCRIMINATORS = frozenset({"type", "action", "event"})
_COMBINATORS = frozenset({"anyOf", "oneOf"})
_MAX_MESSAGE = 300
_MAX_VARIANTS = 4


class Issue(NamedTuple):
    """One problem: ``field`` is a dotted path into the body ("" for the body itself)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field or '(root)'}: {self.message}"


def issues_from(errors: Iterable[ValidationError]) -> list[Issue]:
    """Readable issues for jsonschema's errors, de-duplicated, in document order."""
    seen: dict[Issue, None] = {}
    for error in errors:
        for issue in _render(error):
            seen.setdefault(issue, None)
    return list(seen)


def _render(error: ValidationError) -> list[Issue]:
    if error.validator in _COMBINATORS:
        return _render_union(error)
    field = _field(error.absolute_path)
    if error.validator == "required":
        missing = _missing_property(error)
        if missing is not None:
            field = f"{field}.{missing}" if field else missing
    return [Issue(field, _clip(error.message))]


def _render_union(error: ValidationError) -> list[Issue]:
    """Errors of the variant the discriminators select; else what each candidate lacks."""
    if not error.context:  # oneOf matched several variants
        message = "matches more than one oneOf variant; exactly one must match"
        return [Issue(_field(error.absolute_path), message)]
    branches = _branches(error)
    still_open = {i: errors for i, errors in branches.items() if not _excluded(errors)}
    if not still_open:
        return _discriminator_issues(list(branches.values()))
    rendered = {i: issues_from(errors) for i, errors in still_open.items()}
    distinct = {tuple(issues) for issues in rendered.values()}
    if len(distinct) == 1:  # one candidate, or all fail the same way (e.g. not an object)
        return list(distinct.pop())
    return [_summary(error, rendered)]


def _branches(error: ValidationError) -> dict[int, list[ValidationError]]:
    """The combinator's sub-errors grouped by the variant (index) that produced them."""
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context or ():
        index = sub.relative_schema_path[0]
        branches.setdefault(int(index), []).append(sub)
    return branches


def _is_discriminator_failure(error: ValidationError) -> bool:
    path = error.relative_path
    return error.validator in ("enum", "const") and len(path) == 1 and path[0] in DISCRIMINATORS


def _excluded(errors: Sequence[ValidationError]) -> bool:
    """Whether a variant is ruled out by a discriminator (directly or in all nested variants)."""
    if any(_is_discriminator_failure(error) for error in errors):
        return True
    if len(errors) == 1 and errors[0].validator in _COMBINATORS and errors[0].context:
        return all(_excluded(sub) for sub in _branches(errors[0]).values())
    return False


def _leaf_failures(errors: Sequence[ValidationError]) -> list[list[ValidationError]]:
    """Per innermost variant, the discriminator failures that rule it out."""
    direct = [error for error in errors if _is_discriminator_failure(error)]
    if direct:
        return [direct]
    if len(errors) == 1 and errors[0].validator in _COMBINATORS:
        return [leaf for sub in _branches(errors[0]).values() for leaf in _leaf_failures(sub)]
    return []


def _discriminator_issues(branches: list[list[ValidationError]]) -> list[Issue]:
    """No variant matches the discriminators: name the allowed values of the offending field.

    Reports the fields every variant rejects (``action`` when ``type`` was fine), listing the
    values allowed by the variants that reject nothing else; if no field is rejected
    everywhere, every rejected field.
    """
    leaves = [leaf for errors in branches for leaf in _leaf_failures(errors)]
    fields = [{_field(failure.absolute_path) for failure in leaf} for leaf in leaves]
    reported = set.intersection(*fields) if fields else set()
    reported = reported or set().union(*fields)
    closest = [leaf for leaf, names in zip(leaves, fields, strict=True) if names <= reported]
    allowed: dict[str, list[Any]] = {}
    instances: dict[str, Any] = {}
    for failure in (f for leaf in closest or leaves for f in leaf):
        field = _field(failure.absolute_path)
        values = _keyword_value(failure)
        for value in values if failure.validator == "enum" else [values]:
            if value not in allowed.setdefault(field, []):
                allowed[field].append(value)
        instances[field] = failure.instance
    return [
        Issue(field, _clip(f"{instances[field]!r} is not one of {allowed[field]!r}"))
        for field in sorted(allowed)
    ]


def _summary(error: ValidationError, rendered: dict[int, list[Issue]]) -> Issue:
    """Several variants could apply: say what (first) each one lacks."""
    variants = _keyword_value(error)
    parts = [f"{_title(variants[i], i)} ({issues[0]})" for i, issues in rendered.items()]
    more = len(parts) - _MAX_VARIANTS
    text = "; ".join(parts[:_MAX_VARIANTS]) + (f"; and {more} more" if more > 0 else "")
    return Issue(_field(error.absolute_path), _clip(f"matches none of the variants: {text}"))


def _title(variant: Any, index: int) -> str:
    if isinstance(variant, dict):
        if "title" in variant:
            return str(variant["title"])
        if "$ref" in variant:
            return str(variant["$ref"]).rsplit("/", 1)[-1]
    return f"variant {index}"


def _missing_property(error: ValidationError) -> str | None:
    """The property a ``required`` error is about (jsonschema reports one per property)."""
    for name in _keyword_value(error):
        if error.message == f"{name!r} is a required property":
            return str(name)
    return None


def _keyword_value(error: ValidationError) -> Any:
    """The failing keyword's value in the schema (``enum``'s values, ``required``'s names...).

    Typed ``Any | Unset``: only hand-built errors leave it unset, never one a validator yields.
    """
    return cast(Any, error.validator_value)


def _field(path: Iterable[Any]) -> str:
    return ".".join(str(part) for part in path)


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"
