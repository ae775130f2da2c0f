"""Risk categories and severities from ``shared/TAXONOMY.md`` (a public contract).

Category IDs may be added but never renamed or removed.
"""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """The ten risk categories of TAXONOMY.md."""

    ABSOLUTE_CLAIM = "absolute_claim"
    MEDICAL_CLAIM = "medical_claim"
    COSMETIC_EFFICACY = "cosmetic_efficacy"
    PRECIOUS_METAL_CLAIM = "precious_metal_claim"
    GEM_AUTHENTICITY_CLAIM = "gem_authenticity_claim"
    COLLECTIBLE_INVESTMENT = "collectible_investment"
    OFFICIAL_ENDORSEMENT = "official_endorsement"
    FALSE_PRICE = "false_price"
    PRIVATE_TRANSACTION = "private_transaction"
    SUPERSTITION = "superstition"


class Severity(StrEnum):
    """Alert severity, ordered ``info < warning < violation``."""

    INFO = "info"
    WARNING = "warning"
    VIOLATION = "violation"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def raised(self, steps: int = 1) -> Severity:
        """This severity moved ``steps`` levels (negative lowers), clamped to the scale."""
        order = list(_SEVERITY_RANK)
        return order[max(0, min(len(order) - 1, self.rank + steps))]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.VIOLATION: 2}

CATEGORIES: tuple[str, ...] = tuple(c.value for c in Category)
