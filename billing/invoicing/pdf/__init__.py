"""The customer's documents as PDF: invoices (`invoice`) and credit notes (`credit_note`),
on one page layout (`document`) with embedded TrueType fonts (`fonts`)."""
