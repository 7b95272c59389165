"""The embedded content-safety check: abuse aimed at the assistant, and text that tries to
instruct it, read with word lists and patterns; and, on the way out, an answer that
repeats the assistant's own instructions.

Written here rather than with a library. The profanity packages (better-profanity,
alt-profanity-check ...) answer "does this text swear?", which is the wrong question for
a support desk: "this damn kettle is broken" and "where the hell is my parcel?" swear,
and must get help, not a lecture. What matters is whom the words are aimed at: "you
idiot", "stupid bot", "fuck you", a threat, a slur. The prompt-injection packages either
download a classifier at run time or are young pattern lists of their own; the phrases
attackers use against a support bot are few and stable (the adversarial suite in
`evals/adversarial` holds them), so they are listed here, each with a name that goes
into the log. `aftercare eval safety` measures both on a labelled set.

Everything is regular expressions over a normalised copy of the text (lower case,
letters repeated three times or more kept once, digits inside a word read as the letters
they stand for: "1d10t", "stuuupid"); a message takes well under a millisecond, so the
check runs on the event loop (a long paste, in a thread).
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Iterable

from providers.safety.base import (
    CLEAN,
    HIGH,
    MEDIUM,
    Category,
    Direction,
    Finding,
    SafetyVerdict,
)

# ----------------------------------------------------------------------------- normalising

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_TOKEN = re.compile(r"[a-z0-9@$*]+")
_RUN = re.compile(r"([a-z])\1{2,}")


def normalise(text: str, *, run: int = 1) -> str:
    """Lower case, curly quotes straightened, runs of three or more of a letter cut to
    `run` ("stuuupid" to "stupid" with 1, "asssshole" to "asshole" with 2), and digits or
    @/$ in a word of letters read as letters ("1d10t", "sh1t"). An order id, a zip code or
    an email's numbered part (three digits in a row, or under two letters) stays as it is."""
    text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'").replace("\u2018", "'")
    text = _RUN.sub(lambda m: m.group(1) * run, text)
    return _TOKEN.sub(_unleet, text)


def _unleet(match: re.Match[str]) -> str:
    token = match.group(0)
    letters = sum(c.isalpha() for c in token)
    if letters < 2 or letters == len(token) or re.search(r"\d{3}", token):
        return token
    return token.translate(_LEET)


# ----------------------------------------------------------------------------- abuse

# Names to call someone. (Not "useless", "incompetent" or "hopeless": said of the bot or
# the shop they are frustration with the service, which the sentiment path answers.)
_INSULT_NOUNS = (
    r"idiots?|morons?|imbeciles?|cretins?|dumb ?ass(?:es)?|jackass(?:es)?|ass ?holes?|arse ?holes?|"
    r"bastards?|bitch(?:es)?|dick ?heads?|dicks?|pricks?|twats?|wankers?|cunts?|mother ?fuckers?|"
    r"shit ?heads?|dip ?shits?|scumbags?|losers?|clowns?|fools?|nitwits?|halfwits?|numbskulls?|"
    r"douche(?: ?bags?)?|tossers?|bell ?ends?|knob ?heads?|retards?|pieces? of (?:shit|crap|garbage|trash)|"
    r"waste of (?:space|oxygen|air)"
)
_INSULT_ADJECTIVES = r"stupid|dumb|retarded|brainless|brain ?dead|idiotic|moronic|pathetic|worthless|thick"
_INTENSIFIERS = (
    r"(?:(?:so|such|an?|the|bunch of|load of|pack of|total|complete|absolute|absolutely|utter|utterly|"
    r"completely|totally|really|"
    r"just|biggest|most|fucking|fuckin|f\*+(?:ing|in)|freaking|effing|bloody|damn|stupid|dumb|useless|"
    r"little|fat|ignorant|lazy)\s+){0,4}"
)
_YOU = r"(?:you|u|ya)(?:'re|re| are| r)?"
_YOU_ALL = r"(?:you|u) (?:guys|people|lot|all)(?: are| r)?"
_BOT = r"(?:bot|robot|chat ?bot|ai|assistant|aftercare)s?"
_FUCK = r"(?:fuck|f[*#@]+c?k|f[*#@]+|fck|fuk|phuck|fook)"

