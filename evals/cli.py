"""Evaluation commands, mounted under the `aftercare` console script:

    aftercare eval conversations [--engine offline|gpt] [--files F ...] [--verbose]
    aftercare eval intents [--every 5]

`conversations` plays the YAML conversation suites against an engine, each over a fresh
copy of the retail dataset in a temporary SQLite store, and prints a pass table (exit 1
when any case fails). `intents` prints the intent accuracy on the held-out examples.
`bot.cli` calls `add_commands`; each command sets `handler(args, settings) -> int`.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from evals.conversations import SUITES_DIR
from shop.errors import AftercareError

if TYPE_CHECKING:
    from providers.config import ProviderSettings

    class Settings(ProviderSettings, Protocol):
        """What the eval commands read of the app's settings (`bot.settings.Settings`)."""

        @property
        def dataset_dir(self) -> Path: ...

    from dialogs import OfflineResources
    from dialogs.turn import DialogEngine
    from evals.conversations import Conversation, ConversationResult
    from providers.embeddings import Embeddings
    from providers.llm import ChatModel
    from shop.retail import RetailService

EngineFactory = Callable[["RetailService"], "DialogEngine"]


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `eval conversations` and `eval intents` to the app's argument parser."""
    evaluation = subparsers.add_parser("eval", help="evaluate the dialog engines")
    commands = evaluation.add_subparsers(
        dest="eval_command", required=True, metavar="{conversations,intents}"
    )
    conversations = commands.add_parser(
        "conversations", help="run the YAML conversation suites, print a table"
    )
    conversations.add_argument("--engine", choices=["offline", "gpt"], default="offline")
    conversations.add_argument(
        "--files", nargs="+", type=Path, default=[SUITES_DIR], help="YAML files or folders of them"
    )
    conversations.add_argument("--verbose", action="store_true", help="print the transcript of failing cases")
    conversations.set_defaults(handler=run_conversations_command)
    intents = commands.add_parser(
        "intents", help="intent accuracy on held-out examples of prompts/intents.yaml"
    )
    intents.add_argument("--every", type=int, default=5, help="hold out every N-th example (default 5)")
    intents.set_defaults(handler=run_intents_command)


def _embeddings() -> Embeddings:
    from providers.embeddings.local import LocalEmbeddings

    return LocalEmbeddings(isolated=False)  # one short-lived process: no model process to start


def run_intents_command(args: argparse.Namespace, settings: Settings) -> int:
    from dialogs.intents import evaluate, load_intents

    try:
        report = asyncio.run(evaluate(_embeddings(), load_intents(), every=args.every))
    except AftercareError as exc:
        print(f"aftercare: {exc}", file=sys.stderr)
        return 1
    print(f"{'intent':<18} {'correct':>7} {'held out':>8}")
    for intent, (right, seen) in sorted(report.per_intent.items()):
        print(f"{intent:<18} {right:>7} {seen:>8}")
    for text, expected, got in report.mistakes:
        print(f"  miss: {text!r}: expected {expected}, got {got}")
    print(f"accuracy {report.accuracy:.1%} ({report.correct}/{report.total} held-out examples)")
    return 0


def run_conversations_command(args: argparse.Namespace, settings: Settings) -> int:
    from evals.conversations import load_conversations

    cases = load_conversations(args.files)
    try:
        results = asyncio.run(_run_all(cases, args.engine, settings))
    except _NotAvailable as exc:
        print(f"aftercare: {exc}", file=sys.stderr)
        return 2
    except AftercareError as exc:
        print(f"aftercare: {exc}", file=sys.stderr)
        return 1
    width = max((len(r.name) for r in results), default=10)
    print(f"{'conversation':<{width}}  {'file':<24} {'turns':>5} {'time':>6}  result")
    for result in results:
        verdict = "pass" if result.passed else f"FAIL: {result.failures[0]}"
        print(
            f"{result.name:<{width}}  {result.source:<24} {result.turns:>5} "
            f"{result.seconds:>5.1f}s  {verdict}"
        )
        if not result.passed and args.verbose:
            print("\n".join("      " + line for line in result.failures[1:] + result.transcript))
    passed = sum(r.passed for r in results)
    print(f"{passed}/{len(results)} conversations passed ({args.engine} engine)")
    return 0 if passed == len(results) else 1


class _NotAvailable(Exception):
    pass


def _gpt_model(settings: Settings) -> ChatModel:
    try:
        from providers.factory import build_chat_model
    except ImportError as exc:
        raise _NotAvailable(f"the GPT engine is not available ({exc})") from None
    model = build_chat_model(settings)
    if model is None:
        raise _NotAvailable("the GPT engine needs a chat model: set LLM_PROVIDER and its endpoint settings")
    return model


async def _run_all(
    cases: list[Conversation], engine_name: str, settings: Settings
) -> list[ConversationResult]:
    from dialogs import OfflineResources
    from evals.conversations import run_conversation
    from shop.dataset import import_dataset
    from shop.retail import RetailService
    from shop.store.sqlite import SqliteStore

    started = time.perf_counter()
    if engine_name == "gpt":
        _gpt_model(settings)  # fail before spending seconds on the local models
    resources = await OfflineResources.build(_embeddings())
    make_engine = _engine_factory(engine_name, resources, settings)
    print(f"models and policies ready in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    results = []
    with tempfile.TemporaryDirectory(prefix="aftercare-eval-") as folder:
        template = Path(folder) / "template.sqlite3"
        store = await SqliteStore.open(template)
        try:
            await import_dataset(store, settings.dataset_dir, progress=False)
        finally:
            await store.aclose()
        for index, case in enumerate(cases):
            path = Path(folder) / f"case-{index}.sqlite3"
            shutil.copyfile(template, path)
            store = await SqliteStore.open(path)
            try:
                results.append(await run_conversation(case, make_engine(RetailService(store)), store))
            finally:
                await store.aclose()
                path.unlink(missing_ok=True)
    return results


def _engine_factory(name: str, resources: OfflineResources, settings: Settings) -> EngineFactory:
    from dialogs import build_offline_engine

    if name == "offline":
        return lambda retail: build_offline_engine(retail, resources)
    from dialogs.gpt import GptDialog, GptPrompts
    from dialogs.tools.runner import ToolRunner

    model = _gpt_model(settings)
    prompts = GptPrompts.load()

    def make(retail: RetailService) -> DialogEngine:
        offline = build_offline_engine(retail, resources)
        return GptDialog(model, ToolRunner(retail, resources.knowledge), offline, prompts=prompts)

    return make
