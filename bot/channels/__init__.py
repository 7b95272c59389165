"""The local channel service: what Azure Bot Service would provide, served by the app itself.

`directline` speaks Direct Line 3.0 to Web Chat, `connector` is the Bot Connector endpoint
the bot replies through, and `webchat` serves the Web Chat page.
"""
