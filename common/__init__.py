"""Small Django helpers every app shares, below every app: they import no app.

`admin` (read-only admin bases, a service's result adopted by the admin), `api` (the
strict serializer, the API's error shape, exact money fields, file answers), `fields`
(an exact decimal model field) and `tasks` (Celery tasks sent by name after commit).
"""
