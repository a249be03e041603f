"""A small loopback server speaking the OpenAI (embeddings, audio transcriptions, chat
completions) and Anthropic Messages wire formats.

The real SDK clients are pointed at it with a base URL. Faults are scripted per path and
consumed in order: ``"429"`` (with Retry-After), ``"500"``, ``"401"``, ``"malformed"`` (a
200 whose body is not JSON), ``"slow"`` (answers after 2 s), ``"ok"`` (no fault), and for
streams ``"cut"`` (stops after the first text delta) and ``"nousage"``. Every request is
kept for assertions; ``billed`` holds the usage of every answer the server completed.

A chat answer is ``answer``, or what ``responder`` returns for the request's body (a test
that plays a model: it can read the excerpts it was given and cite right or wrong times).
Chat requests without ``"stream": true`` get one JSON message (the short rewrite and title
calls).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import av
import numpy as np

DIMENSION = 1536


def fake_embedding(text: str, dimension: int = DIMENSION) -> np.ndarray:
    """Hashed bag of words: texts sharing words point the same way."""
    vector = np.zeros(dimension, dtype=np.float32)
    for word in text.lower().split():
        digest = hashlib.sha256(word.strip(".,?!'\"").encode()).digest()
        vector[int.from_bytes(digest[:4], "little") % dimension] += 1.0
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def words(text: str) -> int:
    return len(text.split())


class Loopback:
    def __init__(self) -> None:
        self.faults: dict[str, list[str]] = defaultdict(list)
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.answer = "RSI was introduced in 1978 [01:52]."
        self.responder: Callable[[dict[str, Any]], str] | None = None
        self.cache_usage = {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        self.billed: list[dict[str, int]] = []
        self.openai_cached_tokens = 0
        self.pieces: dict[int, dict[str, Any]] = {}
        self.port = 0

    def reply(self, body: dict[str, Any]) -> str:
        return self.responder(body) if self.responder is not None else self.answer

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def served(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)


def _multipart(content_type: str, raw: bytes) -> dict[str, Any]:
    message = BytesParser(policy=policy.default).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if part.get_filename():
            fields["filename"] = part.get_filename()
            fields[str(name)] = payload
        else:
            fields[str(name)] = payload.decode() if isinstance(payload, bytes) else payload
    return fields


def _handler(state: Loopback) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["content-length"]))
            path = self.path
            if path == "/v1/audio/transcriptions":
                body = _multipart(self.headers["content-type"], raw)
            else:
                body = json.loads(raw or b"{}")
            state.requests.append((path, body))
            fault = state.faults[path].pop(0) if state.faults[path] else None
            if fault == "slow":
                time.sleep(2.0)  # longer than the tests' client timeout
                fault = None
            if fault == "429":
                self._json(429, {"error": {"type": "rate_limit_error",
                                           "message": "slow down"}}, {"retry-after": "1"})
            elif fault == "500":
                self._json(500, {"error": {"type": "api_error", "message": "boom"}})
            elif fault == "401":
                self._json(401, {"error": {"type": "authentication_error",
                                           "message": "invalid x-api-key"}})
            elif fault == "malformed":
                data = b"{not json"
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            elif path == "/v1/embeddings":
                self._embeddings(body)
            elif path == "/v1/messages" and not body.get("stream"):
                self._message(body)
            elif path == "/v1/messages":
                self._messages(body, cut=fault == "cut")
            elif path == "/v1/audio/transcriptions":
                self._transcription(body)
            elif path == "/v1/chat/completions" and not body.get("stream"):
                self._completion(body)
            elif path == "/v1/chat/completions":
                self._completions(body, cut=fault == "cut", usage=fault != "nousage")
            else:
                self._json(404, {"error": {"message": f"no route {path}"}})

        def _embeddings(self, body: dict[str, Any]) -> None:
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = []
            for index, text in enumerate(texts):
                vector = fake_embedding(text)
                encoded: Any = (base64.b64encode(vector.tobytes()).decode()
                                if body.get("encoding_format") == "base64" else vector.tolist())
                data.append({"object": "embedding", "index": index, "embedding": encoded})
            tokens = sum(words(t) for t in texts) + len(texts)
            state.billed.append({"input_token": tokens})
            self._json(200, {"object": "list", "data": data, "model": body["model"],
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

        def _message(self, body: dict[str, Any]) -> None:
            text = state.reply(body)
            usage = {"input_tokens": words(json.dumps(body["messages"])
                                           + json.dumps(body.get("system", ""))),
                     "output_tokens": words(text)}
            state.billed.append({"input_token": usage["input_tokens"],
                                 "output_token": usage["output_tokens"]})
            self._json(200, {"id": "msg_loopback", "type": "message", "role": "assistant",
                             "model": body["model"], "stop_reason": "end_turn",
                             "stop_sequence": None, "usage": usage,
                             "content": [{"type": "text", "text": text}]})

        def _completion(self, body: dict[str, Any]) -> None:
            text = state.reply(body)
            prompt, completion = words(json.dumps(body["messages"])), words(text)
            state.billed.append({"input_token": prompt, "output_token": completion})
            self._json(200, {"id": "chatcmpl-loopback", "object": "chat.completion",
                             "created": 0, "model": body["model"],
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": text}}],
                             "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                       "total_tokens": prompt + completion}})

        def _messages(self, body: dict[str, Any], *, cut: bool) -> None:
            prompt = json.dumps(body["messages"]) + json.dumps(body.get("system", ""))
            input_tokens = words(prompt)
            pieces = state.reply(body).split(" ")
            deltas = [p + (" " if i < len(pieces) - 1 else "") for i, p in enumerate(pieces)]
            output_tokens = len(pieces)
            usage = {"input_tokens": input_tokens, "output_tokens": 1, **state.cache_usage}
            events: list[tuple[str, dict[str, Any]]] = [
                ("message_start", {"type": "message_start", "message": {
                    "id": "msg_loopback", "type": "message", "role": "assistant",
                    "model": body["model"], "content": [], "stop_reason": None,
                    "stop_sequence": None, "usage": usage}}),
                ("content_block_start", {"type": "content_block_start", "index": 0,
                                         "content_block": {"type": "text", "text": ""}}),
            ]
            for delta in deltas:
                events.append(("content_block_delta", {
                    "type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": delta}}))
            events += [
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                ("message_delta", {"type": "message_delta",
                                   "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                   "usage": {"output_tokens": output_tokens}}),
                ("message_stop", {"type": "message_stop"}),
            ]
            if cut:
                events = events[:3]
            else:
                state.billed.append({"input_token": input_tokens, "output_token": output_tokens,
                                     "cache_write_token":
                                         state.cache_usage["cache_creation_input_tokens"],
                                     "cache_read_token":
                                         state.cache_usage["cache_read_input_tokens"]})
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            for name, data in events:
                self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()
            self.close_connection = True

        def _transcription(self, body: dict[str, Any]) -> None:
            audio = body["file"]
            with av.open(io.BytesIO(audio)) as container:
                duration = float(container.duration or 0) / av.time_base
            index = int(body["filename"].split("-")[1].split(".")[0])
            segments, all_words = [], []
            for n, start in enumerate(np.arange(0.0, duration, 5.0)):
                end = min(float(start) + 5.0, duration)
                text = f"piece {index} part {n}"
                segments.append({"id": n, "seek": 0, "start": float(start), "end": end,
                                 "text": " " + text, "tokens": [], "temperature": 0.0,
                                 "avg_logprob": -0.1, "compression_ratio": 1.0,
                                 "no_speech_prob": 0.0})
                step = (end - float(start)) / 4
                for k, word in enumerate(text.split()):
                    all_words.append({"word": word, "start": float(start) + k * step,
                                      "end": float(start) + (k + 1) * step})
            seconds = round(duration, 2)
            state.pieces[index] = {"duration": duration, "segments": segments}
            state.billed.append({"audio_second": seconds})
            self._json(200, {"task": "transcribe", "language": "english",
                             "duration": duration, "text": " ".join(
                                 s["text"] for s in segments),
                             "segments": segments, "words": all_words,
                             "usage": {"type": "duration", "seconds": seconds}})

        def _completions(self, body: dict[str, Any], *, cut: bool, usage: bool) -> None:
            prompt_tokens = words(json.dumps(body["messages"]))
            pieces = state.reply(body).split(" ")
            chunks: list[dict[str, Any]] = []
            for i, piece in enumerate(pieces):
                text = piece + (" " if i < len(pieces) - 1 else "")
                chunks.append({"choices": [{"index": 0, "delta": {"content": text},
                                            "finish_reason": None}]})
            chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            cached = state.openai_cached_tokens
            if usage:
                chunks.append({"choices": [], "usage": {
                    "prompt_tokens": prompt_tokens, "completion_tokens": len(pieces),
                    "total_tokens": prompt_tokens + len(pieces),
                    "prompt_tokens_details": {"cached_tokens": cached}}})
            if cut:
                chunks = chunks[:2]
            elif usage:
                state.billed.append({"input_token": prompt_tokens - cached,
                                     "cache_read_token": cached,
                                     "output_token": len(pieces)})
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            for chunk in chunks:
                payload = {"id": "chatcmpl-loopback", "object": "chat.completion.chunk",
                           "created": 0, "model": body["model"], **chunk}
                self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
                self.wfile.flush()
            if not cut:
                self.wfile.write(b"data: [DONE]\n\n")
            self.close_connection = True

    return Handler


def cloud_env(server: Loopback, data_dir: str) -> dict[str, str]:
    """The settings (environment) that put embeddings and chat on this server.

    The coverage check is off: the server transcribes to placeholder words ("piece 0 part
    1") that cover no question, and these settings are for tests of billing and wiring."""
    return {
        "CHRONOS_DATA_DIR": data_dir, "CHRONOS_COVERAGE_MIN": "off",
        "CHRONOS_EMBEDDER": "openai", "OPENAI_API_KEY": "sk-test",
        "CHRONOS_OPENAI_BASE_URL": f"{server.base_url}/v1",
        "CHRONOS_CHAT_MODEL": "anthropic", "ANTHROPIC_API_KEY": "sk-ant-test",
        "CHRONOS_ANTHROPIC_BASE_URL": server.base_url,
    }


@contextmanager
def loopback() -> Iterator[Loopback]:
    state = Loopback()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
