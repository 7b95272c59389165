"""Evaluation commands, mounted under the `aftercare` console script:

    aftercare eval conversations [--engine offline|gpt] [--files F ...] [--verbose]
    aftercare eval intents [--every 5]
    aftercare eval gate [--file F] [--sentiment local|chat_model] [--verbose]
    aftercare eval recommendations [--sample 10]
    aftercare eval adversarial [--engine offline|gpt-scripted] [--file F] [--verbose]
    aftercare eval safety [--file F] [--verbose]

`conversations` plays the YAML conversation suites against an engine, each over a fresh
copy of the retail dataset in a temporary SQLite store, and prints a pass table (exit 1
when any case fails). `intents` prints the intent accuracy on the held-out examples.
`gate` plays the labelled set `evals/gate/conversations.yaml` through the bot's engine
(sentiment and suggestion gate included) and prints a confusion matrix, suggestions per
label and the recall on happy customers (exit 1 when an unhappy customer got suggestions).
`recommendations` checks the suggestions for every customer of the dataset (exit 1 when
one is a product they own or has nothing available) and prints a sample beside their
purchases.
`adversarial` plays the attackers' conversations of `evals/adversarial/attempts.yaml`
against the offline engine, or against the GPT dialog driven by a scripted model that
does whatever the attacker asks (`gpt-scripted`, no model endpoint needed), and prints
a table (attempt, kind, result, why) with totals (exit 1 when any other customer's data
was shown, an action ran without a yes to its summary, or the store changed without one).
`safety` runs the local content-safety check over the labelled messages of
`evals/safety/messages.yaml` (abusive, frustrated, injection, normal) and prints, per
label, what it flagged, with the precision and recall of its two answers (abuse, prompt
injection); exit 1 when a frustrated customer would have been warned as abusive.
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

from evals.adversarial import ATTEMPTS_FILE
from evals.conversations import SUITES_DIR
from evals.gate import GATE_SET
from evals.safety import SAFETY_SET
from shop.errors import AftercareError

if TYPE_CHECKING:
    from providers.config import ProviderSettings

    class Settings(ProviderSettings, Protocol):
        """What the eval commands read of the app's settings (`bot.settings.Settings`)."""

        @property
        def dataset_dir(self) -> Path: ...

    from dialogs import OfflineResources
    from dialogs.intents import IntentReport
    from dialogs.turn import DialogEngine
    from evals.adversarial import AdversarialReport, Attempt
    from evals.conversations import Conversation, ConversationResult
    from evals.gate import GateCase, GateReport, RecommendationAudit
    from providers.embeddings import Embeddings
    from providers.llm import ChatModel
    from providers.sentiment import Sentiment
    from shop.retail import RetailService

