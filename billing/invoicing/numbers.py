"""Gapless numbers for invoices (INV-000001) and credit notes (CN-000001)."""

from ..models import InvoiceSequence


def number_next(name: str, prefix: str) -> str:
    """The sequence's next number, taken under its row lock in the caller's transaction."""
    InvoiceSequence.objects.get_or_create(name=name, defaults={"prefix": prefix})
    sequence = InvoiceSequence.objects.select_for_update().get(name=name)
    number = sequence.next_number
    InvoiceSequence.objects.filter(pk=sequence.pk).update(next_number=number + 1)
    return f"{sequence.prefix}{number:06d}"
