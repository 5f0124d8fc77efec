"""tokentill's PostgreSQL backend: Django's, with a health check that costs no round trip
on a connection in steady use (see base.DatabaseWrapper)."""
