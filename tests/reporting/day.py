"""A scripted day at GBank, run through the real flows, ACD and SQLite store.

Monday 5 January 2026 (UTC). The times below are the script: the tests compute every expected
figure from them, never from the reporting code.

Messaging (flows/messaging.flow); every agent starts away:
- chloe (WhatsApp, Sunday): writes in Japanese about a loan at 11:00 Sunday; the bot escalates at
  SUN_QUEUED; only kenji (away all weekend) speaks Japanese, so Retail Banking times out after 30
  minutes and the flow moves her to Overflow, where she waits until the 24-hour WhatsApp window
  closes on Monday at 11:00: expired.
- ana (web): queued 09:02 for Loans; bob becomes available at 09:05 and answers; he replies
  twice, completes at 09:15 with Resolved; after-call work (2 min) ends at 09:17.
- ben (WhatsApp): queued 09:31 for Cards and Billing; alice becomes available at 09:40; she
  replies once and transfers to Complaints at 09:45; dave becomes available at 09:50, replies,
  completes at 10:00 (Complaints has no after-call work).
- dan (web): queued 10:32 for Cards while alice is away (since 10:20); he closes the chat at
  10:40: abandoned.
- eve (LINE): the bot resolves her question at 11:32.

Social (flows/social.flow); erin, dave and frank start away:
- tom (X, public): 09:10 post, Social Public; erin available at 09:20 answers; replies; completes
  "Moved to DM" at 09:30.
- uma (Facebook page post): 09:50, erin answers at once; completes at 10:05.
- val (Facebook page post) 11:00: no service keyword, not actionable.
- wes (X, public): 11:10 post; erin is away since 11:05; he deletes it at 11:20: abandoned.
- xia (X DM): dave available at 11:55; she writes at 12:00, dave answers at once, replies,
  completes at 12:10.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from flowlang.harness import load_samples, run_samples
from flowlang.project import load_project
from flowlang.store import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
DAY = datetime(2026, 1, 5, tzinfo=UTC)
SUNDAY = DAY - timedelta(days=1)


def t(clock: str, day: datetime = DAY) -> datetime:
    hours, minutes = clock.split(":")
    return day + timedelta(hours=int(hours), minutes=int(minutes))


# The script's times, named as the tests use them.
SUN_FIRST = t("11:00", SUNDAY)
SUN_QUEUED = t("11:01", SUNDAY)
SUN_TIMEOUT = SUN_QUEUED + timedelta(minutes=30)  # Retail Banking's queue timeout in the flow
CHLOE_EXPIRES = SUN_FIRST + timedelta(hours=24)  # WhatsApp: 24 h after her last message
ANA_QUEUED, BOB_AVAILABLE, ANA_COMPLETED = t("09:02"), t("09:05"), t("09:15")
ANA_WORK_ENDS = ANA_COMPLETED + timedelta(minutes=2)  # Retail Banking: 2 min after-call work
BEN_QUEUED, ALICE_AVAILABLE, BEN_TRANSFERRED = t("09:31"), t("09:40"), t("09:45")
DAVE_AVAILABLE, BEN_COMPLETED = t("09:50"), t("10:00")
ALICE_AWAY, DAN_QUEUED, DAN_CLOSED = t("10:20"), t("10:32"), t("10:40")
TOM_QUEUED, ERIN_AVAILABLE, TOM_COMPLETED = t("09:10"), t("09:20"), t("09:30")
UMA_QUEUED, UMA_COMPLETED = t("09:50"), t("10:05")
VAL_POSTED = t("11:00")
ERIN_AWAY, WES_QUEUED, WES_DELETED = t("11:05"), t("11:10"), t("11:20")
DAVE_SOCIAL_AVAILABLE, XIA_QUEUED, XIA_COMPLETED = t("11:55"), t("12:00"), t("12:10")
END_OF_DAY = t("18:00")


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


MESSAGING: dict[str, Any] = {
    "start": _at(SUN_FIRST),
    "data_actions": {
        "CRM Lookup": {"status": "success", "outputs": {"customer_id": "C-1", "name": "Customer"}}
    },
    "agents_away": ["alice", "bob", "carmen", "kenji", "dave", "frank"],
    "conversations": [
        {
            "name": "chloe",
            "channel": "whatsapp",
            "account": "+442079460000",
            "customer": {"id": "447700900777", "phone": "+447700900777", "name": "Chloe"},
            "start": _at(SUN_FIRST),
            "events": [
                {"message": "ローンについて質問があります"},
                {"at": _at(SUN_QUEUED), "bot": "escalate", "intent": "loan_enquiry"},
            ],
        },
        {
            "name": "ana",
            "channel": "web",
            "account": "gbank-web",
            "customer": {"id": "web-ana", "name": "Ana"},
            "start": _at(t("09:00")),
            "events": [
                {"message": "Hi, I have a question about my loan"},
                {"at": _at(t("09:01")), "message": "12345678"},
                {"at": _at(ANA_QUEUED), "bot": "escalate", "intent": "loan_enquiry"},
                {"at": _at(BOB_AVAILABLE), "available": "bob"},
                {"at": _at(t("09:06")), "reply": "Hello Ana, I'm Bob."},
                {"at": _at(t("09:08")), "reply": "Here are our loan terms."},
                {"at": _at(ANA_COMPLETED), "complete": "Resolved"},
            ],
        },
        {
            "name": "ben",
            "channel": "whatsapp",
            "account": "+442079460000",
            "customer": {"id": "447700900555", "phone": "+447700900555", "name": "Ben"},
            "start": _at(t("09:30")),
            "events": [
                {"message": "My card was charged twice"},
                {"at": _at(BEN_QUEUED), "bot": "escalate", "intent": "complaint"},
                {"at": _at(ALICE_AVAILABLE), "available": "alice"},
                {"at": _at(t("09:42")), "reply": "Let me pass you to our complaints team."},
                {"at": _at(BEN_TRANSFERRED), "transfer": "Complaints"},
                {"at": _at(DAVE_AVAILABLE), "available": "dave"},
                {"at": _at(t("09:52")), "reply": "I'm Dave, I will refund the charge."},
                {"at": _at(BEN_COMPLETED), "complete": "Resolved"},
            ],
        },
        {
            "name": "dan",
            "channel": "web",
            "account": "gbank-web",
            "customer": {"id": "web-dan", "name": "Dan"},
            "start": _at(ALICE_AWAY),
            "events": [
                {"away": "alice"},
                {"at": _at(t("10:30")), "message": "My card is blocked"},
                {"at": _at(t("10:31")), "message": "99887766"},
                {"at": _at(DAN_QUEUED), "bot": "escalate", "intent": "lost_card"},
                {"at": _at(DAN_CLOSED), "close": ""},
            ],
        },
        {
            "name": "eve",
            "channel": "line",
            "account": "GBank LINE",
            "customer": {"id": "U-eve", "name": "Eve"},
            "start": _at(t("11:30")),
            "events": [
                {"message": "What time do you open?"},
                {"at": _at(t("11:31")), "message": "11112222"},
                {"at": _at(t("11:32")), "bot": "resolved"},
                {"at": _at(END_OF_DAY), "wait": True},
            ],
        },
    ],
}

SOCIAL: dict[str, Any] = {
    "start": _at(TOM_QUEUED),
    "agents_away": ["erin", "dave", "frank"],
    "conversations": [
        {
            "name": "tom",
            "channel": "x_public",
            "account": "@GbankSocial",
            "customer": {"id": "x-tom", "name": "Tom"},
            "start": _at(TOM_QUEUED),
            "events": [
                {"post": "Why is the card fee so high? #nothappy", "post_id": "tw-1"},
                {"at": _at(ERIN_AVAILABLE), "available": "erin"},
                {"at": _at(t("09:25")), "reply": "Sorry Tom, we'll DM you."},
                {"at": _at(TOM_COMPLETED), "complete": "Moved to DM"},
            ],
        },
        {
            "name": "uma",
            "channel": "facebook_page",
            "account": "GBank",
            "customer": {"id": "fb-uma", "name": "Uma"},
            "start": _at(UMA_QUEUED),
            "events": [
                {"post": "Is anyone there? I have a problem with my loan", "post_id": "fb-1"},
                {"at": _at(t("09:55")), "reply": "Hi Uma, we can help."},
                {"at": _at(UMA_COMPLETED), "complete": "Resolved"},
            ],
        },
        {
            "name": "val",
            "channel": "facebook_page",
            "account": "GBank",
            "customer": {"id": "fb-val", "name": "Val"},
            "start": _at(VAL_POSTED),
            "events": [{"post": "lovely weather today", "post_id": "fb-2"}],
        },
        {
            "name": "wes",
            "channel": "x_public",
            "account": "@GbankSocial",
            "customer": {"id": "x-wes", "name": "Wes"},
            "start": _at(ERIN_AWAY),
            "events": [
                {"away": "erin"},
                {
                    "at": _at(WES_QUEUED),
                    "post": "Help, my card was charged twice",
                    "post_id": "tw-2",
                },
                {"at": _at(WES_DELETED), "delete": "", "post_id": "tw-2"},
            ],
        },
        {
            "name": "xia",
            "channel": "x_dm",
            "account": "@GbankSocial",
            "customer": {"id": "x-xia", "name": "Xia"},
            "start": _at(DAVE_SOCIAL_AVAILABLE),
            "events": [
                {"available": "dave"},
                {"at": _at(XIA_QUEUED), "message": "A question about fees please"},
                {"at": _at(t("12:02")), "reply": "Hi Xia, here is our fee list."},
                {"at": _at(XIA_COMPLETED), "complete": "Resolved"},
                {"at": _at(END_OF_DAY), "wait": True},
            ],
        },
    ],
}


def run_day(folder: Path) -> Path:
    """Run both halves of the day into one store file; returns its path."""
    store_path = folder / "day.db"
    yaml = YAML()
    for name, flow, script in (
        ("messaging", "messaging.flow", MESSAGING),
        ("social", "social.flow", SOCIAL),
    ):
        samples_path = folder / f"{name}.yaml"
        with samples_path.open("w", encoding="utf-8") as handle:
            yaml.dump(script, handle)
        project, workspace = load_project(
            ROOT / "flows" / flow, ROOT / "examples" / "deployment.yaml"
        )
        assert project is not None, workspace
        with SqliteStore(store_path) as store:
            run_samples(project, load_samples(samples_path), store=store)
    return store_path
