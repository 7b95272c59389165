"""The local channel service: what Azure Bot Service would provide, served by the app itself.

`directline` speaks Direct Line 3.0 to Web Chat, `connector` is the Bot Connector endpoint
an SDK client posts into its conversations through (the app's own turns reply
in-process), and `webchat` serves the Web Chat page.
"""
