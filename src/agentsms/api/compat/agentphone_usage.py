"""AgentPhone's usage reports at ``/compat/agentphone`` (``client.usage`` of its SDK):
messages and webhook deliveries over time, per number and per agent, from ``core.usage``.
Calls are always 0: agentsms carries messages only."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from pydantic import BaseModel

from agentsms.api.compat._common import Vendor, iso_z
from agentsms.api.compat.agentphone import _ERRORS, NAME, _int_arg, _project, render_error
from agentsms.api.deps import State
from agentsms.core import clock, numbers, personas, usage
from agentsms.errors import invalid

router = APIRouter(prefix=f"/compat/{NAME}", tags=["compat: AgentPhone"])


# -- usage -----------------------------------------------------------------------------------

UNCAPPED = 2**31 - 1  # agentsms sets no limit on a project's numbers


class NumberLimits(BaseModel):
    used: int
    limit: int
    remaining: int


class UsageStats(BaseModel):
    totalMessages: int
    messagesLast24h: int
    messagesLast7d: int
    messagesLast30d: int
    totalCalls: int
    callsLast24h: int
    callsLast7d: int
    callsLast30d: int
    totalWebhookDeliveries: int
    successfulWebhookDeliveries: int
    failedWebhookDeliveries: int
    smsSegmentsLast30d: int


class Usage(BaseModel):
    numbers: NumberLimits
    stats: UsageStats
    periodStart: str
    periodEnd: str
    reportGeneratedAt: str


class DailyPoint(BaseModel):
    date: str
    messages: int
    calls: int
    webhooks: int


class DailyUsage(BaseModel):
    data: list[DailyPoint]
    days: int


class MonthlyPoint(BaseModel):
    month: str
    messages: int
    calls: int
    webhooks: int


class MonthlyUsage(BaseModel):
    data: list[MonthlyPoint]
    months: int


class NumberUsage(BaseModel):
    numberId: str
    phoneNumber: str
    messages: int
    inbound: int
    outbound: int
    calls: int


class NumberUsageList(BaseModel):
    data: list[NumberUsage]


class AgentUsage(BaseModel):
    agentId: str
    name: str
    messages: int
    calls: int


class AgentUsageList(BaseModel):
    data: list[AgentUsage]
    period: str


PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


@router.get("/v1/usage", response_model=Usage, responses=_ERRORS, summary="Get Usage")
async def get_usage(request: Request, state: State) -> Usage:
    """Numbers in use and message / webhook counts (calls are always 0: no voice)."""
    project = await _project(request, state)
    now = clock.now()
    async with state.db.read() as conn:
        used = len(await numbers.list_numbers(conn, project.id))
        figures = await usage.summary(conn, project.id, now)
    return Usage(
        numbers=NumberLimits(used=used, limit=UNCAPPED, remaining=UNCAPPED - used),
        stats=UsageStats(
            totalMessages=figures.messages_total,
            messagesLast24h=figures.messages_24h,
            messagesLast7d=figures.messages_7d,
            messagesLast30d=figures.messages_30d,
            totalCalls=0,
            callsLast24h=0,
            callsLast7d=0,
            callsLast30d=0,
            totalWebhookDeliveries=figures.deliveries,
            successfulWebhookDeliveries=figures.deliveries_succeeded,
            failedWebhookDeliveries=figures.deliveries_failed,
            smsSegmentsLast30d=figures.segments_30d,
        ),
        periodStart=iso_z(now - timedelta(days=30)) or "",
        periodEnd=iso_z(now) or "",
        reportGeneratedAt=iso_z(now) or "",
    )


@router.get("/v1/usage/daily", response_model=DailyUsage, responses=_ERRORS, summary="Daily Usage")
async def daily_usage(request: Request, state: State) -> DailyUsage:
    """The last ``days`` (1-366, default 30) UTC days, oldest first."""
    project = await _project(request, state)
    days = _int_arg(request, "days", 30, 1, usage.MAX_DAYS)
    async with state.db.read() as conn:
        points = await usage.daily(conn, project.id, clock.now(), days)
    return DailyUsage(
        data=[
            DailyPoint(date=p.period, messages=p.messages, calls=0, webhooks=p.webhooks)
            for p in points
        ],
        days=days,
    )


@router.get(
    "/v1/usage/monthly", response_model=MonthlyUsage, responses=_ERRORS, summary="Monthly Usage"
)
async def monthly_usage(request: Request, state: State) -> MonthlyUsage:
    """The last ``months`` (1-36, default 6) UTC months, oldest first."""
    project = await _project(request, state)
    months = _int_arg(request, "months", 6, 1, usage.MAX_MONTHS)
    async with state.db.read() as conn:
        points = await usage.monthly(conn, project.id, clock.now(), months)
    return MonthlyUsage(
        data=[
            MonthlyPoint(month=p.period, messages=p.messages, calls=0, webhooks=p.webhooks)
            for p in points
        ],
        months=months,
    )


@router.get(
    "/v1/usage/by-number",
    response_model=NumberUsageList,
    responses=_ERRORS,
    summary="Usage by Number",
)
async def usage_by_number(request: Request, state: State) -> NumberUsageList:
    """Each number's messages of the last 30 days."""
    project = await _project(request, state)
    async with state.db.read() as conn:
        lines = await numbers.list_numbers(conn, project.id)
        counts = await usage.by_number(conn, project.id, clock.now() - PERIODS["30d"])
    answer = []
    for line in lines:
        seen = counts.get(line["id"], {})
        inbound, outbound = seen.get("inbound", 0), seen.get("outbound", 0)
        answer.append(
            NumberUsage(
                numberId=line["id"],
                phoneNumber=line["number"],
                messages=inbound + outbound,
                inbound=inbound,
                outbound=outbound,
                calls=0,
            )
        )
    return NumberUsageList(data=answer)


@router.get(
    "/v1/usage/by-agent", response_model=AgentUsageList, responses=_ERRORS, summary="Usage by Agent"
)
async def usage_by_agent(request: Request, state: State) -> AgentUsageList:
    """Each agent's messages over ``period``: ``24h``, ``7d`` or ``30d`` (default)."""
    project = await _project(request, state)
    period = request.query_params.get("period") or "30d"
    if period not in PERIODS:
        raise invalid("period", f"must be one of {', '.join(PERIODS)}")
    async with state.db.read() as conn:
        agents = await personas.list_personas(conn, project.id)
        counts = await usage.by_persona(conn, project.id, clock.now() - PERIODS[period])
    return AgentUsageList(
        data=[
            AgentUsage(agentId=a["id"], name=a["name"], messages=counts.get(a["id"], 0), calls=0)
            for a in agents
        ],
        period=period,
    )


VENDOR = Vendor(NAME, router, render_error)