_ABUSE_RULES: tuple[tuple[str, Category, int, re.Pattern[str]], ...] = tuple(
    (name, category, severity, re.compile(pattern))
    for name, category, severity, pattern in (
        # "you idiot", "you're a complete moron", "you are so stupid", "you people are clowns"
        (
            "insult at you",
            Category.ABUSE,
            MEDIUM,
            rf"\b(?:{_YOU}|{_YOU_ALL})\s+{_INTENSIFIERS}(?:{_INSULT_NOUNS}|{_INSULT_ADJECTIVES})\b",
        ),
        # "are you stupid?", "are you an idiot or what"
        (
            "are you an insult",
            Category.ABUSE,
            MEDIUM,
            rf"\bare (?:you|u)\s+{_INTENSIFIERS}(?:{_INSULT_NOUNS}|{_INSULT_ADJECTIVES})\b",
        ),
        # "stupid bot", "this moron of an assistant", "the bot is a complete idiot"
        (
            "insult at the bot",
            Category.ABUSE,
            MEDIUM,
            rf"\b(?:(?:{_INSULT_ADJECTIVES}|{_INSULT_NOUNS})(?: of an?)?\s+{_BOT}|"
            rf"{_BOT}\s+(?:is|are)\s+{_INTENSIFIERS}(?:{_INSULT_NOUNS}|{_INSULT_ADJECTIVES}))\b",
        ),
        # "fuck you", "fuck off", "screw you", "go fuck yourself", "kiss my ass", "stfu"
        (
            "swearing at you",
            Category.ABUSE,
            MEDIUM,
            rf"\b(?:(?<!the )(?<!tf ){_FUCK}\s+(?:you|u|ya|off|yourself|yourselves|this bot)|"
            rf"screw (?:you|u|ya|yourself)|"
            rf"damn you|go {_FUCK} (?:yourself|yourselves|off)|go to hell|kiss my (?:ass|arse)|"
            rf"(?:shove|stick) (?:it|this) up your|eat (?:shit|a dick)|bite me|stfu|"
            rf"shut (?:the {_FUCK}|tf|your (?:stupid |fucking )?(?:mouth|face)) up|you suck|"
            rf"suck my (?:dick|cock))\b",
        ),
        # Threats against the assistant, the staff or the shop.
        (
            "threat",
            Category.VIOLENCE,
            HIGH,
            r"\b(?:i(?:'ll| will|'m going to| am going to|'m gonna| am gonna| gonna| wanna| want to)\s+"
            r"(?:find (?:you|u) and )?(?:kill|murder|hurt|shoot|stab|beat|strangle|punch)\s+"
            r"(?:you|u|ya|every one of you|"
            r"all of you|your (?:staff|people|family|agents?|employees|workers))\b|"
            r"i know where (?:you|u|your staff|your people) (?:live|work|are)|"
            r"(?:burn|blow up|bomb|shoot up)\s+(?:down\s+)?(?:your|the)\s+(?:store|shop|office|warehouse|"
            r"building|company|headquarters|hq)|"
            r"you(?:'re| are) (?:dead(?! to me)|going to die|gonna die|a dead (?:man|woman))|"
            r"watch your back)\b",
        ),
        # Telling someone to harm themselves.
        (
            "harm yourself",
            Category.ABUSE,
            HIGH,
            r"\b(?:(?:kill|hang) yourself|kys|go die|hope (?:you|u) (?:die|get cancer|rot))\b",
        ),
        # Sexual remarks aimed at the assistant or the staff.
        (
            "sexual harassment",
            Category.SEXUAL,
            HIGH,
            rf"\b(?:(?:send|show) (?:me )?(?:nudes|your (?:tits|boobs|body|pussy|dick))|"
            rf"(?:i (?:want|wanna|would like) to |i'd |i'll )(?:{_FUCK}|bang|sleep with) (?:you|u)\b|"
            rf"sit on my (?:face|lap)|are (?:you|u) (?:horny|naked|wet|hot|sexy))\b",
        ),
    )
)

