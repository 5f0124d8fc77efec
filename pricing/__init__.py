"""The money rules of tokentill, once, in pure Python (no Django; enforced by lint-imports).

`money` (the two roundings and money as text), `formula` (the formula language), `rating`
(per-event amounts, tiered lines, a period's charges), `invoice` (an invoice's derived
lines, from its face), `credits` (a period's credits following its billable usage),
`line_text` (what an invoice line says to the customer),
`tiers` (tier and proration maths), `matching` (which price an event gets), `cycles`
(billing periods), `metrics` (metric names), `standard` (formulas written from standard
rates) and `preview` (a sample call's cost, by the rating rule). Every app uses these;
none writes a money rule of its own.
"""
