"""The model facts of one run, derived once where the run is assembled and handed down from there:
the model's profile, what is known about the endpoint, and where that knowledge is kept."""

from __future__ import annotations

from dataclasses import dataclass, replace

from kimicode.config import Config
from kimicode.llm.endpoint import EndpointProfile, EndpointStore
from kimicode.llm.prices import priced_profile
from kimicode.llm.profiles import ModelProfile, profile_for


@dataclass
class ModelSetup:
    profile: ModelProfile
    endpoint: EndpointProfile
    store: EndpointStore

    def notices(self) -> list[str]:
        """Lines for the user (an unreadable endpoints.json), each said once."""
        problem, self.store.problem = self.store.problem, None
        return [problem] if problem else []

    def for_model(self, config: Config) -> ModelSetup:
        """The same endpoint with another model (the REPL's /model)."""
        return ModelSetup(fitted_profile(config, self.endpoint), self.endpoint, self.store)


def fitted_profile(config: Config, endpoint: EndpointProfile) -> ModelProfile:
    """The model's profile with what this run knows better: the user's overrides, then the window this
    endpoint reported (a server may run a model with less context than the model has), and no vision
    where the endpoint refused the model's images (no screenshot tool is offered then)."""
    profile = priced_profile(profile_for(config.model), config)
    window = config.context_window or endpoint.windows.get(config.model, 0)
    if window:
        profile = replace(profile, context_window=window)
    if config.max_output_tokens:
        profile = replace(profile, max_output_tokens=config.max_output_tokens)
    if not endpoint.takes_images(config.model):
        profile = replace(profile, vision=False, video=False)
    return profile


def model_setup(config: Config) -> ModelSetup:
    store = EndpointStore(config.home)
    endpoint = store.load(config.base_url)
    return ModelSetup(fitted_profile(config, endpoint), endpoint, store)
