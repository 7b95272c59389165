"""The shop: its customers, orders and products, the rules for changing them, the stores
they live in, and the errors of the whole app. Nothing here knows about chat, models or
the Bot Framework; `dialogs/` and `bot/` build on it."""
