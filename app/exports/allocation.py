"""Money split over lines: an amount in another currency, settled in DKK, spread over its lines.

Øre are integers throughout (never a float); the parts always add up to the total.
"""

from __future__ import annotations

from collections.abc import Sequence


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` over `weights` in proportion; the largest remainders take the leftover units.

    The parts always sum exactly to `total` (works for negative amounts and mixed signs).
    """
    base = sum(weights)
    if base == 0:
        raise ValueError("cannot allocate over weights summing to 0")
    sign = -1 if base < 0 else 1
    parts: list[int] = []
    remainders: list[int] = []
    for weight in weights:
        quotient, remainder = divmod(total * weight * sign, base * sign)
        parts.append(quotient)
        remainders.append(remainder)
    leftover = total - sum(parts)
    for i in sorted(range(len(parts)), key=lambda i: (-remainders[i], i))[:leftover]:
        parts[i] += 1
    return parts


def dkk_line_amounts(currency: str, dkk_amount: int, line_amounts: Sequence[int]) -> list[int]:
    """Each line's DKK amount: the lines as sent when the item is in DKK, else `dkk_amount`
    (the settled amount) split in proportion to them."""
    if not line_amounts:
        return []
    return list(line_amounts) if currency == "DKK" else allocate(dkk_amount, line_amounts)
