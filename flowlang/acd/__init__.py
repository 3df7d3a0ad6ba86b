"""The built-in ACD (automatic call distribution): takes queued interactions and agents' states and
skills, gives offers to agents (`SkillsAcd`); with the Erlang C formulas its simulation is checked
against. See docs/acd.md."""

from flowlang.acd.distributor import SkillsAcd, queue_settings
from flowlang.acd.model import AgentProfile, QueueSettings, Ring
from flowlang.runtime.ports import AcdError  # the port's: raised by any Acd

__all__ = ["AcdError", "AgentProfile", "QueueSettings", "Ring", "SkillsAcd", "queue_settings"]
