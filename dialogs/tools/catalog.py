"""The tools both dialog engines use, declared once as typed functions over `RetailService`.

Each docstring is the tool's description for the model, and its `Args:` section the
parameter descriptions (see `dialogs.tools.definition`). The verified customer always comes from
the conversation state through `ctx.user_id`; the order tools pass it to the service as
`acting_user_id`, so another customer's order reads as not found.
"""

from __future__ import annotations

from typing import Any, Literal

from dialogs.entities import normalize_order_id
from dialogs.tools import summaries
from dialogs.tools.definition import Tool, ToolContext, define_tool
from shop.models import Address, Customer, Order, Product
from shop.store.base import JsonDict

CancelReason = Literal["no longer needed", "ordered by mistake"]


# -- verification ---------------------------------------------------------------------------


async def find_user_id_by_email(ctx: ToolContext, email: str) -> str:
    """Verifies the customer by the email address on their account. Call this (or
    find_user_id_by_name_zip) before any tool that reads or changes their orders.

    Args:
        email: the email address the customer gave, e.g. 'noah.brown7922@example.com'.
    """
    return await ctx.retail.find_user_id_by_email(email.strip())


async def find_user_id_by_name_zip(ctx: ToolContext, first_name: str, last_name: str, zip: str) -> str:
    """Verifies the customer by their full name and the zip code of their address, when
    they cannot give their email.

    Args:
        first_name: the customer's first name, e.g. 'Noah'.
        last_name: the customer's last name, e.g. 'Brown'.
        zip: the five-digit zip code of the customer's address, e.g. '80279'.
    """
    return await ctx.retail.find_user_id_by_name_zip(first_name.strip(), last_name.strip(), zip.strip())


# -- lookups for the verified customer --------------------------------------------------------


async def get_user_details(ctx: ToolContext) -> Customer:
    """The verified customer's profile: name, default address, email, saved payment
    methods (ids, card brand and last four digits, gift card balances) and order ids."""
    return await ctx.retail.get_user_details(ctx.user_id, acting_user_id=ctx.user_id)


async def get_order_details(ctx: ToolContext, order_id: str) -> Order:
    """One of the verified customer's orders: status, items with options and prices,
    shipping address, fulfilments with tracking numbers, and payment history.

    Args:
        order_id: the order id, e.g. '#W2611340'.
    """
    return await ctx.retail.get_order_details(normalize_order_id(order_id), acting_user_id=ctx.user_id)


async def track_order(ctx: ToolContext, order_id: str) -> JsonDict:
    """Shipment tracking of one of the verified customer's orders: its status and, for
    each parcel, the tracking numbers and the items in it.

    Args:
        order_id: the order id, e.g. '#W2611340'.
    """
    return await ctx.retail.track_order(normalize_order_id(order_id), acting_user_id=ctx.user_id)


# -- catalogue and policies (no verification needed) ---------------------------------------------


async def get_product_details(ctx: ToolContext, product_id: str) -> Product:
    """A product and all its variants (item ids, options, price, availability).

    Args:
        product_id: the product id, e.g. '1075968781'.
    """
    return await ctx.retail.get_product_details(product_id.strip())


async def list_all_product_types(ctx: ToolContext) -> dict[str, str]:
    """Every product the shop sells, as product name -> product id."""
    return await ctx.retail.list_all_product_types()


async def search_products(ctx: ToolContext, query: str) -> list[dict[str, Any]]:
    """Searches the shop's catalogue by meaning (e.g. 'a good hiking backpack', 'kettles')
    and returns the best matching products with how many variants are in stock and their
    price range. Use get_product_details for a product's variants and options.

    Args:
        query: what the customer is looking for, in their words.
    """
    if ctx.products is None:
        return []
    return [hit.as_dict() for hit in await ctx.products.search(query, k=3)]


async def search_policies(ctx: ToolContext, query: str) -> list[dict[str, Any]]:
    """Searches the shop's policy documents (returns, refunds, shipping, warranty, payment
    methods, order changes, privacy) and returns the best passages with the document
    title. Answer policy questions only from these passages, and name the source.

    Args:
        query: the customer's question in their words, e.g. 'how long do refunds take'.
    """
    if ctx.knowledge is None:
        return []
    return [hit.as_dict() for hit in await ctx.knowledge.search(query, limit=3)]


async def request_human_agent(ctx: ToolContext, reason: str) -> str:
    """Hands the conversation to a human support agent with a one-line reason. Use it when
    the customer asks for a person, stays unhappy, or needs something the tools cannot do.

    Args:
        reason: one short sentence for the agent, e.g. 'customer wants to dispute a charge'.
    """
    ctx.state.handoff_requested = True
    return f"A person has been requested ({reason.strip() or 'no reason given'})."


# -- consequential actions (run only after the customer's explicit yes) -------------------------