EngineFactory = Callable[["RetailService"], "DialogEngine"]


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `eval conversations`, `intents`, `gate`, `recommendations` and `adversarial`
    to the app's argument parser."""
    evaluation = subparsers.add_parser("eval", help="evaluate the dialog engines")
    commands = evaluation.add_subparsers(
        dest="eval_command",
        required=True,
        metavar="{conversations,intents,gate,recommendations,adversarial,safety}",
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
    gate = commands.add_parser(
        "gate", help="the suggestion gate on labelled conversations: confusion matrix, recall on happy"
    )
    gate.add_argument("--file", type=Path, default=GATE_SET, help="the labelled conversations (YAML)")
    gate.add_argument(
        "--sentiment",
        choices=["local", "chat_model"],
        default="local",
        help="who scores sentiment: VADER with the shop's rules, or the configured chat model",
    )
    gate.add_argument("--verbose", action="store_true", help="print the transcript of every mistake")
    gate.set_defaults(handler=run_gate_command)
    recommendations = commands.add_parser(
        "recommendations", help="check the suggestions for every customer: none owned, none unavailable"
    )
    recommendations.add_argument(
        "--sample", type=int, default=10, help="customers to print beside their purchases (default 10)"
    )
    recommendations.set_defaults(handler=run_recommendations_command)
    adversarial = commands.add_parser(
        "adversarial", help="attackers' conversations: no leaks, no unconfirmed actions, store unchanged"
    )
    adversarial.add_argument(
        "--engine",
        choices=["offline", "gpt-scripted"],
        default="offline",
        help="the offline engine, or the GPT dialog with a scripted model that complies with the attacker",
    )
    adversarial.add_argument("--file", type=Path, default=ATTEMPTS_FILE, help="the attempts (YAML)")
    adversarial.add_argument("--verbose", action="store_true", help="print the transcript of every failure")
    adversarial.set_defaults(handler=run_adversarial_command)
    safety = commands.add_parser(
        "safety", help="the local content-safety check on labelled messages: precision and recall"
    )
    safety.add_argument("--file", type=Path, default=SAFETY_SET, help="the labelled messages (YAML)")
    safety.add_argument("--verbose", action="store_true", help="print every message it got wrong")
    safety.set_defaults(handler=run_safety_command)


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
    print("\n".join(_confusion_matrix(report)))
    print(f"accuracy {report.accuracy:.1%} ({report.correct}/{report.total} held-out examples)")
    return 0


def _confusion_matrix(report: IntentReport) -> list[str]:
    """Rows: the intent an example belongs to; columns (numbered as the rows): what it was
    classified as. Dots are zeros, so the mistakes stand out off the diagonal."""
    intents, counts = report.matrix()
    width = max(len(name) for name in intents) + 4
    header = " " * width + "".join(f"{number:>3}" for number in range(1, len(intents) + 1))
    lines = ["confusion matrix (row: expected, column: classified as)", header]
    for number, (name, row) in enumerate(zip(intents, counts, strict=True), start=1):
        cells = "".join(f"{count:>3}" if count else "  ." for count in row)
        lines.append(f"{number:>2} {name:<{width - 3}}{cells}")
    return lines


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


def run_gate_command(args: argparse.Namespace, settings: Settings) -> int:
    from evals.gate import load_gate_set

    try:
        cases = load_gate_set(args.file)
    except (OSError, ValueError) as exc:
        print(f"aftercare: {exc}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(_run_gate(cases, args.sentiment, settings))
    except _NotAvailable as exc:
        print(f"aftercare: {exc}", file=sys.stderr)
        return 2
    except AftercareError as exc:
        print(f"aftercare: {exc}", file=sys.stderr)
        return 1
    print("\n".join(report.lines(verbose=args.verbose)))
    return 1 if report.leaks else 0


async def _run_gate(cases: list[GateCase], sentiment_name: str, settings: Settings) -> GateReport:
    from dialogs import OfflineResources
    from evals.gate import run_gate_eval
    from providers.sentiment.local import LocalSentiment

    started = time.perf_counter()
    model = _gpt_model(settings, "--sentiment chat_model") if sentiment_name == "chat_model" else None
    try:
        if model is None:
            sentiment: Sentiment = LocalSentiment()
        else:
            from providers.sentiment.chat_model import ChatModelSentiment

            sentiment = ChatModelSentiment(model, LocalSentiment())
        resources = await OfflineResources.build(_embeddings())
        print(f"models and policies ready in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        return await run_gate_eval(cases, sentiment, resources, settings.dataset_dir)
    finally:
        if model is not None:
            await model.aclose()


def run_recommendations_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        audit = asyncio.run(_audit_recommendations(settings))
    except AftercareError as exc:
        print(f"aftercare: {exc}", file=sys.stderr)
        return 1
    print("\n".join(audit.lines(sample=args.sample)))
    return 1 if audit.violations else 0


async def _audit_recommendations(settings: Settings) -> RecommendationAudit:
    from evals.gate import audit_recommendations
    from shop.dataset import import_dataset
    from shop.store.sqlite import SqliteStore

    with tempfile.TemporaryDirectory(prefix="aftercare-eval-") as folder:
        store = await SqliteStore.open(Path(folder) / "retail.sqlite3")
        try:
            await import_dataset(store, settings.dataset_dir, progress=False)
            return await audit_recommendations(store, _embeddings(), store)
        finally:
            await store.aclose()


def run_adversarial_command(args: argparse.Namespace, settings: Settings) -> int:
    from evals.adversarial import load_attempts

    try:
        attempts = load_attempts(args.file)
    except (OSError, ValueError) as exc:
        print(f"aftercare: {exc}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(_run_adversarial(attempts, args.engine, settings))
    except AftercareError as exc:
        print(f"aftercare: {exc}", file=sys.stderr)
        return 1
    print("\n".join(report.lines(verbose=args.verbose)))
    return 1 if report.failed else 0


async def _run_adversarial(attempts: list[Attempt], engine: str, settings: Settings) -> AdversarialReport:
    from dialogs import OfflineResources
    from evals.adversarial import compliant_gpt_engines, offline_engines, run_adversarial

    started = time.perf_counter()
    resources = await OfflineResources.build(_embeddings())
    print(f"models and policies ready in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    make = offline_engines(resources) if engine == "offline" else compliant_gpt_engines(resources)
    return await run_adversarial(attempts, make, settings.dataset_dir, engine=engine)


def run_safety_command(args: argparse.Namespace, settings: Settings) -> int:
    from evals.safety import load_safety_set, run_safety_eval
    from providers.safety.local import LocalContentSafety

    try:
        messages = load_safety_set(args.file)
    except (OSError, ValueError) as exc:
        print(f"aftercare: {exc}", file=sys.stderr)
        return 2
    report = asyncio.run(run_safety_eval(messages, LocalContentSafety()))
    print("\n".join(report.lines(verbose=args.verbose)))
    return 1 if report.frustrated_flagged else 0


class _NotAvailable(Exception):
    pass


def _gpt_model(settings: Settings, needed_by: str = "the GPT engine") -> ChatModel:
    try:
        from providers.factory import build_chat_model
    except ImportError as exc:
        raise _NotAvailable(f"{needed_by} is not available ({exc})") from None
    model = build_chat_model(settings)
    if model is None:
        raise _NotAvailable(
            f"{needed_by} needs a chat model: set LLM_PROVIDER (azure or openai) and its endpoint settings"
        )
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
    from dialogs.safety import SafetyGuard
    from providers.safety.local import LocalContentSafety

    # Behind the content-safety check, as the app runs them (the local rules; no cloud).
    if name == "offline":
        return lambda retail: SafetyGuard(build_offline_engine(retail, resources), LocalContentSafety())
    from dialogs.gpt import GptDialog, GptPrompts
    from dialogs.tools.runner import ToolRunner

    model = _gpt_model(settings)
    prompts = GptPrompts.load()
    safety = LocalContentSafety([prompts.system])

    def make(retail: RetailService) -> DialogEngine:
        offline = build_offline_engine(retail, resources)
        return SafetyGuard(
            GptDialog(model, ToolRunner(retail, resources.knowledge), offline, prompts=prompts), safety
        )

    return make
