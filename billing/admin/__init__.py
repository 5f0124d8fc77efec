"""Billing in the admin: rated usage (`usage`, with re-rating and price corrections from
`rerating`), invoices, periods and credit notes (`invoices`), and what Stripe knows
(`stripe`). Importing them registers them."""

from . import invoices, stripe, usage  # noqa: F401
