"""The SMPP adapter against a fake SMSC speaking real SMPP 3.4 on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace

import pytest
from tests.fakes.smsc import FakeSmsc, wait_until

from agentsms.core.segments import count_segments
from agentsms.providers.base import (
    CarrierUnreachable,
    CredentialsRejected,
    InboundMessage,
    Lookup,
    Provider,
    ProviderAccount,
    Receipt,
    SendError,
    SendRequest,
    SendResult,
)
from agentsms.providers.smpp import SmppBindError, SmppOptions, SmppProvider

OURS = "+14155550100"
FAST = SmppOptions(
    response_timeout=2.0,
    connect_timeout=2.0,
    reconnect_initial=0.01,
    reconnect_max=0.1,
    send_wait=5.0,
)


class Recorder:
    """A ProviderEvents sink that keeps what it is given."""

    def __init__(self) -> None:
        self.got_receipts: list[Receipt] = []
        self.got_inbound: list[InboundMessage] = []
        self.fail_next = 0

    async def receipts(self, account_id: str, receipts: Sequence[Receipt]) -> None:
        assert account_id == "pa_test"
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("database unavailable")
        self.got_receipts.extend(receipts)

    async def inbound(self, account_id: str, message: InboundMessage) -> None:
        assert account_id == "pa_test"
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("database unavailable")
        self.got_inbound.append(message)


def account(smsc: FakeSmsc, password: str = "secret", query: str = "") -> ProviderAccount:
    return ProviderAccount(
        id="pa_test",
        provider="smpp",
        name="operator",
        credentials={"system_id": "agentsms", "password": password, "system_type": "agent"},
        api_base_url=smsc.url + query,
        callback_base_url="http://127.0.0.1/callbacks/smpp/pa_test",
    )


def request(n: int, body: str = "hello", to: str = "+4915112345678") -> SendRequest:
    return SendRequest(
        reference=f"msg_{n:05d}", from_number=OURS, to_number=to, body=body, channel="sms"
    )


Factory = Callable[..., Awaitable[SmppProvider]]


@pytest.fixture
async def smsc() -> AsyncIterator[FakeSmsc]:
    async with FakeSmsc() as server:
        yield server


@pytest.fixture
async def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def make_provider(recorder: Recorder) -> AsyncIterator[Factory]:
    made: list[SmppProvider] = []

    async def make(
        smsc: FakeSmsc, options: SmppOptions = FAST, password: str = "secret", query: str = ""
    ) -> SmppProvider:
        provider = SmppProvider(account(smsc, password, query), recorder, options)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.close()


async def test_is_a_provider(smsc: FakeSmsc, make_provider: Factory) -> None:
    provider = await make_provider(smsc)
    assert isinstance(provider, Provider)
    assert provider.name == "smpp"


async def test_binds_as_transceiver_with_the_credentials(
    smsc: FakeSmsc, make_provider: Factory
) -> None:
    provider = await make_provider(smsc)
    await provider.wait_bound()
    assert smsc.binds == [("agentsms", "secret", 0)]
    assert provider.bound


async def test_long_ucs2_text_arrives_as_concatenated_parts_and_is_reassembled(
    smsc: FakeSmsc, make_provider: Factory
) -> None:
    text = ("Grüße aus Kyjiw — Привіт! \U0001f600 " * 12).strip()
    provider = await make_provider(smsc)

    [outcome] = await provider.send_many([request(1, text)])

    expected_parts = count_segments(text).segments
    assert expected_parts > 1
    assert len(smsc.submits) == expected_parts
    refs = {s.udh[0] for s in smsc.submits if s.udh}
    assert len(refs) == 1
    ref = refs.pop()
    assert [s.udh for s in smsc.submits] == [
        (ref, expected_parts, i) for i in range(1, expected_parts + 1)
    ]
    for part in smsc.submits:
        assert (part.data_coding, part.esm_class, part.registered_delivery) == (8, 0x40, 1)
        assert len(part.short_message) <= 140
        part.units.decode("utf-16-be")  # strict: no part ends inside a surrogate pair
        assert (part.source_addr, part.source_addr_ton) == ("14155550100", 1)
        assert (part.destination_addr, part.dest_addr_ton) == ("4915112345678", 1)
    assert [m.text for m in smsc.messages] == [text]
    assert outcome == SendResult(provider_message_id=smsc.submits[0].message_id or "")


async def test_gsm7_with_extension_characters_is_unpacked_and_never_splits_an_escape(
    smsc: FakeSmsc, make_provider: Factory
) -> None:
    text = "Price: €10 {promo} [code] ~x~ ^ | \\ " * 6
    provider = await make_provider(smsc)

    [outcome] = await provider.send_many([request(2, text)])

    assert isinstance(outcome, SendResult)
    assert len(smsc.submits) == count_segments(text).segments
    for part in smsc.submits:
        assert part.data_coding == 0
        assert len(part.units) <= 153  # one septet per octet
        assert not part.units.endswith(b"\x1b")
    assert b"\x1b\x65" in smsc.submits[0].units  # € as escape + 0x65
    assert smsc.messages[0].text == text


async def test_packed_gsm7_option(make_provider: Factory) -> None:
    text = "packed {septets} " * 20
    async with FakeSmsc(packed_gsm7=True) as smsc:
        provider = await make_provider(smsc, query="?packed_gsm7=true")
        [outcome] = await provider.send_many([request(3, text)])
        assert isinstance(outcome, SendResult)
        assert all(len(s.short_message) <= 140 for s in smsc.submits)
        assert len(smsc.submits[0].short_message) == 140
        assert smsc.messages[0].text == text


async def test_receipts_for_every_part_make_one_delivered_receipt(
    smsc: FakeSmsc, make_provider: Factory, recorder: Recorder
) -> None:
    provider = await make_provider(smsc)
    text = "x" * 400
    [outcome] = await provider.send_many([request(4, text)])
    assert isinstance(outcome, SendResult)
    parts = len(smsc.submits)
    assert parts == 3

    await wait_until(lambda: len(smsc.receipts_sent) == parts and len(recorder.got_receipts) == 1)
    await asyncio.sleep(0.05)
    assert recorder.got_receipts == [
        Receipt(
            provider_message_id=outcome.provider_message_id,
            status="delivered",
            reference="msg_00004",
        )
    ]


async def test_failed_receipt_maps_to_undelivered_with_the_smsc_error(
    smsc: FakeSmsc, make_provider: Factory, recorder: Recorder
) -> None:
    smsc.outcomes["4915100000001"] = "UNDELIV"
    smsc.outcomes["4915100000002"] = "EXPIRED"
    smsc.outcomes["4915100000003"] = "REJECTD"
    provider = await make_provider(smsc)
    outcomes = await provider.send_many(
        [request(10 + i, to=f"+491510000000{i}") for i in (1, 2, 3)]
    )
    assert all(isinstance(o, SendResult) for o in outcomes)
    await wait_until(lambda: len(recorder.got_receipts) == 3)
    got = {(r.reference, r.status, r.error_code) for r in recorder.got_receipts}
    assert got == {
        ("msg_00011", "undelivered", "UNDELIV"),
        ("msg_00012", "undelivered", "EXPIRED"),
        ("msg_00013", "failed", "REJECTD"),
    }
    undeliv = next(r for r in recorder.got_receipts if r.error_code == "UNDELIV")
    assert undeliv.error_message == "message undeliverable (SMSC error 12)"


async def test_receipt_from_text_only(
    smsc: FakeSmsc, make_provider: Factory, recorder: Recorder
) -> None:
    smsc.receipt_tlvs = False
    provider = await make_provider(smsc)
    [outcome] = await provider.send_many([request(20)])
    await wait_until(lambda: len(recorder.got_receipts) == 1)
    assert isinstance(outcome, SendResult)
    assert recorder.got_receipts[0].reference == "msg_00020"
    assert recorder.got_receipts[0].status == "delivered"


async def test_receipts_with_decimal_ids_for_hex_message_ids(
    smsc: FakeSmsc, make_provider: Factory, recorder: Recorder
) -> None:
    smsc.decimal_receipt_ids = True
    provider = await make_provider(smsc)
    [outcome] = await provider.send_many([request(21, "x" * 200)])
    assert isinstance(outcome, SendResult)
    await wait_until(lambda: len(recorder.got_receipts) == 1)
    assert recorder.got_receipts[0].reference == "msg_00021"
    assert recorder.got_receipts[0].provider_message_id == outcome.provider_message_id


async def test_a_receipt_the_sink_could_not_store_counts_when_delivered_again(
    smsc: FakeSmsc, make_provider: Factory, recorder: Recorder
) -> None:
    provider = await make_provider(smsc)
    recorder.fail_next = 1
    [outcome] = await provider.send_many([request(22, "y" * 400)])
    assert isinstance(outcome, SendResult)
    await wait_until(lambda: len(recorder.got_receipts) == 1)
    await asyncio.sleep(0.05)
    assert recorder.fail_next == 0
    # three parts; those in the batch the sink refused were delivered again
    assert len(smsc.receipts_sent) > 3
    assert {mid for mid, _ in smsc.receipts_sent} == set(smsc.accepted_ids)
    assert [(r.reference, r.status) for r in recorder.got_receipts] == [("msg_00022", "delivered")]


async def test_alphanumeric_senders_and_bad_addresses(
    smsc: FakeSmsc, make_provider: Factory
) -> None:
    provider = await make_provider(smsc)
    named = replace(request(25), from_number="ACME")
    too_long = replace(request(26), from_number="ACME Corporation")
    [sent, refused] = await provider.send_many([named, too_long])
    assert isinstance(sent, SendResult)
    assert (smsc.submits[0].source_addr, smsc.submits[0].source_addr_ton) == ("ACME", 5)
    assert isinstance(refused, SendError)
    assert (refused.code, refused.retryable) == ("invalid_address", False)
    assert "longer than 11" in refused.message
    assert len(smsc.submits) == 1


async def test_mms_is_refused_permanently(smsc: FakeSmsc, make_provider: Factory) -> None:
    provider = await make_provider(smsc)
    mms = replace(request(23), channel="mms", media_urls=("https://example.com/a.jpg",))
    [refused, sent] = await provider.send_many([mms, request(24)])
    assert isinstance(refused, SendError)
    assert (refused.code, refused.retryable) == ("unsupported_channel", False)
    assert isinstance(sent, SendResult)
    assert len(smsc.submits) == 1


async def test_throttling_is_retryable_and_the_retry_goes_through(
    smsc: FakeSmsc, make_provider: Factory
) -> None:
    smsc.throttle_next = 1
    provider = await make_provider(smsc)
    [first] = await provider.send_many([request(30)])
    assert first == SendError(
        code="ESME_RTHROTTLED",
        message="the SMSC refused submit_sm: ESME_RTHROTTLED (0x00000058)",
        retryable=True,
        retry_after=1.0,
    )
    [second] = await provider.send_many([request(30)])
    assert isinstance(second, SendResult)
    assert [s.status for s in smsc.submits] == [0x58, 0]


async def test_queue_full_is_retryable_and_bad_destination_permanent(
    smsc: FakeSmsc, make_provider: Factory
) -> None:
    smsc.refuse["4915100000009"] = 0x14
    smsc.refuse["999"] = 0x0B
    provider = await make_provider(smsc)
    outcomes = await provider.send_many(
        [request(40, to="+4915100000009"), request(41, to="999"), request(42)]
    )
    assert isinstance(outcomes[0], SendError)
    assert (outcomes[0].code, outcomes[0].retryable) == ("ESME_RMSGQFUL", True)
    assert isinstance(outcomes[1], SendError)
    assert (outcomes[1].code, outcomes[1].retryable) == ("ESME_RINVDSTADR", False)
    assert isinstance(outcomes[2], SendResult)


async def test_a_retry_sends_only_the_parts_not_yet_accepted(
    smsc: FakeSmsc, make_provider: Factory
) -> None:
    smsc.throttle_parts = {2}
    provider = await make_provider(smsc)
    text = "part " * 100
    [first] = await provider.send_many([request(50, text)])
    assert isinstance(first, SendError)
    assert first.retryable
    sent_first = len(smsc.submits)
    assert sent_first == 4

    [second] = await provider.send_many([request(50, text)])

    assert isinstance(second, SendResult)
    resent = smsc.submits[sent_first:]
    assert [s.udh[2] if s.udh else None for s in resent] == [2]
    assert resent[0].udh is not None
    assert smsc.submits[0].udh is not None
    assert resent[0].udh[0] == smsc.submits[0].udh[0]  # same concatenation reference
    assert [m.text for m in smsc.messages] == [text]
    assert second.provider_message_id == smsc.submits[0].message_id


async def test_a_late_submit_sm_resp_still_counts(smsc: FakeSmsc, make_provider: Factory) -> None:
    smsc.submit_resp_delay = 0.4
    provider = await make_provider(smsc, replace(FAST, response_timeout=0.1))
    [first] = await provider.send_many([request(60)])
    assert isinstance(first, SendError)
    assert (first.code, first.retryable) == ("smpp_timeout", True)
    await wait_until(lambda: smsc.outstanding == 0)
    await asyncio.sleep(0.05)

    [second] = await provider.send_many([request(60)])

    assert isinstance(second, SendResult)
    assert len(smsc.submits) == 1  # not sent twice
    assert second.provider_message_id == smsc.submits[0].message_id


async def test_bad_password_is_a_clear_error(smsc: FakeSmsc, make_provider: Factory) -> None:
    provider = await make_provider(smsc, password="wrong")
    with pytest.raises(SmppBindError) as raised:
        await provider.wait_bound()
    message = str(raised.value)
    assert "invalid password" in message
    assert "ESME_RINVPASWD" in message
    assert "agentsms" in message
    assert raised.value.permanent

    [outcome] = await provider.send_many([request(70)])
    assert isinstance(outcome, SendError)
    assert (outcome.code, outcome.retryable) == ("ESME_RINVPASWD", False)
    assert smsc.submits == []
    # The session keeps re-binding (with backoff) in the background; stopped here, so that
    # none of its binds lands among the ones counted below.
    await provider.close()

    wrong = SmppProvider(account(smsc, "wrong"), None, FAST)
    with pytest.raises(CredentialsRejected, match="invalid password") as rejected:
        await wrong.check_credentials()
    assert rejected.value.key == "password"
    binds = len(smsc.binds)
    await SmppProvider(account(smsc), None, FAST).check_credentials()  # binds and unbinds
    assert smsc.binds[binds:] == [("agentsms", "secret", 0)]
    await wait_until(lambda: smsc.bound_sessions == [])
    async with FakeSmsc() as gone:
        unreachable = SmppProvider(account(gone), None, FAST)
    with pytest.raises(CarrierUnreachable, match="could not bind"):
        await unreachable.check_credentials()


async def test_reconnects_back_off_exponentially(smsc: FakeSmsc, make_provider: Factory) -> None:
    options = replace(FAST, reconnect_initial=0.05, reconnect_max=0.2)
    provider = await make_provider(smsc, options, password="wrong")
    await provider.start()
    await wait_until(lambda: len(smsc.bind_times) >= 5)
    gaps = [b - a for a, b in itertools.pairwise(smsc.bind_times[:5])]
    # 0.05, 0.1, 0.2, then capped at 0.2 (sleeps never end early; a busy machine only
    # makes the gaps longer)
    for gap, nominal in zip(gaps, [0.05, 0.1, 0.2, 0.2], strict=True):
        assert gap >= nominal * 0.95, gaps
    assert gaps[-1] < 0.4 + 1.0


async def test_unreachable_smsc_is_retryable(make_provider: Factory) -> None:
    async with FakeSmsc() as smsc:
        port_url = smsc.url
    gone = FakeSmsc()
    gone.port = int(port_url.rsplit(":", 1)[1])
    provider = await make_provider(gone, replace(FAST, send_wait=0.3))
    [outcome] = await provider.send_many([request(80)])
    assert isinstance(outcome, SendError)
    assert (outcome.code, outcome.retryable) == ("smpp_unavailable", True)


async def test_inbound_multipart_is_reassembled_in_order(
    smsc: FakeSmsc, make_provider: Factory, recorder: Recorder
) -> None:
    provider = await make_provider(smsc)
    await provider.wait_bound()
    text = "Antwort: ja \U0001f44d bitte ruf mich an, " * 5
    statuses = await smsc.inject("+4915112345678", OURS, text, parts=3, order=[3, 1, 2])
    assert statuses == [0, 0, 0]
    gsm_text = "{escape} split across parts €€€ " * 12
    await smsc.inject("+4915112345679", OURS, gsm_text, parts=4, order=[2, 4, 1, 3], sar=True)
    await smsc.inject("+4915112345670", OURS, "single")
    await wait_until(lambda: len(recorder.got_inbound) == 3)
    assert recorder.got_inbound == [
        InboundMessage(from_number="+4915112345678", to_number=OURS, body=text),
        InboundMessage(from_number="+4915112345679", to_number=OURS, body=gsm_text),
        InboundMessage(from_number="+4915112345670", to_number=OURS, body="single"),
    ]


async def test_a_sink_failure_asks_the_smsc_to_deliver_again(
    smsc: FakeSmsc, make_provider: Factory, recorder: Recorder
) -> None:
    provider = await make_provider(smsc)
    await provider.wait_bound()
    recorder.fail_next = 1
    assert await smsc.inject("+4915112345678", OURS, "hi") == [0x64]
    assert recorder.got_inbound == []
    assert await smsc.inject("+4915112345678", OURS, "hi") == [0]
    assert [m.body for m in recorder.got_inbound] == ["hi"]


async def test_enquire_link_keep_alive(smsc: FakeSmsc, make_provider: Factory) -> None:
    provider = await make_provider(smsc, replace(FAST, enquire_link_interval=0.05))
    await provider.wait_bound()
    await wait_until(lambda: smsc.enquire_links_received >= 3)
    await wait_until(lambda: provider.enquire_links_answered >= 3)
    # and it answers the SMSC's own enquire_link
    assert await smsc.enquire_link() == 0
    assert provider.enquire_links_received == 1


async def test_an_unanswered_enquire_link_reconnects(
    smsc: FakeSmsc, make_provider: Factory
) -> None:
    provider = await make_provider(
        smsc, replace(FAST, enquire_link_interval=0.05, response_timeout=0.1)
    )
    await provider.wait_bound()
    smsc.answer_enquire_link = False
    await wait_until(lambda: smsc.connections >= 2)
    smsc.answer_enquire_link = True
    await wait_until(lambda: provider.bound and provider.binds >= 2)
    [outcome] = await provider.send_many([request(90)])
    assert isinstance(outcome, SendResult)


async def test_lookup_asks_query_sm(
    smsc: FakeSmsc, make_provider: Factory, recorder: Recorder
) -> None:
    provider = await make_provider(smsc)
    [outcome] = await provider.send_many([request(100)])
    assert isinstance(outcome, SendResult)
    await wait_until(lambda: len(recorder.got_receipts) == 1)

    found = await provider.lookup(request(100))

    assert found == Lookup(
        found=True,
        result=SendResult(provider_message_id=outcome.provider_message_id, status="delivered"),
    )
    assert await provider.lookup(request(101)) is None
    smsc.query_sm_supported = False
    fallback = await provider.lookup(request(100))
    assert fallback == Lookup(
        found=True, result=SendResult(provider_message_id=outcome.provider_message_id)
    )


async def test_window_limits_unacknowledged_submits(make_provider: Factory) -> None:
    async with FakeSmsc() as smsc:
        smsc.submit_resp_delay = 0.01
        provider = await make_provider(smsc, replace(FAST, window=4))
        outcomes = await provider.send_many([request(200 + i) for i in range(40)])
        assert all(isinstance(o, SendResult) for o in outcomes)
        assert smsc.max_outstanding == 4


async def _send_until_accepted(
    provider: SmppProvider, requests: Sequence[SendRequest]
) -> tuple[dict[str, SendResult], int]:
    """Send, and send again what came back retryable (what the dispatcher does)."""
    pending = list(requests)
    results: dict[str, SendResult] = {}
    retried = 0
    for _ in range(20):
        if not pending:
            break
        outcomes = await provider.send_many(pending)
        assert len(outcomes) == len(pending)
        again = []
        for sent, outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, SendResult):
                results[sent.reference] = outcome
            else:
                assert outcome.retryable, outcome
                again.append(sent)
        retried += len(again)
        pending = again
    assert not pending
    return results, retried


async def test_1000_messages_with_a_window_of_10_survive_a_dropped_connection(
    smsc: FakeSmsc, make_provider: Factory, recorder: Recorder
) -> None:
    provider = await make_provider(smsc, replace(FAST, window=10))
    requests = [request(1000 + i, body=f"message {i}") for i in range(1000)]
    await provider.wait_bound()
    # Mid-stream: the 700th PDU (submits and receipt acknowledgements interleave) and
    # whatever the ESME had written after it are lost with the connection.
    smsc.drop_after(700)

    results, retried = await _send_until_accepted(provider, requests)

    assert smsc.drops == 1
    assert provider.binds == 2
    assert 0 < retried <= 10  # only the unacknowledged window was lost
    assert len(results) == 1000
    assert sorted(m.text for m in smsc.messages) == sorted(r.body for r in requests)
    await wait_until(lambda: len(recorder.got_receipts) == 1000, within=30)
    await asyncio.sleep(0.1)
    references = [r.reference for r in recorder.got_receipts]
    assert len(set(references)) == 1000  # every message exactly one final receipt
    assert all(r.status == "delivered" for r in recorder.got_receipts)
    by_id = {result.provider_message_id: ref for ref, result in results.items()}
    assert references == [by_id[mid] for mid in smsc.receipt_order]  # the SMSC's order
    assert len(smsc.receipts_sent) >= 1000  # some were delivered again after the drop


async def test_a_drop_after_the_smsc_accepted_costs_at_most_a_window_of_duplicates(
    smsc: FakeSmsc, make_provider: Factory, recorder: Recorder
) -> None:
    # The SMSC accepts each submit_sm and answers 2 ms later: at the drop, up to a window
    # of accepted messages have no answer, so they are sent again.
    smsc.submit_resp_delay = 0.002
    provider = await make_provider(smsc, replace(FAST, window=10))
    requests = [request(3000 + i, body=f"dup {i}") for i in range(300)]
    await provider.wait_bound()
    smsc.drop_after(200)

    results, _ = await _send_until_accepted(provider, requests)

    assert smsc.max_outstanding <= 10
    assert len(results) == 300
    texts = [m.text for m in smsc.messages]
    duplicates = len(texts) - len(set(texts))
    assert set(texts) == {r.body for r in requests}
    assert 0 < duplicates <= 10
    await wait_until(lambda: len(recorder.got_receipts) == 300 + duplicates, within=30)
    mapped = [r.reference for r in recorder.got_receipts if r.reference is not None]
    assert sorted(mapped) == sorted(results)  # one receipt per message
    unmapped = [r for r in recorder.got_receipts if r.reference is None]
    assert len(unmapped) == duplicates  # the unanswered copies' receipts name only their id
