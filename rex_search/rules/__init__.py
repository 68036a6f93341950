"""Business rules applied after reranking; each records its effect on every product it touches."""

from rex_search.rules.base import Ranked, Rule, RuleContext

__all__ = ["Ranked", "Rule", "RuleContext"]
