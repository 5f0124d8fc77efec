"""The demo: `manage.py load_demo` (an admin login, four customers with rate cards,
contracts and credits, an API key and a week of usage) and `load_portal_demo` (portal
logins). The only app allowed to import every other app."""
