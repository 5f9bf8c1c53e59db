"""The durable job queue: one table, leases, heartbeats, retries, and the worker loop."""

from agentsms.jobs.queue import Job, NewJob, enqueue, enqueue_many
from agentsms.jobs.worker import Handler, Worker

__all__ = ["Handler", "Job", "NewJob", "Worker", "enqueue", "enqueue_many"]
