"""Every diagnostic code flowlang reports: one named constant each, registered with its one-line
description (docs/errors.md explains each with an example). Code that reports a diagnostic uses
the constant (`codes.UNKNOWN_QUEUE`), never the literal. Codes are stable: a code is never reused
for another problem.

FL0xx flow file and syntax · FL1xx names · FL2xx types and values · FL3xx structure ·
FL4xx channels and templates · FL5xx deployment file · FL7xx sample and test files ·
FL9xx runtime. Retired codes (never reused): FL013 (keywords are contextual, so a reserved
word can no longer stand where a name is expected).
"""

from __future__ import annotations

ALL_CODES: dict[str, str] = {}
"""Every code, in order, with its one-line description."""


def _code(code: str, description: str) -> str:
    if code in ALL_CODES:
        raise ValueError(f"diagnostic code {code} registered twice")
    ALL_CODES[code] = description
    return code


# FL0xx: the flow file and its syntax
SYNTAX_ERROR = _code(
    "FL001",
    "an unexpected character or word (with the words that could come here)",
)
UNCLOSED_TEXT = _code("FL002", "a text whose closing quote is missing")
TAB_INDENT = _code("FL003", "a tab in indentation (indent with spaces)")
BAD_INDENT = _code("FL004", "indentation that matches no enclosing block")
NOT_UTF8 = _code("FL005", "the flow file is not UTF-8 text")
EMPTY_FLOW = _code("FL006", "the flow file is empty")
FLOW_TOO_LARGE = _code("FL007", "the flow file is too large")
NUL_BYTE = _code("FL008", "a NUL byte in the flow file")
MISSING_COLON = _code("FL010", "a line that should open a block does not end with ':'")
EMPTY_BLOCK = _code("FL011", "a block opened with ':' but nothing indented under it")
INCOMPLETE_LINE = _code("FL012", "a line that ends before the statement is complete")
BAD_DURATION = _code("FL014", "a duration that is not like 30s, 10m, 72h or 1h30m")
NOT_A_WHOLE_NUMBER = _code("FL015", "a whole number was expected")
FORMAT_WOULD_CHANGE_FLOW = _code(
    "FL016",
    "the formatter could not lay the flow out without changing it (file unchanged)",
)
CANNOT_READ = _code("FL020", "a path that cannot be read")
NOT_A_FLOW_OR_DEPLOYMENT = _code(
    "FL021",
    "a path that is neither a flow (.flow) nor a deployment (.yaml) file",
)
TWO_DEPLOYMENTS = _code("FL022", "more than one deployment file given")
EQUALS_FOR_COMPARISON = _code("FL023", "'=' where a comparison ('==') was meant")
MISSPELT_KEYWORD = _code("FL024", "a misspelt keyword (the keyword it looks like is suggested)")
INDENT_NOT_ONE_LEVEL = _code(
    "FL025",
    "a block indented by other than one level (4 spaces) more than the line that opens it",
)
WRONG_QUOTES = _code("FL026", 'a text in single or curly quotes (texts take straight " quotes)')
SET_WITH_EQUALS = _code("FL027", "'set x = value' where 'set x to value' was meant")
ELSE_IF = _code("FL028", "'else if' where 'elif' was meant")
THEN_AFTER_CONDITION = _code("FL029", "'then' or 'do' after a condition, where ':' was meant")
UNKNOWN_STATEMENT = _code(
    "FL030", "a word that begins no statement (with the statement meant, when it is known)"
)
WORDS_RUN_TOGETHER = _code(
    "FL031", "words written without the space between them ('goto' for 'go to')"
)

