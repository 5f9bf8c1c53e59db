"""``SendPolicy``: the deployment's rules for every send, read once from ``Settings``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from agentsms.config import Settings
from agentsms.core.media import media_url_problem
from agentsms.core.sending.specs import UrlProblem


@dataclass(frozen=True, slots=True)
class SendPolicy:
    """How sends are accepted and retried in this deployment.

    Built once at start-up (``from_settings``) and handed to the ``Outbox``; nothing else
    reads these settings for a send.
    """

    max_attempts: int
    """Tries of each message's send job (``AGENTSMS_JOB_MAX_ATTEMPTS``)."""
    max_batch_items: int
    """Recipients one batch may hold (``AGENTSMS_MAX_BATCH_RECIPIENTS``)."""
    url_problem: UrlProblem | None = None
    """Why a media URL can never be fetched, or None; no check when None."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SendPolicy:
        """The policy ``settings`` describe."""
        return cls(
            max_attempts=settings.job_max_attempts,
            max_batch_items=settings.max_batch_recipients,
            url_problem=partial(media_url_problem, settings=settings),
        )
