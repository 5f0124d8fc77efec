"""Stand-ins for the services tokentill talks to, run on loopback by the tests and the demo."""
