"""The admin in a real browser: Debian's headless Chromium, driven by Playwright.

Playwright's sync API runs an asyncio event loop in this thread while a browser is open, and
Django refuses ORM calls from a thread with a running loop (``SynchronousOnlyOperation``).
Rather than switch that check off (``DJANGO_ALLOW_ASYNC_UNSAFE``), each test sets up its rows
before it opens the browser and checks the database after closing it; the live server
answers the browser from its own thread, where the check holds.

Screenshots of every page go to ``artifacts/screenshots/`` (git-ignored), at 1,280 x 800.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from math import floor
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import Page, expect, sync_playwright
from rest_framework.test import APIClient

from accounts.models import ApiToken, hash_token
from releases.health.adoption import refresh_adoption
from releases.health.reads import HealthQuery, health_data
from releases.models import Release, SessionRollup
from releases.services import CommitData, release_set_commits
from tests.envelopes import send_outcomes
from tests.factories import (
    CommitAuthorFactory,
    CommitFactory,
    DeployFactory,
    ProjectFactory,
    PullRequestFactory,
    ReleaseFactory,
    RepositoryFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTH, HEIGHT = 1280, 800
SCREENSHOTS = Path(settings.BASE_DIR) / "artifacts" / "screenshots"
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def chromium() -> None:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def browser(tmp_path: Path) -> Iterator[Page]:
    """A fresh Chromium profile, one 1,280 x 800 page; closed on the way out."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": WIDTH, "height": HEIGHT},
        )
        context.set_default_timeout(15_000)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


OVERFLOW_JS = """() => {
    const page = document.documentElement.scrollWidth - window.innerWidth;
    const boxes = [...document.querySelectorAll("#content *")].filter((e) => {
        const style = getComputedStyle(e);
        return ["auto", "scroll", "hidden"].includes(style.overflowX)
            && style.textOverflow !== "ellipsis" && e.getBoundingClientRect().width > 1;
    });
    return Math.max(page, 0, ...boxes.map((e) => e.scrollWidth - e.clientWidth));
}"""


def overflow(page: Page) -> int:
    """How many pixels the page, or a box in it (the release list's table scrolls inside
    its own box), is wider than its room: 0 when nothing needs a horizontal scroll bar."""
    return int(page.evaluate(OVERFLOW_JS))


