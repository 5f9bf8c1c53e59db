"""The simulator carrier's durable send log."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.bulk import id_list_params, id_list_sql, insert_rows
from agentsms.store.repositories import Row, many, one
from agentsms.store.tables import messages, simulator_people, simulator_sends


async def existing_by_reference(conn: AsyncConnection, references: Sequence[str]) -> dict[str, Row]:
    """``reference`` and ``provider_message_id`` of the logged sends among ``references``."""
    dialect = conn.dialect.name
    found: dict[str, Row] = {}
    for start in range(0, len(references), 500):
        chunk = references[start : start + 500]
        result = await conn.exec_driver_sql(
            "SELECT reference, provider_message_id FROM simulator_sends "
            f"WHERE reference {id_list_sql(dialect, len(chunk), 1)}",
            tuple(id_list_params(dialect, chunk)),
        )
        for row in result.mappings():
            found[row["reference"]] = dict(row)
    return found


async def insert_sends(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    await insert_rows(conn, simulator_sends, rows, set_based=True)


_COUNT_REPEAT = (
    update(simulator_sends)
    .where(simulator_sends.c.reference == bindparam("ref"))
    .values(repeat_count=simulator_sends.c.repeat_count + 1)
)


_CARRY_UNSEEN = """
WITH seen AS (
    SELECT 1 FROM simulator_sends WHERE reference = ANY($1::varchar[])
), sends AS (
    INSERT INTO simulator_sends (reference, provider_message_id, from_number, to_number,
        channel, body, media_urls, outcome, error_code, repeat_count, created_at)
    SELECT c0, c1, c2, c3, c4, c5, c6::jsonb, c7, c8, 0, $11::float8
    FROM unnest($2::varchar[], $3::varchar[], $4::varchar[], $5::varchar[], $6::varchar[],
        $7::text[], $8::text[], $9::varchar[], $10::varchar[])
        AS u(c0, c1, c2, c3, c4, c5, c6, c7, c8)
    WHERE NOT EXISTS (SELECT FROM seen)
), reports AS (
    INSERT INTO jobs (kind, payload, status, run_at, attempts, max_attempts, created_at)
    SELECT $12::varchar, r.payload::jsonb, 'queued', r.run_at, 0, $14::integer, $11::float8
    FROM unnest($15::text[], $16::float8[]) AS r(payload, run_at)
    WHERE NOT EXISTS (SELECT FROM seen)
), scripted AS (
    SELECT DISTINCT ON (p.project_id, p.number)
        p.project_id, p.number, m.from_number, p.delay_seconds
    FROM messages m
    JOIN simulator_people p ON p.project_id = m.project_id AND p.number = m.to_number
    WHERE m.id = ANY($17::varchar[]) AND p.pending IS false
        AND NOT EXISTS (SELECT FROM seen)
), claimed AS (
    UPDATE simulator_people p SET pending = true
    FROM scripted s
    WHERE p.project_id = s.project_id AND p.number = s.number AND p.pending IS false
    RETURNING s.project_id, s.number, s.from_number, s.delay_seconds
), replies AS (
    INSERT INTO jobs (kind, payload, status, run_at, attempts, max_attempts, created_at)
    SELECT $13::varchar, jsonb_build_object('project_id', project_id, 'number', number,
        'to', from_number), 'queued', $11::float8 + delay_seconds, 0, $14::integer, $11::float8
    FROM claimed
)
SELECT count(*) FROM seen
"""


async def carry_unseen(
    conn: AsyncConnection,
    references: Sequence[str],
    sends: Sequence[dict[str, Any]],
    texted: Sequence[str],
    reports: Sequence[tuple[dict[str, Any], float]],
    *,
    now: float,
    report_kind: str,
    reply_kind: str,
    max_attempts: int,
) -> bool:
    """PostgreSQL, in one statement, only if none of ``references`` is logged yet (else
    it writes nothing and returns False): log ``sends`` (first sends, keyed as the
    ``simulator_sends`` columns), add a ``report_kind`` job per ``(payload, run_at)`` of
    ``reports``, and for each scripted person one of ``texted`` reached with no answer
    due, mark the answer due and add its ``reply_kind`` job, due after the person's
    delay: the rows the ledger's transaction writes with one statement each, and the
    jobs ``jobs.queue.enqueue_many`` would add."""
    columns = ("reference", "provider_message_id", "from_number", "to_number", "channel")
    result = await conn.exec_driver_sql(
        _CARRY_UNSEEN,
        (
            list(references),
            *([send[name] for send in sends] for name in columns),
            [send["body"] for send in sends],
            [_json_list(send["media_urls"]) for send in sends],
            [send["outcome"] for send in sends],
            [send["error_code"] for send in sends],
            now,
            report_kind,
            reply_kind,
            max_attempts,
            [json.dumps(payload, separators=(",", ":")) for payload, _ in reports],
            [run_at for _, run_at in reports],
            list(texted),
        ),
    )
    return int(result.scalar_one()) == 0


def _json_list(values: Sequence[str]) -> str:
    return json.dumps(list(values), separators=(",", ":")) if values else "[]"


async def count_repeats(conn: AsyncConnection, references: Sequence[str]) -> None:
    if references:
        await conn.execute(_COUNT_REPEAT, [{"ref": ref} for ref in references])


def _of_project(project_id: str) -> Any:
    """Sends whose reference is one of the project's messages."""
    return simulator_sends.c.reference.in_(
        select(messages.c.id).where(messages.c.project_id == project_id)
    )


