"""The dashboard driven by clicks in a real headless Chromium against a real server: sign in,
upload a dataset and a package through file inputs, train, follow the logs live, stop jobs,
evaluate, approve with a reason, deploy, Run now, and read the audit log. Every main page is
saved as a screenshot under tests/output/screenshots/ (git-ignored) for a human to look at."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer
from playwright.sync_api import expect
from support.browser import chromium_browser, zip_folder
from support.browser import screenshot as save_screenshot
from support.servers import make_token, shared_server, unique

from modelops.client import ModelOpsClient

REPO = Path(__file__).resolve().parent.parent
IRIS_PACKAGE = REPO / "examples" / "iris_package"
IRIS_DATA = REPO / "examples" / "iris_data"
JOB_DONE = '#job[data-terminal="true"]'
LONG = 180_000  # ms: a job's whole run, environment included

# Prints a hostile line, a warning and an error, then ticks until stopped (or SLEEP seconds).
SLOW_TRAIN = textwrap.dedent('''
    import os
    import sys
    import time
    from pathlib import Path


    class Main:
        def __init__(self):
            self.done = False

        def train(self, data_directory):
            print("<script>window.__pwned = 1</script><b>not markup</b>", flush=True)
            print("WARNING: the learning rate looks high", flush=True)
            print("ERROR: a batch could not be read", file=sys.stderr, flush=True)
            deadline = time.time() + float(os.environ.get("SLEEP", "120"))
            step = 0
            while time.time() < deadline:
                step += 1
                print(f"tick {step}", flush=True)
                time.sleep(0.3)
            self.done = True

        def evaluate(self, data_directory):
            return 0.5

        def save(self):
            Path("model.txt").write_text("1")
''')


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with shared_server(tmp_path_factory.mktemp("web-browser")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium_browser() as launched:
        yield launched


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("uploads")
    slow = root / "slow"
    slow.mkdir()
    (slow / "train.py").write_text(SLOW_TRAIN)
    return {
        "iris_package": zip_folder(IRIS_PACKAGE, root / "iris_package.zip"),
        "iris_data": zip_folder(IRIS_DATA, root / "iris_data.zip"),
        "slow_package": zip_folder(slow, root / "slow_package.zip"),
    }


class Session:
    """One browser context signed in through the sign-in page, recording console errors."""

    def __init__(self, browser: Any, srv: RunningServer, token: str, *, shot: str = "") -> None:
        self.url = srv.url
        self.context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.goto(self.url + "/ui/")
        self.page.wait_for_url(re.compile(r".*/ui/login\?next=.*"))
        if shot:
            screenshot(self.page, shot)
        self.page.fill("input[name=token]", token)
        self.page.click("button:has-text('Sign in')")
        self.page.wait_for_url(self.url + "/ui/")

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(message.text)

    def go(self, path: str) -> Any:
        self.page.goto(self.url + path)
        return self.page

    def close(self) -> None:
        self.context.close()
        # A refused inline script or style, or a script error, shows up here.
        assert self.problems == []


@pytest.fixture
def admin(browser: Any, srv: RunningServer) -> Iterator[Session]:
    session = Session(browser, srv, srv.token, shot="01-sign-in")
    yield session
    session.close()


def new_project(session: Session, prefix: str) -> str:
    page = session.go("/ui/")
    name = unique(prefix)
    page.fill("input[name=name]", name)
    page.fill("input[name=description]", "made by the browser tests <script>window.__pwned = 1</script>")
    page.click("button:has-text('Create project')")
    page.wait_for_url(re.compile(rf".*/ui/projects/{name}/jobs$"))
    return name


def upload_package(session: Session, project: str, name: str, archive: Path) -> None:
    page = session.go(f"/ui/projects/{project}/packages")
    page.fill("#package-upload input[name=name]", name)
    page.set_input_files("#package-upload input[name=archive]", str(archive))
    page.click("#package-upload button[type=submit]")
    page.wait_for_url(re.compile(r".*/versions/\d+\.0$"))


def create_pipeline(session: Session, *, name: str, folder: str = "", parameters: str = "") -> str:
    """Fill the pipeline form the current page links to ("Train" / "Evaluate"); returns the run page URL."""
    page = session.page
    page.fill("#pipeline-form input[name=name]", name)
    page.fill("#pipeline-form input[name=folder]", folder)
    page.fill("#pipeline-form textarea[name=parameters]", parameters)
    page.click("#pipeline-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/runs/\d+$"))
    return str(page.url)


def screenshot(page: Any, name: str) -> None:
    """Save the page for a human to look at; a page wider than the window is a layout bug."""
    save_screenshot(page, name)
    width = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert width <= 0, f"{name}: the page is {width}px wider than the window"


def statuses(page: Any) -> list[str]:
    return [text.strip().lower() for text in page.locator("#jobs-table .status-cell").all_inner_texts()]


# --------------------------------------------------------------------------- the lifecycle


def test_the_model_lifecycle_by_clicks(admin: Session, files: dict[str, Path]) -> None:
    page = admin.page
    assert admin.go("/ui/login").url == admin.url + "/ui/"  # a signed-in user is sent on
    project = new_project(admin, "life")
    base = f"/ui/projects/{project}"
    assert "<script>" in page.inner_text("main") and page.evaluate("() => window.__pwned") is None

    # A dataset: version 1 from an archive, version 2 from a whole folder.
    page = admin.go(base + "/datasets")
    page.fill("#dataset-upload input[name=name]", "iris")
    page.fill("#dataset-upload input[name=note]", "first cut")
    page.set_input_files("#dataset-upload input[name=archive]", str(files["iris_data"]))
    page.click("#dataset-upload button[type=submit]")
    page.wait_for_url(re.compile(r".*/datasets/iris/versions/1$"))
    assert page.locator("#manifest td.path").all_inner_texts() == ["test/iris.csv", "train/iris.csv"]
    page = admin.go(base + "/datasets")
    page.fill("#dataset-upload input[name=name]", "iris")
    page.set_input_files("#dataset-upload input[name=folder]", str(IRIS_DATA))
    page.click("#dataset-upload button[type=submit]")
    page.wait_for_url(re.compile(r".*/datasets/iris/versions/2$"))
    assert page.locator("#manifest td.path").all_inner_texts() == ["test/iris.csv", "train/iris.csv"]
    screenshot(page, "02-dataset-version")
    with page.expect_download() as download:
        page.click("text=Download version (zip)")
    assert download.value.suggested_filename == "iris-v2.zip"

    # The ML package, then a training run from its page.
    upload_package(admin, project, "iris", files["iris_package"])
    page.click("a:has-text('Train')")
    run_url = create_pipeline(admin, name="train-iris", folder="train", parameters="C=0.5\nsave_training_data=true")
    page.click("text=Job details and logs")
    page.wait_for_selector("#log .line")
    page.wait_for_selector(JOB_DONE, timeout=LONG)
    assert page.inner_text("#job-status").strip().lower() == "completed"
    assert any("training accuracy" in t for t in page.locator("#log .tx").all_inner_texts())
    screenshot(page, "03-job-details")

    # Pipeline details: artifacts with an image preview, _results.json, the data snapshot.
    page.goto(run_url)
    assert page.inner_text("#run-status").strip() == "Successful"
    assert page.inner_text("#new-version").strip() == "iris 1.1"
    assert page.locator("#previews img").count() == 1
    assert page.locator("#previews img").evaluate("img => img.naturalWidth") > 0  # the PNG loads
    results = page.inner_text("#results pre")
    assert '"version": "1.1"' in results and '"save_training_data": "true"' in results
    assert "iris.csv" in page.inner_text("#train-data")
    screenshot(page, "04-pipeline-details")
    page.click("a:has-text('training-summary.txt')")
    assert "training accuracy" in page.inner_text("pre.file-text")

    # Evaluate 1.1 on the test folder, compute its statistics, then review it.
    page = admin.go(base + "/packages/iris/versions/1.1")
    page.click("a:has-text('Evaluate')")
    create_pipeline(admin, name="eval-iris", folder="test")
    page.click("text=Job details and logs")
    page.wait_for_selector(JOB_DONE, timeout=LONG)
    page = admin.go(base + "/packages/iris/versions/1.1")
    page.fill("#statistics-form input[name=folder]", "train")
    page.fill("#statistics-form input[name=target]", "species")
    page.click("#statistics-form button[type=submit]")
    page.wait_for_selector(JOB_DONE, timeout=LONG)
    assert page.inner_text("#job-status").strip().lower() == "completed"
    page = admin.go(base + "/packages/iris/versions/1.1")
    assert page.inner_text("#version-status").strip().lower() == "evaluated"
    assert page.locator("#statistics figure.chart svg").count() >= 5  # predictions + 4 features
    assert page.locator("#evaluation-plots img").count() >= 1
    page.fill("#decide-form textarea[name=reason]", "accuracy above the bar on the test folder")
    page.click("#approve-button")
    page.wait_for_selector("#review")
    assert page.inner_text("#version-status").strip().lower() == "approved"
    assert "accuracy above the bar" in page.inner_text("#review")
    screenshot(page, "05-model-version")

    # Deploy with a schedule, Run now, and find the prediction job in the Jobs tab.
    page.select_option("#deploy-form select[name=dataset]", "iris")
    page.fill("#deploy-form input[name=folder]", "test")
    page.fill("#deploy-form input[name=name]", "iris-prod")
    page.fill("#deploy-form input[name=cron]", "0 3 * * *")
    page.click("#deploy-button")
    page.wait_for_url(re.compile(r".*/deployments/iris-prod$"))
    assert page.locator("ol.next-runs li").count() == 5
    assert all("03:00:00 UTC" in t for t in page.locator("ol.next-runs li").all_inner_texts())
    screenshot(page, "06-deployment")
    page.click("button:has-text('Run now')")
    page.wait_for_url(re.compile(r".*/deployments/iris-prod\?tab=jobs$"))
    kinds = page.locator("#deployment-jobs tbody td:nth-child(2)").all_inner_texts()
    assert kinds == ["Batch prediction", "Deployment"]
    screenshot(page, "07-deployment-jobs")
    page.locator("#deployment-jobs tbody a").first.click()
    page.wait_for_selector(JOB_DONE, timeout=LONG)
    assert page.inner_text("#job-status").strip().lower() == "completed"
    page = admin.go(base + "/deployments/iris-prod?tab=runs")
    page.locator("#deployment-runs tbody a").first.click()
    assert page.locator("#drift-table tbody tr").count() >= 4  # one row per feature (+ predictions)
    assert page.locator("#drift svg rect.bar").count() >= 4
    screenshot(page, "08-batch-run-drift")

    # The audit log names the approval and its reason; the export downloads.
    page = admin.go(base + "/audit")
    rows = page.locator("#audit tbody tr").all_inner_texts()
    assert any("approve" in r.lower() and "accuracy above the bar" in r for r in rows)
    assert any("deploy" in r.lower() and "iris-prod" in r for r in rows)
    with page.expect_download() as download:
        page.click("#export-csv")
    exported = Path(download.value.path()).read_text()
    assert exported.startswith("id,at,actor,action") and "accuracy above the bar" in exported
    screenshot(page, "09-audit-log")

    for path, name in [(base + "/jobs", "10-jobs"), (base + "/pipelines", "11-pipelines"),
                       (base + "/packages/iris", "12-package"), (base + "/packages", "13-packages"),
                       (base + "/datasets", "14-datasets"), (base + "/deployments", "15-deployments")]:
        screenshot(admin.go(path), name)
    assert admin.page.locator("#versions, #deployments, table").count() >= 1
    assert admin.page.evaluate("() => window.__pwned") is None


# --------------------------------------------------------------------------- live logs and stop


def test_logs_follow_a_running_job_and_stop_ends_it_cancelled(admin: Session, files: dict[str, Path]) -> None:
    project = new_project(admin, "live")
    base = f"/ui/projects/{project}"
    page = admin.go(base + "/datasets")
    page.fill("#dataset-upload input[name=name]", "rows")
    page.set_input_files("#dataset-upload input[name=folder]", str(IRIS_DATA))
    page.click("#dataset-upload button[type=submit]")
    page.wait_for_url(re.compile(r".*/versions/1$"))
    upload_package(admin, project, "slow", files["slow_package"])
    page.click("a:has-text('Train')")
    create_pipeline(admin, name="slow-run")
    page.click("text=Job details and logs")

    # Lines arrive while the job runs, without reloading the page.
    page.wait_for_selector("#log .line .tx:text('tick 3')", timeout=LONG)
    assert page.inner_text("#job-status").strip().lower() == "running"
    assert page.inner_text("#log-state") == "following live…"
    first = page.locator("#log .line").count()
    page.wait_for_selector("#log .line .tx:text('tick 8')")
    assert page.locator("#log .line").count() > first

    # Markup in a log line is text; errors are highlighted; the level filter hides the rest.
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("#log b").count() == 0
    assert page.locator("#log .tx", has_text="<script>window.__pwned = 1</script>").count() == 1
    error_line = page.locator("#log .line.lvl-error")
    assert error_line.count() == 1 and "a batch could not be read" in error_line.inner_text()
    page.select_option("#log-level", "error")
    visible = [t for t in page.locator("#log .line .tx").all_inner_texts() if t]
    assert page.locator("#log .line:visible").count() == 1 and len(visible) >= 1
    page.select_option("#log-level", "warning")
    assert page.locator("#log .line:visible").count() == 2
    page.select_option("#log-level", "debug")

    # An event's details, on demand.
    page.locator("#events li", has_text="running").locator("button[data-event-details]").click()
    detail = page.locator("#events li", has_text="running").locator("pre.event-detail")
    expect(detail).to_contain_text('"to_status": "running"')
    screenshot(page, "16-live-logs")

    page.click("#stop-form button")
    page.wait_for_selector(JOB_DONE, timeout=60_000)
    assert page.inner_text("#job-status").strip().lower() == "cancelled"
    assert page.locator("#stop-form").is_hidden()
    timeline = page.inner_text("#events")
    assert "cancelling" in timeline and "cancelled" in timeline
    screenshot(page, "17-stopped-job")


def test_stop_from_the_jobs_list_and_stop_all_running(admin: Session, files: dict[str, Path], srv: RunningServer) -> None:
    project = unique("stops")
    with ModelOpsClient(srv.url, srv.token) as client:
        client.projects.create(project)
        client.datasets.upload_version(project, "rows", IRIS_DATA)
        client.packages.upload(project, "slow", files["slow_package"].parent / "slow")
        client.pipelines.create(project, "slow", type="training", package="slow", version="1.0",
                                dataset="rows", schedule="cron", cron="0 0 1 1 *")
    page = admin.go(f"/ui/projects/{project}/pipelines/slow")
    for _ in range(2):
        page.click("button:has-text('Run now')")
        page.wait_for_url(re.compile(r".*/runs/\d+$"))
        page = admin.go(f"/ui/projects/{project}/pipelines/slow")
    page = admin.go(f"/ui/projects/{project}/jobs")
    assert len(statuses(page)) == 2
    # Filters: by kind and status, applied as soon as they are chosen.
    page.select_option("select[name=kind]", "evaluation")
    page.wait_for_url(re.compile(r".*kind=evaluation.*"))
    assert page.locator("#jobs-table").count() == 0 and "No job matches." in page.inner_text("main")
    page = admin.go(f"/ui/projects/{project}/jobs")

    # The row menu's Stop stops that job only.
    page.locator("#jobs-table tbody tr").first.locator("summary").click()
    page.locator("#jobs-table tbody tr").first.locator("button:has-text('Stop')").click()
    page.wait_for_url(re.compile(r".*/jobs$"))
    assert "Stop requested for job" in page.inner_text(".flash")
    first, second = statuses(page)
    assert first in ("cancelling", "cancelled") and second in ("queued", "running")
    screenshot(page, "18-jobs-menu-stop")

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Stop all running')")
    page.wait_for_url(re.compile(r".*/jobs$"))
    assert "Stop requested for 1 job(s)." in page.inner_text(".flash")
    # The status cells refresh by themselves until no job is active.
    page.locator("#jobs-table tr[data-active]").first.wait_for(state="detached", timeout=60_000)
    assert statuses(page) == ["cancelled", "cancelled"]
    page.select_option("select[name=status]", "cancelled")
    page.wait_for_url(re.compile(r".*status=cancelled.*"))
    assert statuses(page) == ["cancelled", "cancelled"]
    screenshot(page, "19-jobs-stopped")


# --------------------------------------------------------------------------- roles


def test_a_viewer_signs_in_and_sees_no_approve_button(browser: Any, srv: RunningServer, tmp_path: Path) -> None:
    folder = tmp_path / "quick"
    folder.mkdir()
    (folder / "train.py").write_text(SLOW_TRAIN)
    project = unique("roles")
    with ModelOpsClient(srv.url, srv.token) as client:
        client.projects.create(project)
        client.datasets.upload_version(project, "rows", IRIS_DATA)
        client.packages.upload(project, "quick", folder)
        created = client.pipelines.create(project, "full", type="full", package="quick", version="1.0",
                                          dataset="rows", parameters={"SLEEP": 0})
        run = client.pipelines.wait_run(project, created["run"]["job_id"], timeout=240)
    assert run["status"] == "Successful" and run["new_version"] == "1.1"
    path = f"/ui/projects/{project}/packages/quick/versions/1.1"

    viewer = Session(browser, srv, make_token(srv, "viewer"))
    page = viewer.go(path)
    assert page.inner_text("#version-status").strip().lower() == "evaluated"
    assert page.locator("#approve-button").count() == 0 and page.locator("#decide-form").count() == 0
    assert "needs the approver role" in page.inner_text("#review-note")
    assert page.locator("text=Create project").count() == 0
    screenshot(page, "20-viewer-version")
    viewer.close()

    approver = Session(browser, srv, make_token(srv, "approver"))
    page = approver.go(path)
    assert page.locator("#approve-button").count() == 1
    page.click("#reject-button")  # the reason is required by the form itself
    assert page.url.endswith(path)
    page.fill("#decide-form textarea[name=reason]", "score 0.5 is below the bar")
    page.click("#reject-button")
    page.wait_for_selector("#review")
    assert page.inner_text("#version-status").strip().lower() == "rejected"
    approver.close()
