"""Invoicing: the lines a period produces (`draft`), the preview of the current period
(`preview`), closing periods into invoices (`closing`), credit notes (`credit_notes`),
gapless numbers (`numbers`) and the invoice as a PDF (`pdf`)."""
