"""The price builder: how billing ops price a model in the admin, without writing code.

One page asks for what a person knows: the model (or a pattern such as `gpt-4o*`) and
its prices per million input, output and cached-input tokens, plus rows for any other
metric. The formula that charges them is written from those rates
(`pricing.standard.formula_for_rates`) and shown under "Advanced", where it may be
written by hand instead. Beside the form, a live preview prices a sample call, term by
term, exactly as the rating engine will.

The forms only read and check what was typed (the models' own `full_clean`, run early,
so every mistake on the page is shown at once); every write is a call to
`contracts.services`, so the admin holds no pricing rules of its own.

- `forms`: the fields and forms that read a price, and a stored price read back into them.
- `preview`: the live preview's JSON for the fields as they are typed.
- `views`: RateCardAdmin's pages that use them (builder, preview, clone, schedule).
"""
