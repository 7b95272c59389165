"""A scripted OpenAI-compatible server: chat completions and embeddings, answering what a test scripts.

It stands in for Azure OpenAI and OpenAI, which cannot be reached from here, at the HTTP
boundary: the real `openai` SDK talks to it. It serves both URL shapes
(`/v1/chat/completions` and Azure's `/openai/deployments/{name}/chat/completions`),
streams Server-Sent Events like the real service, and records every request.

A step is a dict:
  {"text": "..."}                                   a plain answer (streamed in small chunks)
  {"tool_calls": [{"name": n, "arguments": {...}}]} tool calls (arguments may be a raw string)
  {"status": 429, "headers": {"retry-after": "1"}}  an error status (with an OpenAI error body)
  {"content_filter": "finish"}                      Azure's content filter on the answer
  {"content_filter": "prompt"}                      Azure's 400 for a filtered prompt
  {"delay_s": 2.0, ...}                             wait before answering (for timeouts)
  {"chunk_delay_s": 0.05, ...}                      pause between streamed chunks (a slow writer)
Steps are taken from a queue; when it is empty, `responder(request)` decides, if set.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

Step = dict[str, Any]


class ScriptedOpenAI:
    def __init__(self) -> None:
        self.steps: deque[Step] = deque()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.responder: Callable[[dict[str, Any]], Step] | None = None
        self._ids = itertools.count(1)
        self._server: TestServer | None = None

    def script(self, *steps: Step) -> None:
        self.steps.extend(steps)

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("")).rstrip("/")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._complete)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._complete)
        app.router.add_post("/v1/embeddings", self._embed)
        app.router.add_post("/openai/deployments/{deployment}/embeddings", self._embed)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

    async def _embed(self, request: web.Request) -> web.Response:
        """`/embeddings`: a scripted error status if one is queued, else one vector per
        input (three dimensions derived from the text, not normalised, returned in reverse
        order with their `index`, as the API may), recorded like every request."""
        body = await request.json()
        self.requests.append(body)
        self.paths.append(request.path_qs)
        if self.steps and "status" in self.steps[0]:
            step = self.steps.popleft()
            return web.json_response({"error": {"message": "scripted"}}, status=int(step["status"]))
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        rows = [
            {"object": "embedding", "index": i, "embedding": [float(len(t)), float(t.count("e")) + 1.0, 2.0]}
            for i, t in enumerate(texts)
        ]
        return web.json_response(
            {
                "object": "list",
                "data": list(reversed(rows)),
                "model": body.get("model", ""),
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        )

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        self.paths.append(request.path_qs)
        if self.steps:
            step = self.steps.popleft()
        elif self.responder is not None:
            step = self.responder(body)
        else:
            step = {"status": 500, "message": "the script has run out of steps"}
        if step.get("delay_s"):
            await asyncio.sleep(float(step["delay_s"]))
        if "status" in step:
            error = {
                "error": {
                    "message": step.get("message", "scripted error"),
                    "type": "server_error",
                    "code": None,
                }
            }
            return web.json_response(error, status=int(step["status"]), headers=step.get("headers"))
        if step.get("content_filter") == "prompt":
            error = {
                "error": {
                    "message": "The prompt was filtered by the content management policy.",
                    "type": None,
                    "param": "prompt",
                    "code": "content_filter",
                    "status": 400,
                    "innererror": {"code": "ResponsibleAIPolicyViolation"},
                }
            }
            return web.json_response(error, status=400)
        chunks = self._chunks(body, step)
        if not body.get("stream"):
            return web.json_response(self._whole(body, step))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in chunks:
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            if step.get("chunk_delay_s"):
                await asyncio.sleep(float(step["chunk_delay_s"]))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _base(self, body: dict[str, Any], completion_id: str) -> dict[str, Any]:
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": body.get("model", ""),
        }

    def _chunks(self, body: dict[str, Any], step: Step) -> list[dict[str, Any]]:
        completion_id = f"chatcmpl-{next(self._ids)}"
        chunks: list[dict[str, Any]] = []

        def delta(d: dict[str, Any], finish: str | None = None) -> None:
            chunk = self._base(body, completion_id)
            chunk["choices"] = [{"index": 0, "delta": d, "finish_reason": finish}]
            chunks.append(chunk)

        delta({"role": "assistant", "content": ""})
        text = str(step.get("text", ""))
        for start in range(0, len(text), 8):
            delta({"content": text[start : start + 8]})
        for index, call in enumerate(step.get("tool_calls", [])):
            arguments = (
                call["arguments"] if isinstance(call["arguments"], str) else json.dumps(call["arguments"])
            )
            head = {"index": index, "id": f"call_{next(self._ids)}", "type": "function"}
            delta({"tool_calls": [{**head, "function": {"name": call["name"], "arguments": ""}}]})
            for start in range(0, len(arguments), 10):
                delta(
                    {
                        "tool_calls": [
                            {"index": index, "function": {"arguments": arguments[start : start + 10]}}
                        ]
                    }
                )
        finish = "content_filter" if step.get("content_filter") == "finish" else None
        delta({}, finish or ("tool_calls" if step.get("tool_calls") else "stop"))
        usage = self._base(body, completion_id)
        usage["choices"] = []
        prompt_tokens = sum(len(str(m.get("content") or "")) // 4 + 1 for m in body.get("messages", []))
        usage["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(text) // 4 + 1,
            "total_tokens": prompt_tokens + len(text) // 4 + 1,
        }
        chunks.append(usage)
        return chunks

    def _whole(self, body: dict[str, Any], step: Step) -> dict[str, Any]:
        calls = [
            {
                "id": f"call_{next(self._ids)}",
                "type": "function",
                "function": {
                    "name": c["name"],
                    "arguments": c["arguments"]
                    if isinstance(c["arguments"], str)
                    else json.dumps(c["arguments"]),
                },
            }
            for c in step.get("tool_calls", [])
        ]
        message: dict[str, Any] = {"role": "assistant", "content": step.get("text")}
        if calls:
            message["tool_calls"] = calls
        return {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", ""),
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
