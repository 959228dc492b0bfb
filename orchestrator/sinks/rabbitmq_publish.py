"""Publishing many messages on one aiormq channel with confirms, a window at a time.

aiormq's basic_publish hands each message to the connection's writer on its own, and the
writer writes each with a send() of its own: a system call, and a small read for the broker,
per message, which cost more than everything else a message takes (three times the CPU of a
whole window framed at once, measured). Here a window of messages is framed into one write;
everything else is aiormq's own bookkeeping, done as its basic_publish does it (aiormq
7.2.4, pinned): delivery tags and confirmation futures under the channel's lock, the message
id → delivery tag map its returns handler looks up, futures from the channel's store so a
closing channel fails them. Confirms, nacks and returns so reach these messages exactly as
they would reach basic_publish's.

At most two windows are unconfirmed: the next is on the wire while the broker confirms the
last."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import aiormq
from aiormq.abc import ChannelFrame
from pamqp.body import ContentBody
from pamqp.commands import Basic
from pamqp.header import ContentHeader

Message = tuple[bytes, Basic.Properties, str]  # body, properties (with a message id), key

# A window ends at this many messages or this many body bytes, whichever comes first.
WINDOW_MESSAGES = 1000
WINDOW_BYTES = 4 * 1024 * 1024


class _Window:
    """One window's messages written, not yet confirmed."""

    def __init__(
        self,
        channel: aiormq.Channel,
        confirmations: list[asyncio.Future[Any]],
        ids: list[tuple[str, int]],
    ) -> None:
        self._channel = channel
        self.confirmations = confirmations
        self._ids = ids

    async def outcomes(self) -> list[BaseException]:
        """Waits for every confirm; returns the failures (returns, nacks, a closed channel)."""
        try:
            results = await asyncio.gather(*self.confirmations, return_exceptions=True)
        finally:
            self.forget()
        return [r for r in results if isinstance(r, BaseException)]

    def cancel(self) -> None:
        for confirmation in self.confirmations:
            confirmation.cancel()
        self.forget()

    def forget(self) -> None:
        # What basic_publish's done callback does, once per window instead of per message.
        known = self._channel.message_id_delivery_tag
        for message_id, tag in self._ids:
            if known.get(message_id) == tag:
                del known[message_id]


def _body_frames(body: bytes, limit: int) -> list[ContentBody]:
    # As aiormq splits a body that does not fit one frame.
    if len(body) < limit:
        return [ContentBody(body)]
    return [ContentBody(body[i : i + limit]) for i in range(0, len(body), limit)]


async def _write(channel: aiormq.Channel, exchange: str, messages: Sequence[Message]) -> _Window:
    """Frames `messages` and hands them to the writer as one write; returns their window."""
    limit = channel.max_content_size
    frames: list[Any] = []
    for body, properties, routing_key in messages:
        frames.append(Basic.Publish(exchange=exchange, routing_key=routing_key, mandatory=True))
        frames.append(ContentHeader(0, len(body), properties))
        frames.extend(_body_frames(body, limit))
    confirmations: list[asyncio.Future[Any]] = []
    ids: list[tuple[str, int]] = []
    async with channel.lock:
        first = channel.delivery_tag + 1
        for n, (_, properties, _) in enumerate(messages):
            confirmation = channel.create_future()
            channel.confirmations[first + n] = confirmation
            assert properties.message_id is not None
            channel.message_id_delivery_tag[properties.message_id] = first + n
            confirmations.append(confirmation)
            ids.append((properties.message_id, first + n))
        channel.delivery_tag += len(messages)
        drained = channel.create_future()
        window = _Window(channel, confirmations, ids)
        try:
            await channel.write_queue.put(
                ChannelFrame.marshall(
                    frames=frames, channel_number=channel.number, drain_future=drained
                )
            )
        except BaseException:
            # Not handed over: the broker never sees these tags, so they are used again.
            channel.delivery_tag -= len(messages)
            for tag in range(first, first + len(messages)):
                channel.confirmations.pop(tag, None)
            window.cancel()
            drained.cancel()
            raise
    try:
        await drained  # the writer wrote it: TCP's back pressure reaches us here
    except BaseException:
        window.cancel()
        raise
    return window


def windows(messages: Iterable[Message]) -> Iterator[list[Message]]:
    """The messages cut into windows, taken from `messages` only as each window is needed."""
    window: list[Message] = []
    size = 0
    for message in messages:
        window.append(message)
        size += len(message[0])
        if len(window) >= WINDOW_MESSAGES or size >= WINDOW_BYTES:
            yield window
            window, size = [], 0
    if window:
        yield window


async def publish_confirmed(
    channel: aiormq.Channel, exchange: str, messages: Iterable[Message]
) -> tuple[int, list[BaseException]]:
    """Publishes persistent, mandatory messages with confirms; returns how many were sent and
        the failures of those. Stops after the first window with a failure. `messages` may be a
    generator: only two windows of them exist at a time."""
    if not channel.publisher_confirms:
        raise ValueError("the channel must have publisher confirms on")
    sent = 0
    failed: list[BaseException] = []
    previous: _Window | None = None
    current: _Window | None = None
    try:
        for chunk in windows(messages):
            current = await _write(channel, exchange, chunk)
            sent += len(chunk)
            if previous is not None:
                failed += await previous.outcomes()
            previous, current = current, None
            if failed:
                break
        if previous is not None:
            failed += await previous.outcomes()
            previous = None
    except BaseException:
        for window in (previous, current):
            if window is not None:
                window.cancel()
        raise
    return sent, failed
