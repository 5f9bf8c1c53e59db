"""Provider names to adapters."""

from __future__ import annotations

from agentsms.providers.base import Provider


class ProviderRegistry:
    """The adapters this process can send through, by name."""

    def __init__(self) -> None:
        self._providers: dict[str, Provider] = {}

    def register(self, provider: Provider) -> None:
        self._providers[provider.name] = provider

    def unregister(self, name: str) -> None:
        """Forget an adapter (a provider account that was removed); unknown names are fine."""
        self._providers.pop(name, None)

    def get(self, name: str) -> Provider:
        try:
            return self._providers[name]
        except KeyError:
            raise LookupError(f"no provider named {name!r}") from None

    def names(self) -> list[str]:
        return sorted(self._providers)
