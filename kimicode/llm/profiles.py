"""What kimicode knows about each model: context size, media support, sampling rules, prices."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelProfile:
    name: str
    context_window: int = 262_144
    max_output_tokens: int = 32_768
    vision: bool = True
    video: bool = True
    thinking: bool = True
    # (temperature, top_p) in thinking / instant mode; None = let the server choose.
    sampling_thinking: tuple[float, float] | None = (1.0, 0.95)
    sampling_instant: tuple[float, float] | None = (0.6, 0.95)
    image_max_tokens: int = 4096
    # False for a model kimicode has no facts about: the defaults below are guesses, and what the endpoint
    # reports (GET /models, its errors) wins over them.
    known: bool = True
    # USD per million tokens.
    price_input: float = 0.60
    price_cached_input: float = 0.10
    price_output: float = 3.00

    def sampling(self, thinking: bool) -> tuple[float, float] | None:
        return self.sampling_thinking if thinking else self.sampling_instant

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> float:
        uncached = max(prompt_tokens - cached_tokens, 0)
        return (
            uncached * self.price_input
            + cached_tokens * self.price_cached_input
            + completion_tokens * self.price_output
        ) / 1_000_000


_PROFILES: dict[str, ModelProfile] = {
    "kimi-k2.5": ModelProfile("kimi-k2.5"),
    "kimi-k2-thinking": ModelProfile(
        "kimi-k2-thinking", vision=False, video=False, price_input=0.60, price_output=2.50
    ),
    "kimi-k2-turbo-preview": ModelProfile(
        "kimi-k2-turbo-preview", vision=False, video=False, thinking=False, price_input=1.15, price_output=8.00
    ),
}


def known_models() -> list[str]:
    """The models kimicode has a profile for (a model picker's choices; any other name works too)."""
    return list(_PROFILES)


def profile_for(model: str) -> ModelProfile:
    """The known profile (also for ``org/Kimi-K2.5`` as vLLM names it), or a permissive one for other
    models: no sampling overrides, no prices, and no thinking switch, since how (and whether) another model
    turns thinking on is not known; reasoning it streams is still shown and sent back."""
    if model in _PROFILES:
        return _PROFILES[model]
    base = model.rsplit("/", 1)[-1].lower()
    for name, profile in _PROFILES.items():
        if name == base:
            return profile
    return ModelProfile(
        model,
        context_window=131_072,
        thinking=False,
        sampling_thinking=None,
        sampling_instant=None,
        price_input=0.0,
        price_cached_input=0.0,
        price_output=0.0,
        known=False,
    )