async def sends_to(conn: AsyncConnection, project_id: str, to_number: str) -> Sequence[Row]:
    query = (
        select(simulator_sends)
        .where(simulator_sends.c.to_number == to_number, _of_project(project_id))
        .order_by(simulator_sends.c.id)
    )
    return many((await conn.execute(query)).mappings().all())


async def summary(conn: AsyncConnection, project_id: str) -> dict[str, int]:
    """Totals over the project's sends: sends, distinct recipients and repeated references."""
    query = select(
        func.count(),
        func.count(func.distinct(simulator_sends.c.to_number)),
        func.coalesce(func.sum(simulator_sends.c.repeat_count), 0),
    ).where(_of_project(project_id))
    total, recipients, repeats = (await conn.execute(query)).one()
    return {"sends": int(total), "recipients": int(recipients), "repeats": int(repeats)}


async def recent(conn: AsyncConnection, project_id: str, limit: int) -> Sequence[Row]:
    query = (
        select(simulator_sends)
        .where(_of_project(project_id))
        .order_by(simulator_sends.c.id.desc())
        .limit(limit)
    )
    return many((await conn.execute(query)).mappings().all())


_SCRIPTED = (
    select(
        simulator_people.c.project_id,
        simulator_people.c.number,
        messages.c.from_number,
        simulator_people.c.delay_seconds,
    )
    .join(
        simulator_people,
        (simulator_people.c.project_id == messages.c.project_id)
        & (simulator_people.c.number == messages.c.to_number),
    )
    .where(
        messages.c.id.in_(bindparam("b_references", expanding=True)),
        simulator_people.c.pending.is_(False),
    )
)
"""Built once (every carried send asks it): no cache key to work out per call."""


async def scripted_recipients(
    conn: AsyncConnection, references: Sequence[str]
) -> list[tuple[str, str, str, float]]:
    """(project, person, our number, delay) for sends to simulated people with no reply due."""
    if not references:
        return []
    found: dict[tuple[str, str], tuple[str, str, str, float]] = {}
    rows = (await conn.execute(_SCRIPTED, {"b_references": list(references)})).all()
    for project_id, number, ours, delay in rows:
        found.setdefault((project_id, number), (project_id, number, ours, float(delay)))
    return list(found.values())


_PERSON = (simulator_people.c.project_id == bindparam("b_project_id")) & (
    simulator_people.c.number == bindparam("b_number")
)
# Built once: every text to a scripted person and every answer of theirs runs these.
_CLAIM_REPLY = (
    update(simulator_people)
    .where(_PERSON, simulator_people.c.pending.is_(False))
    .values(pending=True)
)
_GET_PERSON = select(simulator_people).where(_PERSON)
_ADVANCE_PERSON = (
    update(simulator_people).where(_PERSON).values(next_index=bindparam("b_index"), pending=False)
)


async def claim_reply(conn: AsyncConnection, project_id: str, number: str) -> bool:
    """Mark the person's answer as due; False when one already was (another transaction's
    send got there first: the row lock makes the second wait and then find it taken)."""
    result = await conn.execute(_CLAIM_REPLY, {"b_project_id": project_id, "b_number": number})
    return bool(result.rowcount)


async def get_person(conn: AsyncConnection, project_id: str, number: str) -> Row | None:
    params = {"b_project_id": project_id, "b_number": number}
    return one((await conn.execute(_GET_PERSON, params)).mappings().first())


async def list_people(conn: AsyncConnection, project_id: str) -> Sequence[Row]:
    query = (
        select(simulator_people)
        .where(simulator_people.c.project_id == project_id)
        .order_by(simulator_people.c.number)
    )
    return many((await conn.execute(query)).mappings().all())


async def put_person(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await delete_person(conn, row["project_id"], row["number"])
    await conn.execute(insert(simulator_people).values(**row))


async def delete_person(conn: AsyncConnection, project_id: str, number: str) -> bool:
    result = await conn.execute(
        delete(simulator_people).where(
            simulator_people.c.project_id == project_id, simulator_people.c.number == number
        )
    )
    return bool(result.rowcount)


async def advance_person(conn: AsyncConnection, project_id: str, number: str, index: int) -> None:
    await conn.execute(
        _ADVANCE_PERSON, {"b_project_id": project_id, "b_number": number, "b_index": index}
    )
