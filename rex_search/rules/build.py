"""Turn `RulesConfig` into the ordered list of rule objects."""

from __future__ import annotations

from rex_search.config import RULE_NAMES, RulesConfig
from rex_search.errors import ConfigError
from rex_search.rules.availability import Availability
from rex_search.rules.base import Rule
from rex_search.rules.brand import BrandExclusion, BrandPreference
from rex_search.rules.collapse import Collapse
from rex_search.rules.diversity import Diversity
from rex_search.rules.pinning import Pinning
from rex_search.rules.size import SizeMatch


def build_rules(config: RulesConfig) -> list[Rule]:
    unknown = [n for n in config.order if n not in RULE_NAMES]
    if unknown:
        raise ConfigError(f"unknown rule(s) {', '.join(unknown)} in [rules] order; valid: "
                          f"{', '.join(RULE_NAMES)}")
    rules: list[Rule] = []
    for name in config.order:
        if name == "brand_exclusion":
            rules.append(BrandExclusion(tuple(config.always_exclude_brands)))
        elif name == "availability":
            rules.append(Availability(config.availability, config.unknown_stock,
                                      config.demote_margin))
        elif name == "collapse" and config.collapse != "off":
            rules.append(Collapse(config.collapse_field or ""))
        elif name == "brand_preference":
            rules.append(BrandPreference(config.intent_margin))
        elif name == "size_match":
            rules.append(SizeMatch(config.size_margin))
        elif name == "diversity" and config.diversity != "off":
            rules.append(Diversity(config.diversity, config.per_brand, config.diversity_window,
                                   config.max_relevance_drop, config.mmr_lambda))
        elif name == "pinning" and config.pins:
            rules.append(Pinning({q: tuple(ids) for q, ids in config.pins.items()}))
    return rules