# FL1xx: names
NO_DEPLOYMENT = _code(
    "FL100",
    "warning: no deployment file given, so deployment names are not checked",
)
UNKNOWN_QUEUE = _code("FL101", "unknown queue")
UNKNOWN_SKILL = _code("FL102", "unknown skill")
UNKNOWN_TEMPLATE = _code("FL103", "unknown template")
UNKNOWN_BOT = _code("FL104", "unknown bot")
UNKNOWN_SCHEDULE = _code("FL105", "unknown schedule")
UNKNOWN_DATA_ACTION = _code("FL106", "unknown data action")
UNKNOWN_AGENT = _code("FL107", "unknown agent")
UNKNOWN_LANGUAGE = _code("FL108", "unknown language")
UNKNOWN_CHANNEL = _code("FL109", "unknown channel")
UNKNOWN_STATE = _code("FL110", "unknown state")
UNKNOWN_TASK = _code("FL111", "unknown task")
UNKNOWN_NAME = _code("FL112", "unknown variable, parameter or field")
UNKNOWN_TYPE = _code("FL113", "unknown type")
UNKNOWN_OUTCOME = _code("FL114", "an outcome the step does not have")
UNKNOWN_FUNCTION = _code("FL115", "unknown function")
UNKNOWN_ACCOUNT = _code(
    "FL116",
    "an account, page, handle or number the deployment does not declare",
)
UNKNOWN_INPUT = _code("FL117", "an input the data action does not take")
UNKNOWN_INTENT = _code("FL118", "a bot intent the bot does not declare")
DUPLICATE_STATE = _code("FL120", "a state declared twice")
DUPLICATE_TASK = _code("FL121", "a task declared twice")
DUPLICATE_VARIABLE = _code("FL122", "a variable or parameter declared twice")
DUPLICATE_OUTCOME = _code("FL123", "an outcome or case value handled or listed twice")
DUPLICATE_DECLARATION = _code(
    "FL124",
    "a flow-level declaration (threading window, on error...) given twice",
)
DUPLICATE_KEYWORD = _code("FL125", "warning: a keyword listed twice in one match")
UNKNOWN_TIME_ZONE = _code("FL126", "a time zone name that is not an IANA time zone")
DUPLICATE_SPLIT_BRANCH = _code("FL127", "a split branch named twice")
UNKNOWN_LANGUAGE_CODE = _code(
    "FL128",
    "a language detect() cannot tell: not an ISO 639-1 code its detector knows",
)
DETECT_OPTION_TWICE = _code("FL129", "a detect() option given twice")
UNKNOWN_FLOW = _code("FL131", "a transfer to a flow that is not loaded beside this one")
MODULE_NOT_FOUND = _code("FL132", "a used module file that does not exist")
NOT_A_MODULE = _code("FL133", "a used file that is a flow, not a module")
MODULE_NAME_CLASH = _code(
    "FL134",
    "a task or variable of a used module named like one of the flow's or another module's",
)
NO_DETECT_LANGUAGES = _code(
    "FL130",
    "detect() with no languages to choose from (no 'among [...]' and no deployment languages)",
)
UNKNOWN_AGENT_ATTRIBUTE = _code(
    "FL140",
    "an agent attribute (agent.<attribute> in a routing step) the deployment does not declare",
)

# FL2xx: types and values
WRONG_TYPE = _code("FL201", "a value of the wrong type for its place")
NOT_A_CONDITION = _code("FL202", "a condition that is not a boolean (true or false)")
ASSIGNED_WRONG_TYPE = _code(
    "FL203",
    "a variable given a value of another type than it was declared with",
)
PARAMETER_WRONG_TYPE = _code("FL204", "a parameter whose value does not have its declared type")
BAD_PROFICIENCY = _code("FL206", "a skill proficiency outside 1 to 5")
READ_ONLY = _code("FL207", "an assignment to a parameter or built-in (they are read-only)")
BAD_REGEX = _code("FL208", "a regular expression that does not compile")
EMPTY_KEYWORD = _code("FL209", "an empty keyword")
CASE_WRONG_TYPE = _code("FL210", "a case value whose type differs from the switch's")
BAD_LOOP_BOUND = _code("FL211", "a loop bound outside 1 to 1000")
BAD_DATE = _code("FL212", "a date that is not written as YYYY-MM-DD")
BAD_CONFIDENCE = _code("FL214", "a detect() confidence outside 0 to 1")
FALLBACK_NOT_DETECTED = _code(
    "FL215",
    "a detect() fallback that is not one of the languages it chooses from",
)
SPLIT_NOT_100 = _code(
    "FL213",
    "split percentages that do not add up to 100 (or a share over 100)",
)
BAD_RATING_SCALE = _code(
    "FL230",
    "a survey rating whose scale is not from a lower to a higher whole number within 0 to 10",
)
BAD_QUEUE_INTERVAL = _code(
    "FL231",
    "an in-queue 'every' under a minute, or an 'after' of no time",
)
AGENT_CONDITION_FORM = _code(
    "FL232",
    "a routing step's condition that does not compare one agent.<attribute> with a value",
)

