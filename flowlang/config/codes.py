"""The deployment file's diagnostic codes (FL5xx), each with a one-line description."""

from __future__ import annotations

CANNOT_READ = "FL500"
YAML_SYNTAX = "FL501"
UNKNOWN_KEY = "FL502"
BAD_VALUE = "FL503"
MISSING_KEY = "FL504"
UNKNOWN_REFERENCE = "FL505"
DUPLICATE = "FL506"
BAD_DURATION = "FL507"
BAD_TIME_ZONE = "FL508"
BAD_HOURS = "FL509"
BAD_THREADING_WINDOW = "FL510"
NOT_UTF8 = "FL511"
CONTROL_CHARACTER = "FL512"
EMPTY = "FL513"
BAD_TEMPLATE = "FL514"
BAD_PHONE = "FL515"
BAD_HANDLE = "FL516"
UNUSED = "FL517"
ENVIRONMENT_MISMATCH = "FL518"
UNSAFE_TEMPLATE = "FL519"

CODES: dict[str, str] = {
    CANNOT_READ: "the deployment file cannot be read (missing, a folder, no permission)",
    YAML_SYNTAX: "the file is not valid YAML (including tabs used for indentation)",
    UNKNOWN_KEY: "a key the deployment file does not define (with a did-you-mean)",
    BAD_VALUE: "a value of the wrong type or outside its allowed values or range",
    MISSING_KEY: "a required key is missing",
    UNKNOWN_REFERENCE: "a name that is used but not declared (skill, language, queue, agent...)",
    DUPLICATE: "a name or key given twice",
    BAD_DURATION: "a duration that is not like 45s, 30m, 72h, 7d or 1h30m",
    BAD_TIME_ZONE: "a time zone that is not an IANA name such as Europe/London",
    BAD_HOURS: "weekly hours that are not HH:MM-HH:MM ranges, end before start, or overlap",
    BAD_THREADING_WINDOW: "a threading window outside 0..72h",
    NOT_UTF8: "the file is not UTF-8 text",
    CONTROL_CHARACTER: "the file contains a NUL or other control character",
    EMPTY: "the file is empty or its top level is not a mapping of keys",
    BAD_TEMPLATE: "a template text that is not valid Jinja2, or a template of the wrong shape",
    BAD_PHONE: "a phone number that is not valid or not in E.164 form (+442079460000)",
    BAD_HANDLE: "a social handle that is not @name (letters, digits, underscore)",
    UNUSED: "warning: a queue nobody works in, or a declaration nothing uses",
    ENVIRONMENT_MISMATCH: "warning: environments that do not set the same parameters",
    UNSAFE_TEMPLATE: "a template text the sandbox refuses: a private or internal attribute, "
    "or a constant value beyond its bounds",
}
