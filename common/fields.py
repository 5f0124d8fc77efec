"""Model fields for exact money."""

from decimal import Decimal
from typing import TypedDict

from django.db import models
from django.db.models import lookups

from pricing.money import RATED_PLACES


class DecimalDigits(TypedDict):
    """A decimal column's size, passed to a field as `**digits`."""

    max_digits: int
    decimal_places: int


#: The digits of every exact amount stored: 12 decimal places, 20 before the point.
RATED_DIGITS: DecimalDigits = {"max_digits": 32, "decimal_places": RATED_PLACES}


class ExactDecimalField(models.DecimalField):
    """A DecimalField that is exact on SQLite too.

    SQLite stores a NUMERIC column as a REAL when it can, keeping 15 significant digits:
    99999999.123456789012 would come back as 99999999.12345679. Rated amounts carry 12
    decimal places, so on SQLite this field is stored as text and read back as the same
    Decimal; on PostgreSQL it is a plain numeric. SQL arithmetic on it is exact on
    PostgreSQL only: code that sums it in SQL does so there, and in Python on SQLite.
    """

    def get_internal_type(self) -> str:
        # Not "DecimalField": the SQLite backend would convert values through float.
        return "ExactDecimalField"

    def db_type(self, connection) -> str:
        if connection.vendor == "sqlite":
            return "text"
        return f"numeric({self.max_digits}, {self.decimal_places})"

    def from_db_value(self, value, expression, connection):
        if value is None or isinstance(value, Decimal):
            return value
        return Decimal(value)


class _SqliteNumericComparison:
    """On SQLite, compare as numbers: the column holds text, and text sorts after every
    number there ('0.000000000000' > 0 would be true). REAL keeps 15 significant digits,
    plenty for the sign and size checks these lookups serve."""

    def as_sqlite(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        operator = connection.operators[self.lookup_name] % f"CAST({rhs} AS REAL)"
        return f"CAST({lhs} AS REAL) {operator}", [*lhs_params, *rhs_params]


for _lookup in (lookups.GreaterThan, lookups.GreaterThanOrEqual, lookups.LessThan,
                lookups.LessThanOrEqual):  # fmt: skip
    ExactDecimalField.register_lookup(
        type(f"Exact{_lookup.__name__}", (_SqliteNumericComparison, _lookup), {})
    )