# FL3xx: structure
UNREACHABLE_STEP = _code("FL301", "warning: a step that can never run")
UNHANDLED_OUTCOME = _code("FL302", "warning: a step that does not handle all of its outcomes")
NO_STATE = _code("FL303", "the flow has no state")
OUTCOME_OUTSIDE_TASK = _code("FL304", "'outcome' outside a task")
BREAK_OUTSIDE_LOOP = _code("FL305", "'break' outside a loop")
KEEP_WAITING_OUTSIDE_TIMEOUT = _code(
    "FL306",
    "'keep waiting' outside a route to queue's 'on timeout'",
)
UNUSED_STATE = _code("FL307", "warning: a state that is never entered")
UNUSED_TASK = _code("FL308", "warning: a task that is never called")
NO_CHANNEL = _code("FL309", "the flow serves no channel")
RECURSIVE_TASKS = _code("FL311", "tasks that call each other in a loop")
TRANSFER_TO_ITSELF = _code("FL324", "a flow that transfers the conversation to itself")
MODULE_CYCLE = _code("FL325", "modules that use each other in a cycle")
NOT_IN_A_MODULE = _code(
    "FL326",
    "a module declaring what only a flow may (a module holds uses, variables and tasks)",
)
MILESTONE_LOOKALIKE = _code(
    "FL323",
    "warning: two milestones whose names differ only in case or spacing",
)
TIMEOUT_WITHOUT_LIMIT = _code("FL313", "'on timeout' on a step without a time limit")
LINK_OUTSIDE_SUCCESS = _code(
    "FL320",
    "'link customer ... verified by R' outside 'on success:' of the data action into R",
)
LINK_VALUE_NOT_RETURNED = _code(
    "FL321",
    "'link customer ... verified by R' whose value is not one R returned",
)
LINK_WITHOUT_IDENTITY = _code(
    "FL322",
    "'link customer ... verified by R' where R's data action does not prove identity",
)
SURVEY_WITHOUT_QUESTION = _code("FL340", "a survey that asks no question")
SURVEY_SAME_ANSWER = _code("FL341", "two questions of one survey that store into the same name")
DUPLICATE_QUEUE_ACTIVITY = _code(
    "FL342",
    "a 'while queued' block with two 'every' or two 'when customer writes'",
)
NOT_WHILE_QUEUED = _code(
    "FL343",
    "a step that cannot run beside a queue wait (one that waits, routes or jumps)",
)
NOT_BESIDE_THE_FLOW = _code(
    "FL345",
    "a step that cannot run in 'on window closing' (one that waits, routes or jumps)",
)
AGENT_STEP_ORDER = _code(
    "FL344",
    "routing steps out of order: not 'prefer agents' first, a step without 'for' before "
    "others, or 'then any agent' not last",
)

# FL4xx: channels and templates
THREADING_WINDOW_TOO_LONG = _code("FL401", "a threading window over 72 hours")
CONTENT_NO_CHANNEL_CARRIES = _code("FL403", "content none of the served channels can carry")
BAD_REPLY_TEMPLATE = _code("FL404", "reply text that is not a valid Jinja2 template")
TEMPLATE_UNKNOWN_NAME = _code("FL405", "a template that uses a name the flow does not define")
WHATSAPP_TEMPLATE_MISUSED = _code(
    "FL406",
    "a WhatsApp template used without its parameters, or not approved",
)
VISIBILITY_WITHOUT_PUBLIC_CHANNEL = _code(
    "FL408",
    "warning: 'privately' or 'publicly' on a flow that serves no public channel",
)
TOO_MANY_BUTTONS = _code("FL409", "more quick replies or buttons than a served channel shows")
NOT_ACTIONABLE_WITHOUT_POSTS = _code(
    "FL410",
    "'mark not actionable' in a flow that serves no public posts",
)
UNSUPPORTED_SCOPE = _code("FL411", "a scope (posts, comments) a channel does not carry")
REPLY_TOO_LONG = _code(
    "FL412",
    "a reply's fixed text longer than a served channel takes (error when every one)",
)
AUTOMATED_PUBLIC_REPLY = _code(
    "FL413",
    "warning: an automatic reply on X public posts (one automated reply per post)",
)
KEYWORD_IS_OWN_HANDLE = _code(
    "FL414",
    "warning: a keyword that is the business's own handle on a public channel",
)
PRIVATE_REPLY_BLOCKED = _code(
    "FL415",
    "warning: 'reply privately' where a flow's private reply is blocked (X public)",
)
OPTION_LABEL_TOO_LONG = _code(
    "FL470",
    "an option longer than a served channel shows on a quick reply or button (blocked there; "
    "error when on every one)",
)
REPEATED_OPTION = _code(
    "FL471",
    "two options with the same label where a served channel refuses them (blocked there; "
    "error when on every one)",
)
BLANK_OPTION = _code(
    "FL472",
    "an option whose label is blank (empty or only spaces): nothing to choose it by, and "
    "WhatsApp refuses a button or list row without an id, which is its label",
)
UNSAFE_REPLY_TEMPLATE = _code(
    "FL420",
    "a reply template the sandbox refuses: a private or internal attribute, or a "
    "constant value beyond its bounds",
)

