"""Billing in the admin: rated usage (`usage`, with re-rating and price corrections from
`rerating`), invoices, periods and credit notes (`invoices`), and what Stripe knows
(`stripe`), and the customer page's billing sections (`customer_page`). Importing them
registers them."""

from . import customer_page, invoices, seller, stripe, usage  # noqa: F401
