"""What the contracts services share to refuse a request: errors as `{field: messages}`,
instants that must carry their offset, and instants as the messages write them."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeAlias

from django.core.exceptions import ValidationError

#: What a ValidationError is raised with: {field: a message, or the errors of a check}.
Errors: TypeAlias = dict[str, Any]

INSTANT_MESSAGE = "Give a date and time with its UTC offset, e.g. 2026-01-01T00:00:00Z."


def instant_errors(*, required: tuple[str, ...] = (), **instants: object) -> Errors:
    """Instants must be timezone-aware datetimes: a naive one has no single meaning."""
    errors: Errors = {}
    for name, value in instants.items():
        if value is None:
            if name in required:
                errors[name] = "This field is required."
        elif not isinstance(value, datetime) or value.utcoffset() is None:
            errors[name] = INSTANT_MESSAGE
    return errors


def errors_of(check: Callable[[], object]) -> Errors:
    """The `{field: [errors]}` that `check()` raises, or {}."""
    try:
        check()
    except ValidationError as error:
        return error.update_error_dict({})
    return {}


def when(moment: datetime) -> str:
    """An instant as messages write it: `2026-11-01 00:00 UTC`."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