def log_in(page: Page, base: str, username: str) -> None:
    page.goto(base + "/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_have_text("Sentry-compatible releases")


def release_with_history(commits: int) -> Release:
    """A release of two projects with ``commits`` commits (the newest merged as PR #77) and
    three deploys, the way sentry-cli leaves one."""
    project = ProjectFactory(slug="backend", name="Backend")
    org = project.organization
    ProjectFactory(organization=org, slug="frontend", name="Frontend")
    release = ReleaseFactory(
        organization=org,
        version="backend@2.4.0-rc.1+build.2026.11.30.1847",
        projects=list(org.projects.all()),
    )
    repo = RepositoryFactory(organization=org, name="acme/backend-service")
    author = CommitAuthorFactory(organization=org, name="Ada Lovelace", email="ada@example.com")
    made = [
        CommitFactory(
            organization=org,
            repository=repo,
            author=author,
            key=f"{n:07x}" + "f" * 33,
            message=f"fix(api): handle edge case number {n} in the release list endpoint\n\n"
            "A long explanation that only the commit's own page shows.",
        )
        for n in range(1, commits + 1)
    ]
    release_set_commits(
        release=release, commits=[CommitData(id=c.key, repository=repo.name) for c in made]
    )
    PullRequestFactory(organization=org, repository=repo, key="77", merge_commit_sha=made[0].key)
    for day, env in [(28, "staging"), (29, "canary"), (30, "production")]:
        DeployFactory(
            release=release,
            environment__name=env,
            name=f"{release.version} to {env}",
            url=f"https://ci.example.com/deploys/{day}",
            date_started=datetime(2026, 11, day, 9, 0, tzinfo=UTC),
            date_finished=datetime(2026, 11, day, 9, 12, tzinfo=UTC),
        )
    return release


def test_release_pages_show_commits_and_deploys_and_fit_1280_px(live_server, tmp_path):
    UserFactory(username="root", is_staff=True, is_superuser=True, password=PASSWORD)
    release = release_with_history(commits=20)
    for n in range(12):
        ReleaseFactory(organization=release.organization, version=f"frontend@3.{n}.0")
    project = release.projects.get(slug="backend")
    base = live_server.url

    with browser(tmp_path) as page:
        log_in(page, base, "root")
        screenshot(page, "01-admin-index")
        index_overflow = overflow(page)

        page.locator("#content-main a[href='/admin/releases/release/']").first.click()
        expect(page.locator("#result_list")).to_contain_text(release.version)
        screenshot(page, "02-release-list")
        list_overflow = overflow(page)
        list_rows = page.locator("#result_list tbody tr").count()

        page.click(f"#result_list a:text-is('{release.version}')")
        expect(page.locator("h2#release_commits-heading")).to_have_text("Commits (20)")
        screenshot(page, "03-release-page")
        release_overflow = overflow(page)
        release_height = page.evaluate("document.documentElement.scrollHeight")
        commit_rows = page.locator("tr.commit-row").all_inner_texts()
        deploys = page.locator("li.deploy").all_inner_texts()
        health_slot = page.locator("#release-health").count()

        page.click("#deploys-2-group .add-row a")
        page.click("#deploys-2-0 .field-environment .select2-selection")
        page.fill(".select2-search__field", "canary")
        page.click(".select2-results__option:has-text('canary')")
        page.fill("#id_deploys-2-0-name", "hotfix to canary")
        screenshot(page, "04-release-page-adding-a-deploy")
        adding_overflow = overflow(page)
        page.click("input[name=_continue]")
        expect(page.locator("h2#deploys-heading")).to_contain_text("Deploys (4)")
        newest_deploy = re.sub(r"\s+", " ", page.locator("li.deploy").first.inner_text())

        page.goto(f"{base}/admin/releases/project/{project.pk}/change/")
        expect(page.locator("#keys-group")).to_contain_text("http://")
        screenshot(page, "05-project-page")
        project_overflow = overflow(page)

    assert (index_overflow, list_overflow, release_overflow, adding_overflow, project_overflow) == (
        0, 0, 0, 0, 0,
    )  # fmt: skip
    assert list_rows == 13
    assert [re.split(r"\s*\t\s*", row.strip()) for row in commit_rows[:2]] == [
        ["0000001", "fix(api): handle edge case number 1 in the release list endpoint",
         "Ada Lovelace", "acme/backend-service", "#77"],
        ["0000002", "fix(api): handle edge case number 2 in the release list endpoint",
         "Ada Lovelace", "acme/backend-service", "—"],
    ]  # fmt: skip
    assert len(commit_rows) == 20
    assert [re.sub(r"\s+", " ", d).split(" took ")[0] for d in deploys] == [
        f"2026-11-{day} 09:12 UTC {env} {release.version} to {env}"
        for day, env in [(30, "production"), (29, "canary"), (28, "staging")]
    ]
    assert all("took 12 minutes" in re.sub(r"\s+", " ", d) for d in deploys)
    assert health_slot == 1
    # Twenty commits used to make a 3,900 px page of SHA drop-downs.
    assert release_height < 2800
    assert re.search(r"^2026-\d\d-\d\d \d\d:\d\d UTC canary hotfix to canary ", newest_deploy)
    release.refresh_from_db()
    assert (release.total_deploys, release.last_deploy.name) == (4, "hotfix to canary")


def test_token_created_with_scope_checkboxes_is_shown_once_and_works(live_server, tmp_path):
    UserFactory(username="root", is_staff=True, is_superuser=True, password=PASSWORD)
    UserFactory(username="alice")
    base = live_server.url

    with browser(tmp_path) as page:
        log_in(page, base, "root")
        page.goto(base + "/admin/accounts/apitoken/add/")
        page.click(".field-user .select2-selection")
        page.fill(".select2-search__field", "alice")
        page.click(".select2-results__option:has-text('alice')")
        page.fill("#id_name", "ci")
        page.check("input[name=scopes][value='project:releases']")
        page.check("input[name=scopes][value='org:read']")
        scope_labels = [t.strip() for t in page.locator("#id_scopes label").all_inner_texts()]
        screenshot(page, "06-token-form")
        form_overflow = overflow(page)
        page.click("input[name=_save]")
        secret = page.locator("code.new-token").inner_text()
        screenshot(page, "07-token-created")

        page.click("#result_list a:has-text('ci of alice')")
        expect(page.locator("input[name=scopes][value='org:read']")).to_be_checked()
        change_page = page.content()
        page.goto(base + "/admin/accounts/apitoken/")
        list_page = page.content()

    request = urllib.request.Request(  # noqa: S310 - the live server's own http URL
        base + "/api/0/", headers={"Authorization": f"Bearer {secret}"}
    )
    with urllib.request.urlopen(request) as response:  # noqa: S310
        body = json.load(response)
    assert body["auth"] == {"scopes": ["org:read", "project:releases"]}
    assert body["user"]["username"] == "alice"
    token = ApiToken.objects.get()
    assert (token.token_hash, token.scopes, token.user.username, token.name) == (
        hash_token(secret), ["org:read", "project:releases"], "alice", "ci",
    )  # fmt: skip
    assert secret not in change_page
    assert secret not in list_page
    assert form_overflow == 0
    assert "org:read — list repositories (GET …/repos/)" in scope_labels


def test_release_health_list_sort_chart_and_compare_page(live_server, tmp_path):
    UserFactory(username="root", is_staff=True, is_superuser=True, password=PASSWORD)
    project = ProjectFactory(slug="shop", name="Shop")
    sdk = APIClient()
    now = timezone.now().replace(minute=10, second=0, microsecond=0)
    for age, version, crashed in [
        (3, "shop@1.0.0", 2),
        (2, "shop@1.1.0", 25),
        (1, "shop@1.2.0", 6),
    ]:
        ReleaseFactory(organization=project.organization, version=version, projects=[project],
                       date_added=now - timedelta(days=age))  # fmt: skip
        for hours in (2, 5, 9):
            send_outcomes(sdk, project, release=version, started=now - timedelta(hours=hours),
                          exited=40 - crashed, errored=2, crashed=crashed // 3 + (hours == 5),
                          abnormal=1)  # fmt: skip
    refresh_adoption(now=timezone.now())
    bad = Release.objects.get(version="shop@1.1.0")
    DeployFactory(release=bad, environment__name="production", name="shop@1.1.0 to production",
                  date_finished=now - timedelta(hours=7))  # fmt: skip
    expected = dict.fromkeys(("healthy", "errored", "abnormal", "crashed"), 0)
    for rollup in SessionRollup.objects.filter(release=bad):
        fatal = rollup.crashed + rollup.abnormal + rollup.unhandled
        expected["healthy"] += rollup.sessions - max(rollup.errored, fatal)
        expected["errored"] += max(0, rollup.errored - fatal)
        expected["abnormal"] += rollup.abnormal
        expected["crashed"] += rollup.crashed
    health = health_data(
        [(project.pk, r.pk) for r in Release.objects.filter(projects=project)],
        HealthQuery(stats_period=None),
        timezone.now(),
    )
    by_rate = sorted(
        Release.objects.filter(projects=project),
        key=lambda r: health[(project.pk, r.pk)].crash_free_sessions,
    )
    base = live_server.url

    with browser(tmp_path) as page:
        log_in(page, base, "root")
        page.goto(base + "/admin/releases/release/")
        page.click("#result_list th.column-crash_free_sessions a")
        expect(page.locator("#result_list th.column-crash_free_sessions")).to_have_class(
            re.compile("sorted ascending")
        )
        screenshot(page, "08-release-list-by-crash-free-sessions")
        list_overflow = overflow(page)
        versions = page.locator("#result_list td.field-version, #result_list th.field-version")
        listed = versions.all_inner_texts()
        rates = page.locator("#result_list td.field-crash_free_sessions").all_inner_texts()
        stages = page.locator("#result_list td.field-stage").all_inner_texts()

        page.click("#result_list a:text-is('shop@1.1.0')")
        page.select_option("#id_health-period", "24h")
        page.click("form.health-form input[type=submit]")
        expect(page.locator("#sessions-chart")).to_be_visible()
        screenshot(page, "09-release-health-chart")
        chart_overflow = overflow(page)
        segments = page.locator("#sessions-chart rect.segment")
        drawn: dict[str, int] = {}
        for rect in segments.all():
            outcome = rect.get_attribute("data-outcome") or ""
            drawn[outcome] = drawn.get(outcome, 0) + int(rect.get_attribute("data-count") or 0)
        heights = [float(r.get_attribute("height") or 0) for r in segments.all()]
        markers = page.locator("#sessions-chart g.deploy-marker").count()
        marker_title = page.locator("#sessions-chart g.deploy-marker title").first.text_content()
        chart_title = page.locator("#sessions-chart-title").text_content()
        page.click("details.chart-numbers summary")
        table_rows = page.locator("#sessions-chart-table tbody tr").count()
        adoption = page.locator("table.adoption-stages tr.adoption-row").all_inner_texts()
        headline = page.locator("#health-crash-free-sessions").inner_text()

        page.click("a.compare-link")
        expect(page.locator("#compare-releases")).to_be_visible()
        screenshot(page, "10-compare-releases")
        compare_overflow = overflow(page)
        compared = page.locator("tr.compare-row td.field-version").all_inner_texts()
        changes = page.locator("tr.compare-row td.vs-before").all_inner_texts()
        sparklines = page.locator("tr.compare-row svg.sparkline polyline").count()

    assert (list_overflow, chart_overflow, compare_overflow) == (0, 0, 0)
    assert listed == [r.version for r in by_rate]
    assert listed[0] == "shop@1.1.0"
    # One decimal, rounded down: 99.96 % is not shown as 100 %.
    assert rates == [f"{floor(health[(project.pk, r.pk)].crash_free_sessions * 10) / 10:.1f} %"
                     for r in by_rate]  # fmt: skip
    assert all(stage in ("Adopted", "Replaced", "Low adoption") for stage in stages)
    assert drawn == {k: v for k, v in expected.items() if v}
    assert sum(drawn.values()) == sum(r.sessions for r in SessionRollup.objects.filter(release=bad))
    assert all(h > 0 for h in heights)
    assert markers == 1
    assert "shop@1.1.0 to production (production)" in (marker_title or "")
    assert "Sessions of shop@1.1.0 in shop" in (chart_title or "")
    assert table_rows == 3  # three hours with sessions
    assert adoption[0].startswith("production")
    assert headline == f"{floor(health[(project.pk, bad.pk)].crash_free_sessions * 10) / 10:.1f} %"
    assert compared == ["shop@1.2.0", "shop@1.1.0", "shop@1.0.0"]
    assert [change[0] for change in changes] == ["▲", "▼", "—"]
    assert sparklines == 3
