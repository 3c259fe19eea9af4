"""AMI origination against a fake Asterisk manager written here from the protocol, over loopback."""

import asyncio

import pytest

from edge.errors import AmiError, InputError
from edge.telephony.ami import AmiClient, OriginateOutcome, OriginateRequest, format_message

TIMEOUT = 5.0


def run(coro, timeout=20.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class FakeAmi:
    """Speaks AMI: banner, Login, Originate (scripted by the channel name), Logoff, noise events."""

    def __init__(self, banner="Asterisk Call Manager/9.0.0", secret="good"):
        self.banner, self.secret = banner, secret
        self.actions: list[dict[str, list[str]]] = []
        self.server = None

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()

    @property
    def uri(self):
        return f"tcp://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader, writer):
        def send(*pairs):
            writer.write(format_message(list(pairs)))

        writer.write(f"{self.banner}\r\n".encode())
        try:
            while True:
                action: dict[str, list[str]] = {}
                while True:
                    line = (await asyncio.wait_for(reader.readline(), TIMEOUT)).decode().rstrip("\r\n")
                    if not line:
                        break
                    key, _, value = line.partition(": ")
                    action.setdefault(key, []).append(value)
                if not action:
                    return
                self.actions.append(action)
                aid = action["ActionID"][0]
                name = action["Action"][0]
                if name == "Login":
                    if action["Secret"][0] == self.secret:
                        send(("Response", "Success"), ("ActionID", aid), ("Message", "Authentication accepted"))
                        send(("Event", "FullyBooted"), ("Privilege", "system,all"), ("Status", "Fully Booted"))
                    else:
                        send(("Response", "Error"), ("ActionID", aid), ("Message", "Authentication failed"))
                elif name == "Logoff":
                    send(("Response", "Goodbye"), ("ActionID", aid), ("Message", "Thanks for all the fish."))
                    await writer.drain()
                    writer.close()
                    return
                elif name == "Originate":
                    await self._originate(send, writer, aid, action["Channel"][0])
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            writer.close()

    async def _originate(self, send, writer, aid, channel):
        tech = channel.split("/")[1].split("@")[0]
        if tech == "reject":
            send(("Response", "Error"), ("ActionID", aid), ("Message", "Originate failed"))
            return
        if tech == "mute":  # never answers the action at all
            return
        send(("Response", "Success"), ("ActionID", aid), ("Message", "Originate successfully queued"))
        send(("Event", "Newchannel"), ("Channel", channel), ("Uniqueid", "1700000000.1"))  # noise
        send(("Event", "OriginateResponse"), ("ActionID", "someone-else"), ("Response", "Success"),
             ("Reason", "4"))
        await writer.drain()
        if tech == "drop":
            await asyncio.sleep(0.05)
            writer.transport.abort()
            raise ConnectionError("dropped on purpose")
        if tech == "silent":
            return
        reason = {"answer": "4", "busy": "5", "noanswer": "3", "congested": "8", "gone": "1",
                  "nosuch": "0"}[tech]
        await asyncio.sleep(0.05)
        send(("Event", "OriginateResponse"), ("Privilege", "call,all"), ("ActionID", aid),
             ("Response", "Success" if reason == "4" else "Failure"), ("Channel", channel),
             ("Context", "salesbot"), ("Exten", "s"), ("Reason", reason), ("Uniqueid", "1700000000.2"),
             ("CallerIDNum", "<unknown>"))


def test_login_originate_outcomes_and_logoff():
    async def main():
        async with FakeAmi() as pbx:
            client = await AmiClient.connect(pbx.uri, "salesbot", "good")
            assert client.banner.startswith("Asterisk Call Manager/")
            requests = {tech: OriginateRequest(channel=f"PJSIP/{tech}@trunk", variables={"LEAD_ID": "42"},
                                               caller_id='"Sales" <02112345678>', timeout_s=1)
                        for tech in ("answer", "busy", "noanswer", "congested", "gone", "nosuch", "reject")}
            results = await asyncio.gather(*(client.originate(r) for r in requests.values()))
            outcomes = {tech: r.outcome for tech, r in zip(requests, results)}
            assert outcomes == {"answer": OriginateOutcome.ANSWERED, "busy": OriginateOutcome.BUSY,
                                "noanswer": OriginateOutcome.NO_ANSWER, "congested": OriginateOutcome.CONGESTION,
                                "gone": OriginateOutcome.HANGUP, "nosuch": OriginateOutcome.FAILED,
                                "reject": OriginateOutcome.REJECTED}
            answered = results[0]
            assert answered.answered and answered.reason_code == 4 and answered.uniqueid == "1700000000.2"
            assert results[-1].message == "Originate failed" and not results[-1].outcome.retryable
            assert OriginateOutcome.BUSY.retryable
            sent = [a for a in pbx.actions if a["Action"] == ["Originate"]][0]
            assert sent["Async"] == ["true"] and sent["Variable"][1] == "LEAD_ID=42"
            assert sent["Variable"][0] == f"CALL_UUID={requests['answer'].call_uuid}"
            assert sent["Timeout"] == ["1000"] and sent["ActionID"][0].startswith("salesbot-")
            await client.close()
            assert pbx.actions[-1]["Action"] == ["Logoff"] and not client.connected
            # A closed client reports, never raises or hangs.
            late = await client.originate(OriginateRequest(channel="PJSIP/answer@trunk"))
            assert late.outcome is OriginateOutcome.DISCONNECTED

    run(main())


def test_login_failures_are_typed_errors_that_say_what_to_do():
    async def main():
        async with FakeAmi() as pbx:
            with pytest.raises(AmiError, match="refused: Authentication failed; check the user and secret"):
                await AmiClient.connect(pbx.uri, "salesbot", "wrong")
        async with FakeAmi(banner="SSH-2.0-OpenSSH_9.2") as other:
            with pytest.raises(AmiError, match="did not greet as Asterisk AMI"):
                await AmiClient.connect(other.uri, "salesbot", "good")
        free = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = free.sockets[0].getsockname()[1]
        free.close()
        await free.wait_closed()
        with pytest.raises(AmiError, match="cannot reach Asterisk AMI"):
            await AmiClient.connect(f"tcp://127.0.0.1:{port}", "salesbot", "good", timeout_s=1)

    run(main())


def test_timeouts_and_dropped_connection_are_reported_per_request():
    async def main():
        async with FakeAmi() as pbx:
            client = await AmiClient.connect(pbx.uri, "salesbot", "good")
            mute = await client.originate(OriginateRequest(channel="PJSIP/mute@trunk", timeout_s=0.1),
                                          response_timeout_s=0.2)
            assert mute.outcome is OriginateOutcome.TIMEOUT and "no response" in mute.message
            silent = await client.originate(OriginateRequest(channel="PJSIP/silent@trunk", timeout_s=0.1),
                                            event_slack_s=0.2)
            assert silent.outcome is OriginateOutcome.TIMEOUT and "no OriginateResponse" in silent.message
            # The connection drops while three calls are in flight: every one is reported, none hangs.
            pending = [asyncio.create_task(client.originate(OriginateRequest(channel=f"PJSIP/{t}@trunk",
                                                                             timeout_s=5)))
                       for t in ("silent", "silent", "drop")]
            results = await asyncio.wait_for(asyncio.gather(*pending), TIMEOUT)
            assert [r.outcome for r in results] == [OriginateOutcome.DISCONNECTED] * 3
            assert not client.connected
            await client.close()

    run(main())


def test_requests_are_validated_when_built():
    with pytest.raises(InputError, match="line breaks"):
        OriginateRequest(channel="PJSIP/1@t\r\nAction: Command")
    with pytest.raises(InputError, match="line breaks"):
        OriginateRequest(channel="PJSIP/1@t", variables={"X": "a\nb"})
    with pytest.raises(InputError, match="non-empty channel"):
        OriginateRequest(channel="")
    with pytest.raises(InputError, match="timeout_s"):
        OriginateRequest(channel="PJSIP/1@t", timeout_s=0)
