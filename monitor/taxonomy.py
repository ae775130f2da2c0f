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


CATEGORY_REMINDERS: dict[Category, str] = {
    Category.ABSOLUTE_CLAIM: "请避免“最好”“第一”“最低”这类绝对化说法，广告法禁止使用，请改用可以证明的具体描述。",
    Category.MEDICAL_CLAIM: "请勿说商品能预防或治疗疾病、替代药物，普通商品不得宣传医疗功效。",
    Category.COSMETIC_EFFICACY: "请勿宣传美白、祛斑、防脱等特殊功效，除非商品已取得特殊化妆品注册证。",
    Category.PRECIOUS_METAL_CLAIM: "请勿口头宣称金银纯度，请以检测证书和标签上的标注为准。",
    Category.GEM_AUTHENTICITY_CLAIM: "请勿口头保证天然、品级或产地，请以鉴定证书为准。",
    Category.COLLECTIBLE_INVESTMENT: "请勿把商品说成投资品或承诺升值、回报，这类宣传不被允许。",
    Category.OFFICIAL_ENDORSEMENT: "请勿声称官方、国家机关或专家推荐认证，除非能出示证明。",
    Category.FALSE_PRICE: "请勿虚构原价或制造虚假紧迫感，价格对比必须真实可查。",
    Category.PRIVATE_TRANSACTION: "请勿引导观众加联系方式或私下交易，所有交易须在平台内完成。",
    Category.SUPERSTITION: "请勿宣传开光、辟邪、招财等迷信功效。",
}
"""The anchor's reminder for a claim found without a lexicon entry (classifier alerts)."""
