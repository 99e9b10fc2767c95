"""Whether a run's cost can be told, and the prices it is told at.

A cost is shown only where the prices are known: a Kimi model on Moonshot's own API (its published
prices, kimicode/llm/profiles.py), or a model the user priced in config.toml::

    [prices."my-model"]      # USD per million tokens
    input = 0.50
    cached_input = 0.05      # optional; defaults to input
    output = 2.00

Anywhere else (a local server, a proxy, another vendor) the same model name may cost something else or
nothing, so runs count tokens only: the REPL shows no dollar figure and json's ``cost_usd`` is null.
"""

from __future__ import annotations

from dataclasses import replace

from kimicode.config import Config
from kimicode.llm.endpoint import vendor_of
from kimicode.llm.profiles import ModelProfile, profile_for

# Costs in json are rounded to this many decimals of a dollar (a hundredth of a cent's hundredth).
COST_DECIMALS = 6


def prices_known(config: Config) -> bool:
    if config.model in config.prices:
        return True
    return vendor_of(config.base_url) == "moonshot" and profile_for(config.model).known


def priced_profile(profile: ModelProfile, config: Config) -> ModelProfile:
    """``profile`` with the prices this run counts at: the user's for the model, the published ones on
    Moonshot's API, else none (the run's cost stays 0 and is not shown)."""
    own = config.prices.get(config.model)
    if own is not None:
        return replace(profile, price_input=own[0], price_cached_input=own[1], price_output=own[2])
    if prices_known(config):
        return profile
    return replace(profile, price_input=0.0, price_cached_input=0.0, price_output=0.0)


def shown_cost(config: Config, dollars: float) -> float | None:
    """A cost for json: rounded, or None where the prices are not known."""
    return round(dollars, COST_DECIMALS) if prices_known(config) else None
