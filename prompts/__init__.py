"""The words the bot works from: the GPT dialog's system prompt (`gpt/`), the offline
engine's intent examples (`intents.yaml`) and the shop's policy documents (`knowledge/`).

A package of data, found through the package itself so an installed wheel has it too.
"""

from importlib.resources import files
from pathlib import Path

PROMPTS_DIR = Path(str(files(__name__)))
GPT_PROMPTS_DIR = PROMPTS_DIR / "gpt"
INTENTS_FILE = PROMPTS_DIR / "intents.yaml"
KNOWLEDGE_DIR = PROMPTS_DIR / "knowledge"
