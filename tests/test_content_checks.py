"""The content checks, rule by rule, on plain assets (no database), and the rules as template data."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.content_checks import (
    AssetContent,
    ContentRules,
    Finding,
    Requirement,
    Rule,
    Severity,
    check,
    errors_of,
    parse_rules,
    placeholders_in,
    read_body,
    url_problem,
)
from services.planning.templates import load_library, read_template

GOOD_BODY = ('<p>Hello!</p><a href="https://example.com/spring?utm_source=newsletter">Read more</a>'
             '<img src="https://example.com/hero.png" alt="Spring collection">'
             '<p><a href="https://example.com/unsubscribe">Unsubscribe</a></p>')


def draft(**fields: str | None) -> AssetContent:
    values: dict[str, str | None] = {"subject": "Spring is here", "preheader": "Our new collection", "body": GOOD_BODY}
    values.update(fields)
    return AssetContent(ref="AS-1", title="Spring issue", kind="email", **values)


def rules_found(*assets: AssetContent, rules: ContentRules | None = None) -> dict[Rule, Finding]:
    return {finding.rule: finding for finding in check(list(assets), rules or ContentRules())}


def test_a_clean_draft_has_no_findings() -> None:
    assert check([draft()], ContentRules()) == ()


# ---------------------------------------------------------------- subject and preheader


@pytest.mark.parametrize("subject", [None, "", "   \n "])
def test_an_empty_subject_is_an_error(subject: str | None) -> None:
    found = rules_found(draft(subject=subject))
    assert found[Rule.SUBJECT_EMPTY].severity is Severity.ERROR
    assert found[Rule.SUBJECT_EMPTY].asset == "AS-1"


def test_a_long_subject_is_a_warning_at_the_templates_length() -> None:
    assert Rule.SUBJECT_TOO_LONG not in rules_found(draft(subject="x" * 60))
    long = rules_found(draft(subject="x" * 61))[Rule.SUBJECT_TOO_LONG]
    assert long.severity is Severity.WARNING and "61 characters" in long.message
    assert Rule.SUBJECT_TOO_LONG in rules_found(draft(subject="x" * 51), rules=ContentRules(subject_max_length=50))


def test_a_missing_preheader_is_a_warning() -> None:
    assert rules_found(draft(preheader=" "))[Rule.PREHEADER_MISSING].severity is Severity.WARNING


def test_subject_rules_are_for_email_drafts_only() -> None:
    link = AssetContent(ref="AS-2", title="Landing page", kind="link", url="https://example.com/?utm_source=x")
    assert check([link], ContentRules()) == ()


# ---------------------------------------------------------------- unsubscribe


@pytest.mark.parametrize("body", [
    '<a href="https://example.com/u?id=1">Unsubscribe</a>',
    '<A HREF="https://example.com/u">  <SPAN>Un</SPAN><b>subscribe</b> here</A>',  # upper case, nested tags
    '<a href="https://example.com/unsub/123?utm_source=x">Manage</a>',
    '<p>Not for you? <a href="[[UNSUB_LINK_EN]]">Leave the list</a></p>',
    '<p>Footer: {{ unsubscribe_url }}</p>',
    '<p>Footer <a href="*|UNSUB|*">leave</a></p>',
    '<p><a href="https://example.com/x?utm_source=y">Un&shy;subscribe</a></p>'.replace("&shy;", ""),
    '<p>Leave: <a href="https://example.com/leave">&#85;nsubscribe</a></p>',  # an entity in the text
    "Hello,\nplain text.\nUnsubscribe: https://example.com/unsubscribe\n",
    "Plain text with Mailjet's [[UNSUB_LINK_EN]] on its own line",
])
def test_an_unsubscribe_link_is_found(body: str) -> None:
    assert read_body(body).has_unsubscribe, body
    assert Rule.UNSUBSCRIBE_MISSING not in rules_found(draft(body=body))


@pytest.mark.parametrize("body", [
    "<p>Hello</p><a href='https://example.com/?utm_source=x'>Shop</a>",
    "<p>To unsubscribe, reply STOP.</p>",  # words, but no link to click
    "Plain text, to unsubscribe write to us.",
    "<p>Broken <a href='https://example.com/?utm_source=x'>unclosed <b>bold",
])
def test_no_unsubscribe_link_is_an_error(body: str) -> None:
    expected = "unsubscribe" in body and "<a" in body  # an unclosed link that says it still counts
    assert read_body(body).has_unsubscribe is expected
    if not expected:
        assert rules_found(draft(body=body))[Rule.UNSUBSCRIBE_MISSING].severity is Severity.ERROR


def test_a_draft_without_a_body_is_not_checked_for_unsubscribe() -> None:
    assert Rule.UNSUBSCRIBE_MISSING not in rules_found(draft(body=None))


# ---------------------------------------------------------------- placeholders


@pytest.mark.parametrize(("text", "left"), [
    ("Lorem Ipsum dolor", '"lorem ipsum"'),
    ("lorem\n  ipsum", '"lorem ipsum"'),
    ("TODO: the offer", '"TODO"'),
    ("Hi {{first_name}}", '"{{"'),
    ("Hi {{ unclosed", '"{{"'),
    ("Dear [NAME],", '"[NAME]"'),
    ("Dear [FIRST NAME],", '"[FIRST NAME]"'),
])
def test_placeholders_are_found(text: str, left: str) -> None:
    assert left in placeholders_in(text)


@pytest.mark.parametrize("text", ["A todo list", "Today only", "{{unsubscribe}}", "[[UNSUB_LINK_EN]]", "See [1]",
                                  "Pick [a] or [b]", "{ single }"])
def test_ordinary_text_is_no_placeholder(text: str) -> None:
    assert placeholders_in(text) == []


def test_placeholders_are_looked_for_in_subject_preheader_and_body_text() -> None:
    found = check([draft(subject="TODO subject", preheader="Lorem ipsum",
                         body=GOOD_BODY + '<p>Hi [NAME]</p><img src="https://e.com/a.png" alt="TODO">')], ContentRules())
    messages = [f.message for f in found if f.rule is Rule.PLACEHOLDER_TEXT]
    assert messages == ['The subject still has placeholder text: "TODO".',
                        'The preheader still has placeholder text: "lorem ipsum".',
                        'The body still has placeholder text: "TODO", "[NAME]".']
    assert all(f.severity is Severity.ERROR for f in found if f.rule is Rule.PLACEHOLDER_TEXT)


def test_placeholder_words_in_markup_only_do_not_count() -> None:
    body = GOOD_BODY + '<p class="TODO lorem-ipsum" data-x="[NAME]">Fine text</p><!-- TODO later -->'
    assert Rule.PLACEHOLDER_TEXT not in rules_found(draft(body=body))


def test_script_and_style_are_not_text() -> None:
    body = GOOD_BODY + "<style>.x { content: 'TODO' }</style><script>var a = '{{x}}';</script>"
    assert Rule.PLACEHOLDER_TEXT not in rules_found(draft(body=body))


# ---------------------------------------------------------------- links


@pytest.mark.parametrize(("url", "problem"), [
    ("https://example.com/a?b=1", None),
    ("http://example.com", None),
    ("https://[2001:db8::1]/x", None),
    ("ftp://example.com/file", "should start with https://"),
    ("javascript:alert(1)", "should start with https://"),
    ("https://exa mple.com", "spaces"),
    ("https://", "no proper host"),
    ("https://localhost/x", "no proper host"),
    ("https://example..com", "no proper host"),
    ("https://example.com:99999999/", "not readable"),
    ("/relative/path", "should start with https://"),
    ('https://example.com/"><script>', "characters no address has"),
    ("https://example.com/a\\b", "characters no address has"),
    ("https://e.com/" + "x" * 2000, "longer than"),
])
def test_url_problems(url: str, problem: str | None) -> None:
    found = url_problem(url)
    assert (found is None) if problem is None else (found is not None and problem in found), found


def test_links_in_bodies_and_link_assets_need_utm_and_a_proper_address() -> None:
    body = GOOD_BODY + ('<a href="https://example.com/a">A</a><a href="https://example.com/a">again</a>'
                        '<a href="/relative">R</a><a href="mailto:hi@example.com">mail</a><a href="#top">top</a>'
                        '<a href="tel:+491234">call</a>')
    landing = AssetContent(ref="AS-2", title="Landing", kind="link", url="https://example.com/launch")
    found = check([draft(body=body), landing], ContentRules())
    by_asset = {(f.asset, f.rule): f for f in found}
    assert by_asset[("AS-1", Rule.MALFORMED_URL)].message == "1 link has not a working web address: /relative."
    assert by_asset[("AS-1", Rule.MALFORMED_URL)].severity is Severity.ERROR
    assert by_asset[("AS-1", Rule.LINK_WITHOUT_UTM)].message == "1 link has no utm_ parameters: https://example.com/a."
    assert by_asset[("AS-2", Rule.LINK_WITHOUT_UTM)].severity is Severity.WARNING
    assert ("AS-1", Rule.SUBJECT_EMPTY) not in by_asset


def test_many_links_are_named_up_to_three() -> None:
    body = GOOD_BODY + "".join(f'<a href="https://example.com/{n}">{n}</a>' for n in range(5))
    [untagged] = [f for f in check([draft(body=body)], ContentRules()) if f.rule is Rule.LINK_WITHOUT_UTM]
    assert untagged.message.startswith("5 links have no utm_ parameters: ") and untagged.message.endswith("and 2 more.")


def test_a_file_assets_address_is_only_checked_for_being_one() -> None:
    file = AssetContent(ref="AS-3", title="Brief", kind="file", url="https://team.slack.com/files/U1/F1/brief.pdf")
    broken = AssetContent(ref="AS-4", title="Odd", kind="document", url="notaurl")
    found = check([file, broken], ContentRules())
    assert [(f.asset, f.rule) for f in found] == [("AS-4", Rule.MALFORMED_URL)]


# ---------------------------------------------------------------- images


def test_images_without_alt_text_are_warnings_and_empty_alt_is_fine() -> None:
    body = GOOD_BODY + ('<IMG SRC="https://e.com/a.png"><img src="https://e.com/b.png" alt="">'
                        '<img src="https://e.com/c.png" ALT><img src="https://e.com/d.png" alt="Dog"/>'
                        '<div><p><img src="https://e.com/e.png" /></p></div>')
    [missing] = [f for f in check([draft(body=body)], ContentRules()) if f.rule is Rule.IMAGE_WITHOUT_ALT]
    assert missing.severity is Severity.WARNING
    assert missing.message == "2 images have no alt text: https://e.com/a.png, https://e.com/e.png."


def test_broken_html_is_read_as_far_as_it_goes() -> None:
    body = '<p>Hi<img src="x.png"<a href="https://e.com/unsubscribe">Unsubscribe</a><div <<< &bogus; </td></tr>'
    read = read_body(body)
    assert read.is_html
    check([draft(body=body)], ContentRules())  # never raises


def test_entities_are_decoded_before_looking() -> None:
    read = read_body('<p>Lorem&nbsp;ipsum &amp; &#x54;ODO</p><a href="https://e.com/?a=1&amp;utm_source=x">x</a>')
    assert placeholders_in(read.text) == ['"lorem ipsum"', '"TODO"']
    assert read.links == ["https://e.com/?a=1&utm_source=x"]


# ---------------------------------------------------------------- required assets, severities, stages


def test_a_required_kind_missing_is_an_error_about_its_stages() -> None:
    rules = ContentRules(required=(Requirement("email"), Requirement("landing_page", ("Legal review",))))
    found = check([AssetContent(ref="AS-1", title="Doc", kind="document", url="https://e.com/d")], rules)
    missing = [f for f in found if f.rule is Rule.REQUIRED_ASSET_MISSING]
    assert [(f.asset, f.stages) for f in missing] == [(None, ()), (None, ("Legal review",))]
    assert [f.rule for f in errors_of(found, "Brand review")] == [Rule.REQUIRED_ASSET_MISSING]
    assert len(errors_of(found, "legal  REVIEW")) == 2
    assert len(errors_of(found, None)) == 1  # an ad hoc stage: only what is about every stage
    assert found[0].is_error and not any(f.is_error for f in found[2:])  # errors come first


def test_a_template_changes_severities_or_turns_rules_off() -> None:
    rules = ContentRules(overrides=((Rule.PREHEADER_MISSING, Severity.ERROR), (Rule.SUBJECT_EMPTY, Severity.OFF)))
    found = rules_found(draft(subject="", preheader=""), rules=rules)
    assert Rule.SUBJECT_EMPTY not in found
    assert found[Rule.PREHEADER_MISSING].severity is Severity.ERROR


def test_rules_round_trip_through_the_stored_snapshot() -> None:
    rules = ContentRules(required=(Requirement("email", ("Legal review",)),), subject_max_length=45,
                         overrides=((Rule.LINK_WITHOUT_UTM, Severity.OFF),))
    assert ContentRules.from_stored(rules.to_stored()) == rules
    assert ContentRules.from_stored(None) == ContentRules()
    junk = {"required": [{"kind": "<b>"}, "email", {"kind": "email", "stages": "x"}], "subject_max_length": True,
            "severity": {"nope": "error", "placeholder_text": "loud"}}
    assert ContentRules.from_stored(junk) == ContentRules(required=(Requirement("email", ("x",)),))


def test_findings_round_trip_through_a_payload() -> None:
    [finding] = check([draft(subject="")], ContentRules())
    assert Finding.from_payload(finding.to_payload()) == finding
    assert Finding.from_payload({"severity": "loud", "rule": "subject_empty"}) is None


# ---------------------------------------------------------------- rules as template data


def test_parse_rules_reads_a_block() -> None:
    rules, problems = parse_rules({"required_assets": ["Email", {"kind": "landing page", "stages": ["Legal review"]}],
                                   "subject_max_length": 45, "rules": {"link_without_utm": False,
                                                                       "preheader_missing": "error"}},
                                  ["Legal review"])
    assert problems == []
    assert rules == ContentRules(required=(Requirement("email"), Requirement("landing_page", ("Legal review",))),
                                 subject_max_length=45,
                                 overrides=((Rule.LINK_WITHOUT_UTM, Severity.OFF), (Rule.PREHEADER_MISSING, Severity.ERROR)))


@pytest.mark.parametrize(("block", "problem"), [
    ("[email]", "expected a mapping"),
    ("{colour: red}", "unknown field 'colour'"),
    ("{required_assets: email}", "should be a list of kinds"),
    ("{required_assets: [42]}", "should be a kind of asset"),
    ("{required_assets: [{kind: email, when: now}]}", "takes only kind and stages"),
    ("{required_assets: [{kind: email, stages: [Nope]}]}", "unknown stage 'Nope'"),
    ("{subject_max_length: 5}", "from 10 to 300"),
    ("{subject_max_length: yes}", "from 10 to 300"),
    ("{rules: {shouting: error}}", "unknown rule 'shouting'"),
    ("{rules: {subject_empty: loud}}", "'loud' is not one of: error, warning, off"),
    ("{rules: [subject_empty]}", "should map a rule"),
])
def test_bad_content_checks_in_a_template_are_reported_with_their_line(
    tmp_path: Path, block: str, problem: str
) -> None:
    path = tmp_path / "mail.yaml"
    path.write_text("title: Mail\ntasks:\n  - key: send\n    title: Send\n    milestone: true\n"
                    "approvals:\n  - name: Proof\n    approver: lead\n    allowed: 4h\n    after: send\n"
                    f"content_checks: {block}\n")
    template, problems = read_template(path)
    assert template is None
    assert any(problem in str(found) for found in problems), problems
    assert all(found.line is not None for found in problems)


@pytest.mark.parametrize(("value", "problem"), [("[email]", "should be true, false, or a kind"),
                                                ("any", "should be true, false, or a kind")])
def test_a_bad_deliverable_is_reported(tmp_path: Path, value: str, problem: str) -> None:
    path = tmp_path / "mail.yaml"
    path.write_text(f"title: Mail\ntasks:\n  - key: send\n    title: Send\n    milestone: true\n    deliverable: {value}\n")
    template, problems = read_template(path)
    assert template is None and problem in str(problems[0]) and problems[0].line == 3


def test_the_built_in_templates_set_sensible_checks() -> None:
    library = load_library()
    assert library.problems == []
    newsletter, launch = library.templates["newsletter"], library.templates["product_launch"]
    assert newsletter.content_checks.required == (Requirement("email"),)
    assert {task.key: task.deliverable for task in newsletter.tasks if task.deliverable} == {"copy_edit": "email"}
    assert launch.content_checks.required == (Requirement("email", ("Legal review", "Brand review")),)
    assert launch.content_snapshot()["deliverables"] == {"email": "email"}
    assert library.templates["webinar"].content_snapshot() == {**ContentRules().to_stored(), "deliverables": {}}