# FL5xx: the deployment file
DEPLOYMENT_CANNOT_READ = _code(
    "FL500",
    "the deployment file cannot be read (missing, a folder, no permission)",
)
DEPLOYMENT_YAML_SYNTAX = _code(
    "FL501",
    "the file is not valid YAML (including tabs used for indentation)",
)
DEPLOYMENT_UNKNOWN_KEY = _code(
    "FL502",
    "a key the deployment file does not define (with a did-you-mean)",
)
DEPLOYMENT_BAD_VALUE = _code(
    "FL503",
    "a value of the wrong type or outside its allowed values or range",
)
DEPLOYMENT_MISSING_KEY = _code("FL504", "a required key is missing")
DEPLOYMENT_UNKNOWN_REFERENCE = _code(
    "FL505",
    "a name that is used but not declared (skill, language, queue, agent...)",
)
DEPLOYMENT_DUPLICATE = _code("FL506", "a name or key given twice")
DEPLOYMENT_BAD_DURATION = _code("FL507", "a duration that is not like 45s, 30m, 72h, 7d or 1h30m")
DEPLOYMENT_BAD_TIME_ZONE = _code(
    "FL508",
    "a time zone that is not an IANA name such as Europe/London",
)
DEPLOYMENT_BAD_HOURS = _code(
    "FL509",
    "weekly hours that are not HH:MM-HH:MM ranges, end before start, or overlap",
)
DEPLOYMENT_BAD_THREADING_WINDOW = _code("FL510", "a threading window outside 0..72h")
DEPLOYMENT_NOT_UTF8 = _code("FL511", "the file is not UTF-8 text")
DEPLOYMENT_CONTROL_CHARACTER = _code("FL512", "the file contains a NUL or other control character")
DEPLOYMENT_EMPTY = _code("FL513", "the file is empty or its top level is not a mapping of keys")
DEPLOYMENT_BAD_TEMPLATE = _code(
    "FL514",
    "a template text that is not valid Jinja2, or a template of the wrong shape",
)
DEPLOYMENT_BAD_PHONE = _code(
    "FL515",
    "a phone number that is not valid or not in E.164 form (+442079460000)",
)
DEPLOYMENT_BAD_HANDLE = _code(
    "FL516",
    "a social handle that is not @name (letters, digits, underscore)",
)
DEPLOYMENT_UNUSED = _code(
    "FL517",
    "warning: a queue nobody works in, or a declaration nothing uses",
)
DEPLOYMENT_ENVIRONMENT_MISMATCH = _code(
    "FL518",
    "warning: environments that do not set the same parameters",
)
DEPLOYMENT_UNSAFE_TEMPLATE = _code(
    "FL519",
    "a template text the sandbox refuses: a private or internal attribute, or a "
    "constant value beyond its bounds",
)

# FL7xx: sample and test files
BAD_SAMPLE_FILE = _code("FL701", "a sample or test file that cannot be read or is not valid YAML")
BAD_SAMPLE_FIELD = _code("FL702", "a sample or test file with a wrong or missing field")

# FL9xx: runtime
RUNTIME_ERROR = _code(
    "FL900",
    "a runtime error in a flow (recorded with its source line; other conversations go on)",
)
STEP_LIMIT = _code(
    "FL901",
    "a flow ran more than the step limit for one event (a loop that does not end)",
)


def describe(code: str) -> str:
    """The one-line description of `code`, or '' for a code flowlang does not define."""
    return ALL_CODES.get(code, "")
