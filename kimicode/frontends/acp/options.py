"""What an editor offers its user to choose in a session: the modes, the approval stance, the model (as
ACP session modes and config options) and the slash commands.

Invariants:
- Pure: these build ACP values from the config and the stance; nothing here changes a session.
- The editor sees one mode picker: the four modes of config.MODES plus "plan". Plan mode is the policy's
  stance rather than a set of tools, so picking it keeps the current mode's tools, and picking a mode
  again leaves plan mode. A mode added to config.MODES shows up by itself.
- The current model is always the first of the model choices, whether kimicode knows it or not.
"""

from __future__ import annotations

from acp.schema import (
    AvailableCommand,
    AvailableCommandInput,
    SessionConfigOptionBoolean,
    SessionConfigOptionSelect,
    SessionConfigSelectOption,
    SessionMode,
    SessionModeState,
    UnstructuredCommandInput,
)

from kimicode.config import MODES, Config

PLAN = "plan"

# What each mode offers (DESIGN.md B.7); a line here gives a mode its description.
MODE_INFO = {
    "instant": ("Instant", "No thinking; the SWE tools (bash, view, edits)"),
    "thinking": ("Thinking", "Thinks before it acts; the SWE tools"),
    "agent": ("Agent", "Thinking, the SWE tools, screenshot, skills and MCP tools"),
    "swarm": ("Swarm", "Agent, plus sub-agents that work in parallel (spawn_agents)"),
    PLAN: ("Plan", "Reads and plans, changes nothing; the plan is proposed for approval before any work"),
}
ACP_MODES = (*MODES, PLAN)
# The approval stance (the REPL's Shift-Tab), also offered as an option of its own.
STANCE_INFO = {"ask": "Ask before edits and commands", "auto-edit": "Edit without asking; ask before commands", PLAN: "Plan only"}
# Slash commands that make sense in an editor (its own UI does sessions, undo and diffs).
COMMANDS = {
    "compact": ("Summarise older history now to free context", None),
    "mode": ("Show or switch the mode", "instant, thinking, agent, swarm or plan"),
    "model": ("Show or switch the model", "a model name"),
    "cost": ("Tokens and cost of this session so far", None),
}

ConfigOption = SessionConfigOptionSelect | SessionConfigOptionBoolean


def _mode_info(mode: str) -> tuple[str, str | None]:
    name, description = MODE_INFO.get(mode, (mode.title(), ""))
    return name, description or None


def current_mode(config: Config, stance: str) -> str:
    """The mode id the editor shows: plan mode while the stance is "plan", else the run's mode."""
    return PLAN if stance == PLAN else config.mode


def session_modes(current: str) -> SessionModeState:
    modes = [SessionMode(id=mode, name=_mode_info(mode)[0], description=_mode_info(mode)[1]) for mode in ACP_MODES]
    return SessionModeState(current_mode_id=current, available_modes=modes)


def config_options(config: Config, stance: str = "ask") -> list[ConfigOption]:
    from kimicode.llm.profiles import known_models

    models = [config.model, *(m for m in known_models() if m != config.model)]
    return [
        SessionConfigOptionSelect(
            type="select",
            id="mode",
            name="Mode",
            category="mode",
            current_value=current_mode(config, stance),
            options=[SessionConfigSelectOption(value=mode, name=_mode_info(mode)[0]) for mode in ACP_MODES],
        ),
        SessionConfigOptionSelect(
            type="select",
            id="approvals",
            name="Approvals",
            current_value=stance,
            options=[SessionConfigSelectOption(value=value, name=name) for value, name in STANCE_INFO.items()],
        ),
        SessionConfigOptionSelect(
            type="select",
            id="model",
            name="Model",
            category="model",
            current_value=config.model,
            options=[SessionConfigSelectOption(value=model, name=model) for model in models],
        ),
    ]


def available_commands() -> list[AvailableCommand]:
    return [
        AvailableCommand(
            name=name,
            description=description,
            input=AvailableCommandInput(UnstructuredCommandInput(hint=hint)) if hint else None,
        )
        for name, (description, hint) in COMMANDS.items()
    ]


def slash_command(text: str) -> tuple[str, str] | None:
    """(name, argument) when a prompt is one of COMMANDS, else None (it goes to the model)."""
    if not text.startswith("/"):
        return None
    head, _, rest = text[1:].partition(" ")
    return (head, rest.strip()) if head in COMMANDS else None
