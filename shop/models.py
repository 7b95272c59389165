"""Typed models of the shop's records where code builds or checks them.

The stores keep the retail dataset's JSON documents as they are (an export must
round-trip byte for byte), so reads hand out those documents; what the app writes into
them is built from these models, which check it first.
"""

from __future__ import annotations

from typing import Any, Literal, Required, TypedDict

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shop.errors import RetailError

JsonDict = dict[str, Any]

# The parts a parcel cannot be delivered without.
_REQUIRED = ("address1", "city", "country", "zip")


class Address(BaseModel):
    """A postal address: an order's shipping address or a customer's default one."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    address1: str = Field(description="street and number, e.g. '986 Sunset Drive'")
    address2: str = Field("", description="apartment, suite or unit; empty string if none")
    city: str = Field(description="the city")
    state: str = Field(description="the two-letter state code, e.g. 'CO'")
    country: str = Field(description="the country, e.g. 'USA'")
    zip: str = Field(description="the five-digit zip code")

    @field_validator("address1", "address2", "city", "state", "country", "zip", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("must be text")
        return value

    @classmethod
    def parse(cls, value: Address | JsonDict) -> Address:
        """An `Address` from a model or a document; `RetailError` saying what is wrong."""
        if isinstance(value, Address):
            address = value
        else:
            try:
                address = cls.model_validate(value)
            except ValidationError as exc:
                wrong = ", ".join(str(err["loc"][0]) for err in exc.errors() if err["loc"])
                raise RetailError(f"the address is not complete or not valid ({wrong})") from None
        missing = [name for name in _REQUIRED if not getattr(address, name)]
        if missing:
            raise RetailError(f"the new address is missing {', '.join(missing)}")
        return address

    def document(self) -> AddressDoc:
        """The address in the dataset's key order, as orders and customers store it."""
        return {
            "address1": self.address1,
            "address2": self.address2,
            "city": self.city,
            "country": self.country,
            "state": self.state,
            "zip": self.zip,
        }


# -- the records, as the stores hold them ------------------------------------------------------
# TypedDicts rather than classes: the documents stay the dataset's own JSON (an export
# round-trips unchanged) while every key the code reads or writes is named and type-checked.


class AddressDoc(TypedDict):
    address1: str
    address2: str
    city: str
    country: str
    state: str
    zip: str


class PersonName(TypedDict):
    first_name: str
    last_name: str


class PaymentMethod(TypedDict, total=False):
    source: Required[Literal["credit_card", "gift_card", "paypal"]]
    id: Required[str]
    brand: str  # credit cards
    last_four: str  # credit cards
    balance: float  # gift cards


class Customer(TypedDict):
    name: PersonName
    address: AddressDoc
    email: str
    payment_methods: dict[str, PaymentMethod]
    orders: list[str]


class OrderItem(TypedDict):
    name: str
    product_id: str
    item_id: str
    price: float
    options: dict[str, str]


class Fulfillment(TypedDict):
    tracking_id: list[str]
    item_ids: list[str]


class Payment(TypedDict):
    transaction_type: Literal["payment", "refund"]
    amount: float
    payment_method_id: str


class Order(TypedDict, total=False):
    order_id: Required[str]
    user_id: Required[str]
    address: Required[AddressDoc]
    items: Required[list[OrderItem]]
    fulfillments: Required[list[Fulfillment]]
    status: Required[str]
    payment_history: Required[list[Payment]]
    # Written by the order actions.
    cancel_reason: str
    return_items: list[str]
    return_payment_method_id: str
    exchange_items: list[str]
    exchange_new_items: list[str]
    exchange_payment_method_id: str
    exchange_price_difference: float


class Variant(TypedDict):
    item_id: str
    options: dict[str, str]
    available: bool
    price: float


class Product(TypedDict):
    name: str
    product_id: str
    variants: dict[str, Variant]
