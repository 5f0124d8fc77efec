"""django-stubs' mypy plugin, handed a placeholder SECRET_KEY when the environment has none.

The plugin imports config.settings as manage.py does, and the settings refuse to load
without a SECRET_KEY (unless DEBUG is on). Type checking needs no secret, so a bare `mypy`
runs without one; a SECRET_KEY in the environment is left as it is.
"""

import os

os.environ.setdefault("SECRET_KEY", "mypy-type-checking-only-never-a-real-secret-key")

from mypy_django_plugin.main import plugin

__all__ = ["plugin"]