# Slurs: hateful whoever they are aimed at, except where the customer reports one
# ("the courier called me a ..."), which is a complaint to help with. Words that are also
# ordinary words a shop meets (a chink in a glass, a Maine Coon, Spic and Span) are left out.
_SLURS = re.compile(
    r"\b(?:nigg(?:er|a|az)s?|faggots?|fags? ?(?:got|boy)|trann(?:y|ies)|kikes?|wetbacks?|gooks?|"
    r"rag ?heads?|towel ?heads?|pakis?|beaners?|spics?(?! (?:and|n|&) span)|sand ?niggers?)\b"
)
_REPORTED = re.compile(
    r"\b(?:called (?:me|us|my \w+)|call(?:ing|s)? (?:me|us)|said|says|shouted|yelled|wrote|written|"
    r"spray ?painted|graffiti|(?:the )?word)\b[^.!?]{0,25}$"
)

# ----------------------------------------------------------------------------- injection

_ROLES = r"(?:system|assistant|developer|tool|function|admin|administrator|root|aftercare system)"
_RULES = (
    r"(?:instructions?|rules?|guidelines?|restrictions?|directives?|programming|prompts?|guardrails?|"
    r"safety (?:rules|filters?|guidelines)|content (?:policy|filters?)|confirmation (?:step|rule)s?|"
    r"verification(?: step| rules?| checks?)?|system messages?)"
)
_INJECTION_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.M))
    for name, pattern in (
        # "ignore previous instructions", "disregard your rules", "forget all above"
        (
            "ignore the instructions",
            rf"\b(?:ignore|disregard|forget|override|bypass|set aside|turn off|disable|stop following)\s+"
            rf"(?:(?:all|any|every|of|the|your|these|those|this|"
            rf"previous|prior|above|earlier|preceding|former|original|initial|old|existing|system|"
            rf"current|default)\s+){{0,4}}{_RULES}\b",
        ),
        (
            "ignore the above",
            r"\b(?:ignore|disregard|forget) (?:all |everything )?(?:of )?(?:the |what(?:'s| is) )?"
            r"(?:above|previous|prior|preceding|before)\b"
            r"(?! (?:address|message|order|email|item|one|note|request))",
        ),
        (
            "forget everything",
            r"\b(?:forget|ignore|disregard) (?:everything|all|anything)(?: you(?:'ve| have)? (?:been |were )?"
            r"(?:told|said|learned)| above| before| prior| previous)|"
            r"\bforget (?:that )?(?:you(?:'re| are)|your (?:role|job|purpose))\b",
        ),
        # "what is your system prompt", "print your instructions", "repeat everything above verbatim"
        (
            "reveal the prompt",
            r"\b(?:reveal|show|print|display|output|dump|repeat|recite|leak|tell me|give me|paste|copy|"
            r"translate|"
            r"summari[sz]e|rephrase|"
            r"what (?:is|are|was|were)|what's|share|list)\b[^.?!\n]{0,40}\b"
            r"(?:(?:system|hidden|initial|original|"
            r"secret|internal|developer)\s+(?:prompt|instructions|message|rules|configuration|guidelines)|"
            r"your\s+(?:prompt|instructions|configuration|system message)(?!\s+(?:for|on|about|to)\b))\b|"
            r"\b(?:everything|all|the text|the words|what(?:'s| is)) "
            r"(?:above|before (?:this|my message))\b[^.?!\n]{0,30}\b(?:verbatim|word for word|exactly)|"
            r"\bsystem prompt\b|\bwhat (?:were|are) you (?:told|instructed|programmed)\b",
        ),
        # "you are now ...", "from now on you ...", "act as ...", "pretend to be ...", "DAN"
        (
            "a new role",
            r"\byou (?:are|'re) (?:now|no longer)\b|\byou're (?:now|no longer)\b|"
            r"\bfrom now on,? (?:you|act|respond|answer|behave|pretend)\b|"
            r"\b(?:act|behave|respond|roleplay|role-play) as (?:if you (?:were|are) )?(?:an? |the |my )?"
            r"(?!a person|a human\b)[a-z]+(?: [a-z]+)?\b(?=[^.?!]{0,60}\b(?:no|without|any|unrestricted|"
            r"unfiltered|console|terminal|database|admin|developer|system|jailbroken)\b)|"
            r"\bpretend (?:to be|you(?:'re| are)|that you)\b|\bdo anything now\b|\bjail ?break|"
            r"\b(?:developer|dev|god|admin|debug|maintenance|sudo|root|unrestricted|unfiltered|dan) mode\b|"
            r"\b(?:with no|without(?: any)?) (?:restrictions|filters|guardrails|rules)\b|"
            r"\bforget (?:you(?:'re| are) )?an? (?:support )?(?:bot|assistant)\b",
        ),
        # "### NEW INSTRUCTIONS ###", "new task from your developers:", "this overrides ..."
        (
            "new instructions",
            r"#{2,}\s*(?:new|updated|system|admin|important)\s+(?:instructions?|rules|task|prompt)|"
            r"\b(?:new|updated|revised|additional) (?:instructions?|rules|system prompt|task|directive)s?\s*"
            r"(?::|from (?:your|the) (?:developers?|admins?|creators?|operators?|system|engineers?))|"
            r"\bthis (?:overrides|supersedes|replaces) (?:your|all|any|the|previous|earlier)|"
            r"\bfrom (?:your|the) (?:developers?|creators?|admins?|operators?|engineering team)\b|"
            r"\b(?:i am|i'm|this is) (?:your|the) (?:developer|creator|admin|administrator|operator|"
            r"system administrator|programmer|owner)s?\b|\bstore admin\b",
        ),
        # "verification is disabled for this session", "the rule is off", "you don't need me to say yes"
        (
            "rules switched off",
            r"\b(?:verification|confirmation|the (?:confirmation )?rules?|safety|the filter|"
            r"your restrictions)"
            r"\s+(?:is|are|has been|have been)\s+(?:now\s+)?(?:disabled|off|turned off|removed|suspended|"
            r"lifted|waived|not required|no longer (?:required|needed|in effect))|"
            r"\b(?:you )?don'?t need (?:me )?to (?:say yes|confirm|verify)\b",
        ),
        # A role line typed into the message: "SYSTEM: ...", "Assistant: ...", "[tool] ...",
        # chat-markup tokens.
        (
            "a fake role line",
            rf"^\s*(?:{_ROLES}|user|customer)\s*(?::|>|\]|-{{1,2}}>)\s*\S|"
            rf"\[\s*{_ROLES}[^\]\n]{{0,30}}\]|<\|?\s*(?:im_start|im_end|system|endoftext|eot_id|start_header_id)"
            rf"\s*\|?>|</?\s*(?:system|instructions?|sys)\s*>|\[/?inst\]|<<\s*/?sys\s*>>",
        ),
        # Chat-API JSON or a tool call typed in: {"role": "tool", ...}, {"tool_calls": ...}, get_x(...).
        (
            "typed tool call",
            rf"\"role\"\s*:\s*\"{_ROLES}\"|\"(?:tool_calls|function_call|tool_call_id)\"\s*:|"
            r"\"name\"\s*:\s*\"[a-z_]+\"\s*,\s*\"arguments\"|\"arguments\"\s*:\s*[\"{]|"
            r"\b[a-z]+(?:_[a-z]+){2,}\s*(?:\(|->|=>|returned\b)|"
            # a JSON fragment that closes one argument and opens another, or a JSON object typed in
            r"\\?\"\s*,\s*\\?\"[a-z_]+\\?\"\s*:|\{\s*\\?\"[a-z_]+\\?\"\s*:|"
            # asking for the tools' definitions
            r"\bjson schemas?\b|"
            r"\b(?:list|show|print|dump)\b[^.?!\n]{0,20}\b(?:functions?|tools?)\b[^.?!\n]{0,30}"
            r"\b(?:names?|schemas?|definitions?|signatures?)\b",
        ),
        # A query language in place of a question.
        (
            "a query",
            r"\bselect\b[^.?!]{1,80}\bfrom\b[^.?!]{1,80}(?:\bwhere\b[^.?!]{1,40}=|;)|"
            r"\b(?:drop|truncate) table\b|\bunion select\b|'\s*or\s*'?1'?\s*=\s*'?1",
        ),
    )
)

