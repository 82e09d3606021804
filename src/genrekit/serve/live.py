"""``WebSocket /ws/live``: the genre of what the browser's microphone hears, about once a second.

The browser sends ``{"sample_rate": 48000}``, then binary float32 little-endian mono PCM; about
once per ``live_interval_s`` of audio received the server answers the fields of a prediction
(:func:`genrekit.schema.prediction_json`: ``genre``, ``probability``, ``confident``, ``no_music``,
``label``, ``genres``, ``top``, ``probabilities``) and ``t`` (seconds) for the last ``live_window_s`` seconds. A text
message ``{"type": "stop"}`` ends the session after the last due prediction.

Bounded whatever the clients do: at most ``live_max_sessions`` sessions, each keeping only its
last window of audio, refusing messages over ``live_max_message_bytes`` and closing after
``live_idle_timeout_s`` without a message. At most one prediction per session is in flight;
when the model falls behind, the predictions due meanwhile collapse into one on the newest audio.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import suppress

import numpy as np
from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect

from genrekit.errors import GenrekitError
from genrekit.serve.present import prediction_body
from genrekit.serve.state import ServeState, serve_state

router = APIRouter()


class _SessionEnd(Exception):
    """The session ends: ``error``/``detail`` tell the client why (none for a clean stop)."""

    def __init__(self, code: int, error: str = "", detail: str = ""):
        super().__init__(error)
        self.code, self.error, self.detail = code, error, detail


class LiveSession:
    """One microphone stream: its last window of audio and its pending prediction.

    Parameters
    ----------
    ws : the accepted socket
    serve : the app's state (model, pool, settings)
    sample_rate : the browser's sample rate
    """

    def __init__(self, *, ws: WebSocket, serve: ServeState, sample_rate: int):
        self.ws, self.serve, self.sr = ws, serve, sample_rate
        self.ring = np.zeros(int(round(serve.config.live_window_s * sample_rate)), np.float32)
        self.pos = 0  # where the next sample goes in the ring
        self.filled = 0  # samples of the ring that hold audio (fewer at the start of a session)
        self.received = 0
        self.interval = max(1, int(round(serve.config.live_interval_s * sample_rate)))
        self.next_at = self.interval
        self.due = False
        self.runner: asyncio.Task | None = None
        self.send_lock = asyncio.Lock()

    async def send(self, payload: dict) -> None:
        async with self.send_lock:
            await self.ws.send_json(payload)

    def push(self, data: bytes) -> None:
        """Keep the newest window of audio; start a prediction when one falls due."""
        if len(data) > self.serve.config.live_max_message_bytes:
            limit = self.serve.config.live_max_message_bytes
            raise _SessionEnd(1009, "audio chunk too large", f"send at most {limit} bytes")
        if len(data) % 4:
            raise _SessionEnd(1003, "bad audio chunk", "binary messages must hold whole float32 samples (4 bytes each)")
        n = len(self.ring)
        chunk = np.nan_to_num(np.frombuffer(data, dtype="<f4"), nan=0.0, posinf=0.0, neginf=0.0)[-n:]
        first = min(len(chunk), n - self.pos)
        self.ring[self.pos : self.pos + first] = chunk[:first]
        self.ring[: len(chunk) - first] = chunk[first:]
        self.pos = (self.pos + len(chunk)) % n
        self.filled = min(n, self.filled + len(chunk))
        self.received += len(data) // 4
        if self.received >= self.next_at:
            self.next_at = self.received + self.interval
            self.due = True
            if self.runner is None or self.runner.done():
                self.runner = asyncio.create_task(self._predictions())

    async def _predictions(self) -> None:
        while self.due:
            self.due = False
            y = np.concatenate([self.ring[self.pos :], self.ring[: self.pos]])[len(self.ring) - self.filled :]
            t = self.received / self.sr
            try:
                pred = await self.serve.pool.run(self.serve.predictor.predict_signal, y, self.sr)
            except GenrekitError as exc:
                await self.send({"error": "prediction failed", "detail": str(exc)})
                continue
            body = prediction_body(pred, top_k=3, name="microphone")
            keys = ("genre", "probability", "confident", "no_music", "label", "genres", "top", "probabilities")
            await self.send({**{k: body[k] for k in keys}, "t": round(t, 3)})

    async def finish(self) -> None:
        """Send the prediction still due, then close."""
        if self.runner is not None:
            await self.runner
        await self.ws.close(code=1000)

    def cancel(self) -> None:
        if self.runner is not None and not self.runner.done():
            self.runner.cancel()


async def _receive(ws: WebSocket, timeout_s: float) -> dict:
    try:
        message = await asyncio.wait_for(ws.receive(), timeout_s)
    except asyncio.TimeoutError:
        detail = f"no message for {timeout_s:g} s; start the microphone again"
        raise _SessionEnd(1008, "live session idle", detail) from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    return message


def _start(message: dict) -> int:
    try:
        sr = int(json.loads(message.get("text") or "")["sample_rate"])
        if 8000 <= sr <= 192000:
            return sr
    except (ValueError, KeyError, TypeError):
        pass
    raise _SessionEnd(1003, "bad start message", 'first send a JSON text message like {"sample_rate": 48000}')


@router.websocket("/ws/live")
async def live(ws: WebSocket, serve: ServeState = Depends(serve_state)) -> None:
    """Microphone audio in; about every second, the genre of the last few seconds out."""
    await ws.accept()
    config = serve.config
    if serve.live_sessions >= config.live_max_sessions:
        with suppress(Exception):
            detail = f"{serve.live_sessions} microphones are already listening; try again later"
            await ws.send_json({"error": "too many live sessions", "detail": detail})
            await ws.close(code=1013)
        return
    serve.live_sessions += 1
    session: LiveSession | None = None
    try:
        session = LiveSession(ws=ws, serve=serve, sample_rate=_start(await _receive(ws, config.live_idle_timeout_s)))
        await session.send(
            {
                "ready": True,
                "sample_rate": session.sr,
                "window_s": config.live_window_s,
                "labels": serve.labels,
                "idle_timeout_s": config.live_idle_timeout_s,
            }
        )
        while True:
            message = await _receive(ws, config.live_idle_timeout_s)
            if message.get("bytes") is not None:
                session.push(message["bytes"])
                continue
            with suppress(ValueError, TypeError, AttributeError):
                if json.loads(message.get("text") or "").get("type") == "stop":
                    await session.finish()
                    return
    except _SessionEnd as end:
        with suppress(Exception):
            await ws.send_json({"error": end.error, "detail": end.detail})
            await ws.close(code=end.code)
    except WebSocketDisconnect:
        pass
    finally:
        serve.live_sessions -= 1
        if session is not None:
            session.cancel()
