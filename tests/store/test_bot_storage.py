"""The Bot Framework `Storage` adapter over both stores: MemoryStorage's e_tag rules,
and `ConversationState` shared by two app instances never losing an update."""

from __future__ import annotations

import pytest
from botbuilder.core import ConversationState, StoreItem, TurnContext
from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import Activity, ActivityTypes, ChannelAccount, ConversationAccount

from bot.state_storage import BotFrameworkStorage
from shop.errors import ConcurrencyConflict
from tests.store.conftest import AnyStore


@pytest.fixture
def storage(store: AnyStore) -> BotFrameworkStorage:
    return BotFrameworkStorage(store)


def turn(conversation_id: str = "conv-1") -> TurnContext:
    activity = Activity(
        type=ActivityTypes.message,
        channel_id="webchat",
        conversation=ConversationAccount(id=conversation_id),
        from_property=ChannelAccount(id="user-1"),
        recipient=ChannelAccount(id="bot"),
        text="hi",
    )
    return TurnContext(TestAdapter(), activity)


async def test_read_returns_only_stored_keys_with_an_e_tag(storage: BotFrameworkStorage) -> None:
    assert await storage.read([]) == {}
    await storage.write({"a": {"count": 1}})
    items = await storage.read(["a", "missing"])
    assert set(items) == {"a"}
    item = items["a"]
    assert isinstance(item, dict) and item["count"] == 1 and item["e_tag"]


async def test_a_stale_e_tag_is_refused_with_the_phrases_botbuilder_checks(
    storage: BotFrameworkStorage,
) -> None:
    await storage.write({"a": {"count": 1}})
    read = (await storage.read(["a"]))["a"]
    assert isinstance(read, dict)
    await storage.write({"a": {**read, "count": 2}})
    with pytest.raises(ConcurrencyConflict, match="Etag conflict: precondition is not met"):
        await storage.write({"a": {**read, "count": 3}})
    current = (await storage.read(["a"]))["a"]
    assert isinstance(current, dict) and current["count"] == 2


async def test_star_e_tag_overwrites_and_empty_e_tag_is_refused(storage: BotFrameworkStorage) -> None:
    await storage.write({"a": {"count": 1}})
    await storage.write({"a": {"count": 5, "e_tag": "*"}})
    current = (await storage.read(["a"]))["a"]
    assert isinstance(current, dict) and current["count"] == 5
    with pytest.raises(ValueError, match="empty e_tag"):
        await storage.write({"a": {"count": 6, "e_tag": ""}})


async def test_store_items_are_written_by_their_attributes(storage: BotFrameworkStorage) -> None:
    await storage.write({"item": StoreItem(message="hello", count=2)})
    read = (await storage.read(["item"]))["item"]
    assert isinstance(read, dict)
    assert read["message"] == "hello" and read["count"] == 2
    stale = StoreItem(message="late", e_tag="not-the-current-one")
    with pytest.raises(ConcurrencyConflict):
        await storage.write({"item": stale})


async def test_values_json_cannot_hold_are_refused_by_name(storage: BotFrameworkStorage) -> None:
    with pytest.raises(TypeError, match="'bad'"):
        await storage.write({"bad": {"when": object()}})


async def test_delete_removes_keys(storage: BotFrameworkStorage) -> None:
    await storage.write({"a": {"x": 1}, "b": {"x": 2}})
    await storage.delete(["a", "never-there"])
    assert set(await storage.read(["a", "b"])) == {"b"}


async def test_conversation_state_persists_across_turns(storage: BotFrameworkStorage) -> None:
    state = ConversationState(storage)
    turns = state.create_property("turns")
    for expected in (1, 2, 3):
        context = turn()
        await state.load(context)
        # get(context, 0) would give None: botbuilder treats a falsy default as none at all.
        count = (await turns.get(context) or 0) + 1
        await turns.set(context, count)
        await state.save_changes(context)
        assert count == expected


async def test_two_instances_never_overwrite_each_others_turn(storage: BotFrameworkStorage) -> None:
    instance_a, instance_b = ConversationState(storage), ConversationState(storage)
    seed = turn()
    await instance_a.load(seed)
    await instance_a.create_property("notes").set(seed, ["first"])
    await instance_a.save_changes(seed)

    context_a, context_b = turn(), turn()
    await instance_a.load(context_a)
    await instance_b.load(context_b)
    notes_a, notes_b = instance_a.create_property("notes"), instance_b.create_property("notes")
    await notes_a.set(context_a, [*await notes_a.get(context_a), "from a"])
    await notes_b.set(context_b, [*await notes_b.get(context_b), "from b"])
    await instance_a.save_changes(context_a)
    with pytest.raises(ConcurrencyConflict):
        await instance_b.save_changes(context_b)

    retry = turn()
    await instance_b.load(retry, force=True)
    assert await notes_b.get(retry) == ["first", "from a"]


async def test_saving_twice_in_one_turn_works(storage: BotFrameworkStorage) -> None:
    state = ConversationState(storage)
    prop = state.create_property("step")
    first = turn()
    await state.load(first)
    await prop.set(first, 1)
    await state.save_changes(first)
    context = turn()
    await state.load(context)
    await prop.set(context, 2)
    await state.save_changes(context)
    await prop.set(context, 3)
    await state.save_changes(context)
    check = turn()
    await state.load(check)
    assert await prop.get(check) == 3
