"""`validate` checks a reply's length against every channel the flow serves (FL412): fixed
texts, the fixed part of a reply template and of a deployment template, counted as each
channel counts; and warns of an automatic reply on X public posts (FL413)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.templates import fixed_text
from flowlang.workspace import validate

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = (ROOT / "examples" / "deployment.yaml").read_text("utf-8")


def _codes(tmp_path: Path, flow: str, templates: str = "") -> list[tuple[str, str, str]]:
    (tmp_path / "f.flow").write_text(flow, "utf-8")
    deployment = DEPLOYMENT.replace("templates:\n", "templates:\n" + templates, 1)
    (tmp_path / "deployment.yaml").write_text(deployment, "utf-8")
    ws = validate([tmp_path / "f.flow", tmp_path / "deployment.yaml"])
    return [(d.code, str(d.severity.value), d.message) for d in ws.diagnostics]


def test_a_5000_character_reply_fails_validate_on_whatsapp_web_and_instagram(
    tmp_path: Path,
) -> None:
    flow = (
        'flow "F"\nserve messages on web account "gbank-web", whatsapp number "+442079460000", '
        'instagram account "GBank Instagram"\n\nstate start:\n'
        f'    reply "{"a" * 5000}"\n'
    )
    found = _codes(tmp_path, flow)
    assert [(code, level) for code, level, _ in found] == [("FL412", "error")]
    assert "whatsapp takes 4,096, this is 5,000" in found[0][2]


def test_the_fixed_part_of_a_deployment_template_is_checked(tmp_path: Path) -> None:
    template = f'  long_notice:\n    text: "Hi {{{{ customer.name }}}}, {"b" * 1500}"\n'
    flow = (
        'flow "F"\nserve messages on web account "gbank-web", '
        'instagram account "GBank Instagram"\n\nstate start:\n'
        '    reply template "long_notice"\n'
    )
    found = _codes(tmp_path, flow, template)
    assert [(code, level) for code, level, _ in found] == [("FL412", "warning")]
    assert "instagram takes 1,000, this is 1,505" in found[0][2]


def test_x_public_counts_by_weight_in_validate_too(tmp_path: Path) -> None:
    flow = (
        'flow "F"\nserve posts and mentions on x_public handle "@GbankSocial"\n\n'
        "state start:\n"
        f'    reply "{"日" * 141}"\n'
        f'    reply privately "{"日" * 141}"\n'  # a direct message: not a post's limit
    )
    found = _codes(tmp_path, flow)
    assert [(code, level) for code, level, _ in found if code == "FL412"] == [("FL412", "error")]
    assert "this is 282" in next(m for c, _, m in found if c == "FL412")


def test_a_private_reply_is_measured_against_its_private_route(tmp_path: Path) -> None:
    """On X a private reply is a DM (10,000), on a Facebook page a Messenger message (2,000)."""
    header = 'flow "F"\nserve posts and comments on {} \n\nstate start:\n'
    x = header.format('x_public handle "@GbankSocial"') + f'    reply privately "{"日" * 141}"\n'
    assert [code for code, _, _ in _codes(tmp_path, x)] == ["FL415"]  # blocked, not too long
    page = header.format('facebook_page page "GBank"') + f'    reply privately "{"a" * 2001}"\n'
    (found,) = _codes(tmp_path, page)
    assert found[:2] == ("FL412", "error")
    assert "messenger takes 2,000, this is 2,001" in found[2]


def test_a_reply_that_fits_every_channel_is_not_reported(tmp_path: Path) -> None:
    flow = (
        'flow "F"\nserve messages on web account "gbank-web", '
        'instagram account "GBank Instagram"\n\nstate start:\n'
        f'    reply "{"c" * 1000}"\n'
        '    reply "{{ customer.name }}"\n'
    )
    assert _codes(tmp_path, flow) == []


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="ab {}%x", max_size=40), st.text(alphabet="ab ", max_size=40))
def test_a_templates_fixed_text_is_never_longer_than_what_it_renders(
    before: str, after: str
) -> None:
    source = f"{before}{{{{ name }}}}{after}"
    text = fixed_text(source)
    if text:
        assert len(text) <= len(before) + len(after)


def test_a_private_reply_is_measured_on_the_channel_it_goes_by(tmp_path: Path) -> None:
    comment = (
        'flow "F"\nserve posts and comments on facebook_page page "GBank"\n\n'
        "state start:\n"
        f'    reply privately "{"d" * 2001}"\n'  # a Private Reply goes by Messenger: 2,000
    )
    found = _codes(tmp_path, comment)
    assert [(code, level) for code, level, _ in found] == [("FL412", "error")]
    assert "messenger takes 2,000, this is 2,001" in found[0][2]
