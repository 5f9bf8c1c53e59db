"""agentsms: a self-hostable messaging gateway for AI agents."""

__version__ = "0.1.0"