async def cancel_pending_order(ctx: ToolContext, order_id: str, reason: CancelReason) -> Order:
    """Proposes cancelling one of the verified customer's pending orders with a reason
    ("no longer needed" or "ordered by mistake"); every payment is refunded to where it
    came from (gift cards at once, other methods in 5-7 business days). Nothing changes
    until the customer says yes to the summary it returns.

    Args:
        order_id: the order id, e.g. '#W2611340'.
        reason: why the customer cancels: 'no longer needed' or 'ordered by mistake'.
    """
    return await ctx.retail.cancel_pending_order(
        normalize_order_id(order_id), reason, acting_user_id=ctx.user_id
    )


async def modify_pending_order_address(ctx: ToolContext, order_id: str, address: Address) -> Order:
    """Changes the shipping address of a pending order.

    Args:
        order_id: the order id, e.g. '#W2611340'.
        address: the new shipping address.
    """
    return await ctx.retail.modify_pending_order_address(
        normalize_order_id(order_id), address, acting_user_id=ctx.user_id
    )


async def modify_user_address(ctx: ToolContext, address: Address) -> Customer:
    """Changes the default address on the verified customer's account (orders already
    placed keep theirs).

    Args:
        address: the new default address.
    """
    return await ctx.retail.modify_user_address(ctx.user_id, address, acting_user_id=ctx.user_id)


async def modify_pending_order_payment(ctx: ToolContext, order_id: str, payment_method_id: str) -> Order:
    """Pays a pending order with another of the customer's saved payment methods; the
    old method is refunded. A gift card must cover the whole order total.

    Args:
        order_id: the order id, e.g. '#W2611340'.
        payment_method_id: the id of the new method from get_user_details, e.g. 'paypal_5727330'.
    """
    return await ctx.retail.modify_pending_order_payment(
        normalize_order_id(order_id), payment_method_id, acting_user_id=ctx.user_id
    )


async def modify_pending_order_items(
    ctx: ToolContext, order_id: str, item_ids: list[str], new_item_ids: list[str], payment_method_id: str
) -> Order:
    """Swaps items of a pending order for other variants of the same products (an order's
    items can be changed only once). The price difference is charged to, or refunded to,
    the given payment method.

    Args:
        order_id: the order id, e.g. '#W2611340'.
        item_ids: the item ids to change, as listed in the order.
        new_item_ids: for each item to change, the item id of the available variant to get instead.
        payment_method_id: the saved payment method that pays or receives the price difference.
    """
    return await ctx.retail.modify_pending_order_items(
        normalize_order_id(order_id), item_ids, new_item_ids, payment_method_id, acting_user_id=ctx.user_id
    )


async def return_delivered_order_items(
    ctx: ToolContext, order_id: str, item_ids: list[str], payment_method_id: str
) -> Order:
    """Proposes returning items of a delivered order. The refund goes to the original
    payment method or to a gift card of the customer's, once the items arrive back.
    Nothing changes until the customer says yes to the summary it returns.

    Args:
        order_id: the order id, e.g. '#W2611340'.
        item_ids: the item ids to return, as listed in the order.
        payment_method_id: where the refund goes: the original payment method or a gift card.
    """
    return await ctx.retail.return_delivered_order_items(
        normalize_order_id(order_id), item_ids, payment_method_id, acting_user_id=ctx.user_id
    )


async def exchange_delivered_order_items(
    ctx: ToolContext, order_id: str, item_ids: list[str], new_item_ids: list[str], payment_method_id: str
) -> Order:
    """Starts an exchange of delivered items for other variants of the same products
    (one exchange per order). The price difference is settled with the given method.

    Args:
        order_id: the order id, e.g. '#W2611340'.
        item_ids: the item ids to exchange, as listed in the order.
        new_item_ids: for each item to exchange, the item id of the available variant to get instead.
        payment_method_id: the saved payment method that pays or receives the price difference.
    """
    return await ctx.retail.exchange_delivered_order_items(
        normalize_order_id(order_id), item_ids, new_item_ids, payment_method_id, acting_user_id=ctx.user_id
    )


# Every tool, declared once: its function (schema and description derived from the
# signature and docstring), who may use it, and what the engines do around it.
ALL_TOOLS: tuple[Tool, ...] = (
    define_tool(find_user_id_by_email, access="public", verifies=True),
    define_tool(find_user_id_by_name_zip, access="public", verifies=True),
    define_tool(get_user_details, access="customer"),
    define_tool(get_order_details, access="customer", shows_order=True),
    define_tool(track_order, access="customer"),
    define_tool(get_product_details, access="public"),
    define_tool(list_all_product_types, access="public"),
    define_tool(search_products, access="public"),
    define_tool(search_policies, access="public"),
    define_tool(request_human_agent, access="public", hands_off=True),
    define_tool(cancel_pending_order, access="customer", summary=summaries.cancel),
    define_tool(modify_pending_order_address, access="customer", summary=summaries.order_address),
    define_tool(modify_user_address, access="customer", summary=summaries.user_address),
    define_tool(modify_pending_order_payment, access="customer", summary=summaries.payment),
    define_tool(modify_pending_order_items, access="customer", summary=summaries.change_items),
    define_tool(return_delivered_order_items, access="customer", summary=summaries.return_items),
    define_tool(exchange_delivered_order_items, access="customer", summary=summaries.exchange_items),
)
