"""The tools both dialog engines call, in four parts:

- `definition`: what a tool is (`Tool`, `define_tool`: schema derived from a typed function)
- `catalog`: every tool, declared once with its description, access and confirmation summary
- `summaries`: the exact summary a customer confirms before a consequential tool runs
- `gate`: the confirmation gate (an explicit yes runs exactly what was summarised)
- `runner`: `ToolRunner`, how an engine calls a tool (validation, access, proposals, records)
"""
