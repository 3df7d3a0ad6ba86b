"""Every diagnostic code flowlang reports, with a one-line description (docs/errors.md explains
each with an example). Codes are stable: a code is never reused for another problem.

FL0xx flow file and syntax · FL1xx names · FL2xx types and values · FL3xx structure ·
FL4xx channels and templates · FL5xx deployment file · FL7xx sample and test files ·
FL9xx runtime. Retired codes (never reused): FL013 (keywords are contextual, so a reserved
word can no longer stand where a name is expected).
"""

from __future__ import annotations

from flowlang.config.codes import CODES as DEPLOYMENT_CODES

FLOW_CODES: dict[str, str] = {
    "FL001": "an unexpected character or word (with the words that could come here)",
    "FL002": "a text whose closing quote is missing",
    "FL003": "a tab in indentation (indent with spaces)",
    "FL004": "indentation that matches no enclosing block",
    "FL005": "the flow file is not UTF-8 text",
    "FL006": "the flow file is empty",
    "FL007": "the flow file is too large",
    "FL008": "a NUL byte in the flow file",
    "FL010": "a line that should open a block does not end with ':'",
    "FL011": "a block opened with ':' but nothing indented under it",
    "FL012": "a line that ends before the statement is complete",
    "FL014": "a duration that is not like 30s, 10m, 72h or 1h30m",
    "FL015": "a whole number was expected",
    "FL016": "the formatter could not lay the flow out without changing it (file unchanged)",
    "FL020": "a path that cannot be read",
    "FL021": "a path that is neither a flow (.flow) nor a deployment (.yaml) file",
    "FL022": "more than one deployment file given",
    "FL100": "warning: no deployment file given, so deployment names are not checked",
    "FL101": "unknown queue",
    "FL102": "unknown skill",
    "FL103": "unknown template",
    "FL104": "unknown bot",
    "FL105": "unknown schedule",
    "FL106": "unknown data action",
    "FL107": "unknown agent",
    "FL108": "unknown language",
    "FL109": "unknown channel",
    "FL110": "unknown state",
    "FL111": "unknown task",
    "FL112": "unknown variable, parameter or field",
    "FL113": "unknown type",
    "FL114": "an outcome the step does not have",
    "FL115": "unknown function",
    "FL116": "an account, page, handle or number the deployment does not declare",
    "FL117": "an input the data action does not take",
    "FL118": "a bot intent the bot does not declare",
    "FL120": "a state declared twice",
    "FL121": "a task declared twice",
    "FL122": "a variable or parameter declared twice",
    "FL123": "an outcome or case value handled or listed twice",
    "FL124": "a flow-level declaration (threading window, on error...) given twice",
    "FL125": "warning: a keyword listed twice in one match",
    "FL201": "a value of the wrong type for its place",
    "FL202": "a condition that is not a boolean (true or false)",
    "FL203": "a variable given a value of another type than it was declared with",
    "FL204": "a parameter whose value does not have its declared type",
    "FL206": "a skill proficiency outside 1 to 5",
    "FL207": "an assignment to a parameter or built-in (they are read-only)",
    "FL208": "a regular expression that does not compile",
    "FL209": "an empty keyword",
    "FL210": "a case value whose type differs from the switch's",
    "FL211": "a loop bound outside 1 to 1000",
    "FL301": "warning: a step that can never run",
    "FL302": "warning: a step that does not handle all of its outcomes",
    "FL303": "the flow has no state",
    "FL304": "'outcome' outside a task",
    "FL305": "'break' outside a loop",
    "FL306": "'keep waiting' outside a route to queue's 'on timeout'",
    "FL307": "warning: a state that is never entered",
    "FL308": "warning: a task that is never called",
    "FL309": "the flow serves no channel",
    "FL311": "tasks that call each other in a loop",
    "FL313": "'on timeout' on a step without a time limit",
    "FL320": "'link customer ... verified by R' outside 'on success:' of the data action into R",
    "FL321": "'link customer ... verified by R' whose value is not one R returned",
    "FL322": "'link customer ... verified by R' where R's data action does not prove identity",
    "FL401": "a threading window over 72 hours",
    "FL403": "content none of the served channels can carry",
    "FL404": "reply text that is not a valid Jinja2 template",
    "FL405": "a template that uses a name the flow does not define",
    "FL406": "a WhatsApp template used without its parameters, or not approved",
    "FL408": "warning: 'privately' or 'publicly' on a flow that serves no public channel",
    "FL409": "more quick replies or buttons than a served channel shows",
    "FL410": "'mark not actionable' in a flow that serves no public posts",
    "FL411": "a scope (posts, comments) a channel does not carry",
    "FL412": "a reply's fixed text longer than a served channel takes (error when every one)",
    "FL413": "warning: an automatic reply on X public posts (one automated reply per post)",
    "FL414": "warning: a keyword that is the business's own handle on a public channel",
    "FL415": "warning: 'reply privately' where a flow's private reply is blocked (X public)",
    "FL420": "a reply template the sandbox refuses: a private or internal attribute, "
    "or a constant value beyond its bounds",
}

RUN_CODES: dict[str, str] = {
    "FL701": "a sample or test file that cannot be read or is not valid YAML",
    "FL702": "a sample or test file with a wrong or missing field",
    "FL900": "a runtime error in a flow (recorded with its source line; other conversations go on)",
    "FL901": "a flow ran more than the step limit for one event (a loop that does not end)",
}

ALL_CODES: dict[str, str] = {**FLOW_CODES, **DEPLOYMENT_CODES, **RUN_CODES}


def describe(code: str) -> str:
    """The one-line description of `code`, or '' for a code flowlang does not define."""
    return ALL_CODES.get(code, "")