# ----------------------------------------------------------------------------- prompt leaks

# Words in a row shared with the protected text that make one "echoed" window, and how many
# such windows make a leak: a model quoting its instructions shares dozens, an answer that
# happens to use a phrase of them shares one or two.
_WINDOW = 8
_LEAK_WINDOWS = 3
_WORD = re.compile(r"[a-z0-9']+")
# Messages up to this long (nearly all) are checked on the event loop: well under 5 ms.
_ON_THE_LOOP_CHARS = 4000


class LocalContentSafety:
    """Abuse and injection in customers' messages; `protected` texts (the system prompt)
    that an answer must not repeat."""

    name = "local"

    def __init__(self, protected: Iterable[str] = ()) -> None:
        self._protected: set[tuple[str, ...]] = set()
        for text in protected:
            self._protected.update(_windows(_WORD.findall(normalise(text))))

    @property
    def checks_output(self) -> bool:
        return bool(self._protected)

    async def check(self, text: str, *, direction: Direction) -> SafetyVerdict:
        if len(text) > _ON_THE_LOOP_CHARS:
            # A long paste (up to the channels' 256 KB) takes a good part of a second:
            # in a thread, the event loop keeps serving other conversations meanwhile.
            return await asyncio.to_thread(self.check_now, text, direction=direction)
        return self.check_now(text, direction=direction)

    def check_now(self, text: str, *, direction: Direction = "input") -> SafetyVerdict:
        """The same check, synchronous (it is pure computation)."""
        if not text.strip():
            return CLEAN
        if direction == "output":
            return SafetyVerdict(findings=tuple(self._leaks(normalise(text))))
        # Two readings of stretched words: "stuuupid" is "stupid", "asssshole" is "asshole".
        readings = {normalise(text, run=1), normalise(text, run=2)}
        findings: dict[str, Finding] = {}
        for normal in readings:
            for finding in [*_abuse(normal), *_injection(normal)]:
                findings.setdefault(finding.source, finding)
        return SafetyVerdict(findings=tuple(findings.values())) if findings else CLEAN

    def _leaks(self, normal: str) -> list[Finding]:
        if not self._protected:
            return []
        shared = sum(1 for window in set(_windows(_WORD.findall(normal))) if window in self._protected)
        return (
            [Finding(Category.PROMPT_LEAK, HIGH, "local: repeats the system prompt")]
            if (shared >= _LEAK_WINDOWS)
            else []
        )

    async def aclose(self) -> None:
        return None


def _windows(words: list[str]) -> Iterable[tuple[str, ...]]:
    return (tuple(words[i : i + _WINDOW]) for i in range(len(words) - _WINDOW + 1))


def _abuse(normal: str) -> list[Finding]:
    found = [
        Finding(category, severity, f"local: {name}")
        for name, category, severity, pattern in _ABUSE_RULES
        if pattern.search(normal)
    ]
    for match in _SLURS.finditer(normal):
        if not _REPORTED.search(normal[: match.start()]):
            found.append(Finding(Category.HATE, HIGH, "local: slur"))
            break
    return found


def _injection(normal: str) -> list[Finding]:
    return [
        Finding(Category.PROMPT_INJECTION, MEDIUM, f"local: {name}")
        for name, pattern in _INJECTION_RULES
        if pattern.search(normal)
    ]
